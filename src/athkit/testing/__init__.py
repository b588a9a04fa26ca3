"""Helpers for testing ATH software against real servers on loopback.

Public so that people building on athkit can use them in their own tests.
"""

from athkit.testing._consent import ConsentDriverError, drive_consent, drive_consent_async
from athkit.testing._nginx import NginxError, NginxHandle, nginx_binary, run_nginx
from athkit.testing._servers import ServerHandle, free_port, serve_in_thread

__all__ = [
    "ConsentDriverError",
    "NginxError",
    "NginxHandle",
    "ServerHandle",
    "drive_consent",
    "drive_consent_async",
    "free_port",
    "nginx_binary",
    "run_nginx",
    "serve_in_thread",
]
