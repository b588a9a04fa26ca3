"""Run an ASGI app on a real 127.0.0.1 port in a background thread."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import uvicorn


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on ``host`` a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerHandle:
    """A running server: its base URL (no trailing slash) and its port."""

    url: str
    port: int
    server: uvicorn.Server


@contextlib.contextmanager
def serve_in_thread(
    app: Any,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    startup_timeout: float = 10.0,
    **config: Any,
) -> Iterator[ServerHandle]:
    """Serve ``app`` with uvicorn until the block ends; yields once it accepts connections.

    Pass ``port`` to serve on a known port (for apps that must know their own URL up front).
    """
    chosen = port if port is not None else free_port(host)
    uv_config = uvicorn.Config(
        app, host=host, port=chosen, log_level="warning", lifespan="on", **config
    )
    server = uvicorn.Server(uv_config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{chosen}", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError(f"server on {host}:{chosen} failed to start")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise TimeoutError(f"server on {host}:{chosen} did not start in {startup_timeout}s")
        time.sleep(0.01)
    try:
        yield ServerHandle(url=f"http://{host}:{chosen}", port=chosen, server=server)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
