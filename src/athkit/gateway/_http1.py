"""A lean HTTP/1.1 client for the proxy's upstream leg: keep-alive pool, httptools parser.

The proxy's upstream request is the largest single cost of a proxied call. ``bench/proxy.py``
profiled aiohttp's request path (session, request and response objects, tracing hooks, timers,
a header write and a separate ``set_eof`` write) at about a third of the gateway's CPU per call.
A proxy needs much less: send the agent's method, target, headers and body as they are, parse
the answer (the same ``httptools`` parser the ASGI server uses), and hand back status, raw
headers and a body that is read whole when small and streamed when large.

What it does:
* one pool per provider of at most ``max_connections`` keep-alive connections (callers beyond
  that wait); TLS for ``https`` bases with the default context (certificates and hostname
  checked);
* a request is one ``write`` when it has no body (no chunked framing for body-less methods);
  a body with a known ``Content-Length`` streams as is, one of unknown length goes chunked;
* ``connect_timeout`` bounds connecting; ``read_timeout`` bounds each wait for the upstream's
  bytes (raises :class:`UpstreamTimeout`);
* a reused connection that the upstream had closed is retried once on a new one when nothing of
  the request's body had been sent (every other failure raises :class:`UpstreamError`);
* a response is read with flow control: the socket stops being read while more than 256 KiB
  wait for the consumer;
* ``HEAD`` answers and answers the upstream ends with ``Connection: close`` or by closing are
  never reused.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
from collections.abc import AsyncIterator
from typing import cast
from urllib.parse import urlsplit

import httptools

from athkit.server._waiters import Waiters

_HIGH_WATER = 256 * 1024
_CRLF = b"\r\n"


class UpstreamError(Exception):
    """The upstream could not be reached, or the exchange broke off."""


class UpstreamTimeout(UpstreamError):
    """The upstream did not connect or send within its timeout."""


class _Connection(asyncio.Protocol):
    """One keep-alive connection; at most one exchange at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop, read_timeout: float) -> None:
        self._loop = loop
        self._read_timeout = read_timeout
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.reused = False
        self.got_bytes = False  # any byte of the current answer arrived
        self.error: BaseException | None = None
        # The current answer.
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.headers_done = False
        self.complete = False
        self.keep_alive = False
        self.head = False
        self._framed = False  # Content-Length or chunked: the body's end is known
        self._body: collections.deque[bytes] = collections.deque()
        self._buffered = 0
        self._paused = False
        self._waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._last_data = 0.0
        self._can_write: asyncio.Future[None] | None = None

    # --- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self._last_data = self._loop.time()
        self.got_bytes = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(UpstreamError(f"the upstream sent an invalid answer ({exc})"))
            return
        self._wake()

    def eof_received(self) -> bool | None:
        self._closed_by_peer()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed_by_peer(exc)

    def pause_writing(self) -> None:
        if self._can_write is None:
            self._can_write = self._loop.create_future()

    def resume_writing(self) -> None:
        if self._can_write is not None and not self._can_write.done():
            self._can_write.set_result(None)
        self._can_write = None

    # --- httptools callbacks -------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))
        lower = name.lower()
        if lower in (b"content-length", b"transfer-encoding"):
            self._framed = True

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        if 100 <= self.status < 200:  # an interim answer (103 Early Hints): skip it
            self.headers = []
            self._framed = False
            return
        self.headers_done = True
        if self.head:
            # No body follows. httptools does not know the request was HEAD, so a HEAD answer
            # with a Content-Length would leave it waiting: complete it here, never reuse.
            self.complete = True
            self.keep_alive = False

    def on_body(self, body: bytes) -> None:
        if self.head or not body:
            return
        self._body.append(body)
        self._buffered += len(body)
        if self._buffered > _HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()

    def on_message_complete(self) -> None:
        if self.status < 200 or self.head:
            return
        self.complete = True
        self.keep_alive = self.parser.should_keep_alive()

    # --- used by the pool and the response ------------------------------------------------

    def _closed_by_peer(self, exc: Exception | None = None) -> None:
        if self.closed:
            return
        self.closed = True
        if self.headers_done and not self.complete and not self._framed:
            # No Content-Length, not chunked: the body ran until the connection closed.
            self.complete = True
            self.keep_alive = False
        elif not self.complete and self.error is None:
            self.error = UpstreamError(
                "the upstream closed the connection"
                + (f" ({type(exc).__name__})" if exc is not None else "")
            )
        self._wake()

    def _fail(self, exc: BaseException) -> None:
        self.error = exc
        self.closed = True
        if self.transport is not None:
            self.transport.abort()
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _check_timeout(self) -> None:
        self._timer = None
        if self._waiter is None or self._waiter.done():
            return
        idle = self._loop.time() - self._last_data
        if idle >= self._read_timeout:
            self._fail(UpstreamTimeout("the upstream did not answer in time"))
        else:
            self._timer = self._loop.call_at(
                self._last_data + self._read_timeout, self._check_timeout
            )

    async def wait(self) -> None:
        """Until more of the answer (or its end, or an error) arrived; bounded by the timeout."""
        if self.error is not None:
            raise self.error
        self._waiter = self._loop.create_future()
        if self._timer is None:
            self._last_data = self._loop.time()
            self._timer = self._loop.call_at(
                self._last_data + self._read_timeout, self._check_timeout
            )
        try:
            await self._waiter
        finally:
            self._waiter = None
        if self.error is not None:
            raise self.error

    def take_body(self) -> bytes:
        """What has arrived of the body since the last call (and resume reading)."""
        if not self._body:
            return b""
        data = self._body.popleft() if len(self._body) == 1 else b"".join(self._body)
        self._body.clear()
        self._buffered = 0
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return data

    def done_waiting(self) -> None:
        """Stop the read timer (the exchange is over)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def start(self, head: bool) -> None:
        """Reset the per-answer state for a new exchange."""
        self.status = 0
        self.headers = []
        self.headers_done = self.complete = self.keep_alive = self._framed = False
        self.got_bytes = False
        self.head = head
        self._body.clear()
        self._buffered = 0

    async def drain(self) -> None:
        """Wait while the socket's write buffer is full."""
        if self._can_write is not None:
            await self._can_write
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        """Close the socket (no reuse)."""
        self.closed = True
        self.done_waiting()
        if self.transport is not None:
            self.transport.close()


