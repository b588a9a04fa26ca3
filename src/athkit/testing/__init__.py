"""Helpers for testing ATH software against real servers on loopback.

Public so that people building on athkit can use them in their own tests.
"""

from athkit.testing._servers import ServerHandle, free_port, serve_in_thread

__all__ = ["ServerHandle", "free_port", "serve_in_thread"]
