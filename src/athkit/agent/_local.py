"""Plumbing for the small HTTP servers an agent runs on its own machine (the redirect listener
and the development identity host), and the ``with`` protocol its closable objects share."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Generic, ParamSpec, Self, TypeVar

P = ParamSpec("P")
T = TypeVar("T")
S = TypeVar("S", bound=ThreadingHTTPServer)


class Closing:
    """``with obj:`` calls ``obj.close()`` when the block ends, whatever happens."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that sends whole answers and logs nothing: a redirect's query string
    holds a one-time code, and a development host's story is in the verifier's own logs."""

    def answer(
        self,
        status: int,
        body: bytes,
        *,
        content_type: str,
        headers: Mapping[str, str],
        with_body: bool = True,
    ) -> None:
        """Send ``status``, the headers, and (unless ``with_body`` is false, for HEAD) ``body``."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if with_body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class BackgroundServer(Closing, Generic[S]):
    """Serves ``server`` on a daemon thread until closed; closing frees the port."""

    def __init__(self, server: S, *, thread_name: str) -> None:
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name=thread_name, daemon=True)
        self._thread.start()
        self.port = int(server.server_address[1])

    def close(self) -> None:
        """Stop serving and free the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def off_the_loop(
    factory: Callable[P, AbstractContextManager[T]],
) -> Callable[P, AbstractAsyncContextManager[T]]:
    """The ``async with`` twin of a blocking context manager ``factory`` (named after it, with
    ``_async``): entering and leaving it run in a worker thread, so that the event loop is never
    blocked."""

    @contextlib.asynccontextmanager
    async def managed(*args: P.args, **kwargs: P.kwargs) -> AsyncIterator[T]:
        manager = factory(*args, **kwargs)
        value = await asyncio.to_thread(manager.__enter__)
        try:
            yield value
        finally:
            await asyncio.to_thread(manager.__exit__, None, None, None)

    twin = functools.wraps(factory)(managed)
    twin.__name__ = twin.__qualname__ = f"{factory.__name__}_async"
    twin.__doc__ = f":func:`{factory.__name__}` for ``async with``; it runs off the event loop."
    return twin