class Http1Response:
    """An upstream answer: ``status``, raw ``headers``, and the body via :meth:`read` or
    :meth:`iter_chunks`. Call :meth:`release` when done (the connection goes back to the pool
    only if the answer was read to its end and the upstream keeps it alive)."""

    __slots__ = ("_conn", "_pool", "_released", "headers", "status")

    def __init__(self, pool: Http1Pool, conn: _Connection) -> None:
        self._pool = pool
        self._conn = conn
        self._released = False
        self.status = conn.status
        self.headers = conn.headers

    @property
    def content_length(self) -> int | None:
        """The declared ``Content-Length``, if any (and well-formed)."""
        for name, value in self.headers:
            if name.lower() == b"content-length":
                try:
                    return int(value)
                except ValueError:
                    return None
        return None

    def header(self, name: bytes) -> str | None:
        """The first value of header ``name`` (lower-case bytes), decoded, or ``None``."""
        for key, value in self.headers:
            if key.lower() == name:
                return value.decode("latin-1")
        return None

    async def read(self) -> bytes:
        """The whole body."""
        conn = self._conn
        parts: list[bytes] = []
        while True:
            chunk = conn.take_body()
            if chunk:
                parts.append(chunk)
            if conn.complete:
                break
            await conn.wait()
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives."""
        conn = self._conn
        while True:
            chunk = conn.take_body()
            if chunk:
                yield chunk
            if conn.complete:
                if conn._body:
                    continue
                return
            await conn.wait()

    def release(self) -> None:
        """Give the connection back (or close it when the answer is not over). Idempotent."""
        if self._released:
            return
        self._released = True
        conn = self._conn
        conn.done_waiting()
        if conn.complete and conn.keep_alive and not conn.closed and not conn._body:
            self._pool._put_back(conn)
        else:
            conn.close()
            self._pool._forget(conn)


class Http1Pool:
    """Keep-alive HTTP/1.1 connections to one upstream origin (see the module doc)."""

    def __init__(
        self,
        base_url: str,
        *,
        max_connections: int = 100,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self._ssl: ssl.SSLContext | None = (
            ssl.create_default_context() if parts.scheme == "https" else None
        )
        # RFC 9112 §3.2: Host is the authority of the target URI.
        self.host_header = parts.netloc.rpartition("@")[2].encode("idna")
        self.base_path = parts.path.rstrip("/").encode("latin-1")
        self._max = max_connections
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._idle: list[_Connection] = []
        self._busy: set[_Connection] = set()
        self._opening = 0
        self._waiters: Waiters[None] = Waiters()
        self._closed = False

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        read_timeout = self._read_timeout
        try:
            async with asyncio.timeout(self._connect_timeout):
                _, conn = await loop.create_connection(
                    lambda: _Connection(loop, read_timeout),
                    self.host,
                    self.port,
                    ssl=self._ssl,
                    server_hostname=self.host if self._ssl is not None else None,
                )
        except TimeoutError:
            raise UpstreamTimeout("connecting to the upstream timed out") from None
        except (OSError, ssl.SSLError) as exc:
            raise UpstreamError(
                f"could not connect to the upstream ({type(exc).__name__})"
            ) from None
        return conn

    async def _acquire(self) -> _Connection:
        while True:
            if self._closed:
                raise UpstreamError("the upstream pool is closed")
            while self._idle:
                conn = self._idle.pop()
                if not conn.closed:
                    conn.reused = True
                    self._busy.add(conn)
                    return conn
            if len(self._busy) + self._opening < self._max:
                self._opening += 1
                try:
                    conn = await self._connect()
                finally:
                    self._opening -= 1
                    self._wake_one()
                self._busy.add(conn)
                return conn
            waiter = self._waiters.join()
            try:
                await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._wake_one()  # pass the wake-up on
                raise

    def _wake_one(self) -> None:
        self._waiters.hand_over(None)

    def _put_back(self, conn: _Connection) -> None:
        self._busy.discard(conn)
        if self._closed:
            conn.close()
            return
        self._idle.append(conn)
        self._wake_one()

    def _forget(self, conn: _Connection) -> None:
        self._busy.discard(conn)
        self._wake_one()

    async def request(
        self,
        method: str,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes | AsyncIterator[bytes] | None = None,
        content_length: int | None = None,
    ) -> Http1Response:
        """Send one request (``target``: path and query, appended to the base URL's path) and
        return once the answer's status and headers are in. ``body``: bytes (sent with the
        head in one write), or chunks streamed as they come (``content_length`` when known,
        else chunked)."""
        head = method == "HEAD"
        lines = [method.encode("ascii"), b" ", self.base_path, target, b" HTTP/1.1\r\nHost: "]
        lines.append(self.host_header)
        lines.append(_CRLF)
        for name, value in headers:
            lines += (name, b": ", value, _CRLF)
        whole = body if isinstance(body, bytes) else None
        stream = None if isinstance(body, bytes) else body
        if whole is not None:
            content_length = len(whole)
        if body is not None:
            if content_length is not None:
                lines += (b"Content-Length: ", str(content_length).encode(), _CRLF)
            else:
                lines.append(b"Transfer-Encoding: chunked\r\n")
        lines.append(_CRLF)
        if whole:
            lines.append(whole)
        request_head = b"".join(lines)
        for attempt in (1, 2):
            conn = await self._acquire()
            conn.start(head)
            sent_body = False
            try:
                assert conn.transport is not None
                conn.transport.write(request_head)
                if stream is not None:
                    sent_body = True
                    await _send_body(conn, stream, chunked=content_length is None)
                while not conn.headers_done:
                    await conn.wait()
            except UpstreamError as exc:
                conn.close()
                self._forget(conn)
                stale = conn.reused and not conn.got_bytes and not isinstance(exc, UpstreamTimeout)
                if attempt == 1 and stale and not sent_body:
                    continue  # the upstream had closed this idle connection: once more, anew
                raise
            except BaseException:
                conn.close()
                self._forget(conn)
                raise
            return Http1Response(self, conn)
        raise AssertionError("unreachable")

    async def close(self) -> None:
        """Close every connection; later requests fail."""
        self._closed = True
        for conn in (*self._idle, *self._busy):
            conn.close()
        self._idle.clear()
        self._busy.clear()
        self._waiters.release_all(None)


async def _send_body(conn: _Connection, body: AsyncIterator[bytes], *, chunked: bool) -> None:
    transport = conn.transport
    assert transport is not None
    async for chunk in body:
        if not chunk:
            continue
        if chunked:
            transport.write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
        else:
            transport.write(chunk)
        await conn.drain()
    if chunked:
        transport.write(b"0\r\n\r\n")
