"""Helpers for testing ATH software against real servers on loopback.

Public so that people building on athkit can use them in their own tests.
"""

from athkit.testing._nginx import NginxError, NginxHandle, nginx_binary, run_nginx
from athkit.testing._servers import ServerHandle, free_port, serve_in_thread

__all__ = [
    "NginxError",
    "NginxHandle",
    "ServerHandle",
    "free_port",
    "nginx_binary",
    "run_nginx",
    "serve_in_thread",
]
