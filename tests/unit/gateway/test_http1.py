"""The proxy's upstream client against a raw HTTP/1.1 server on 127.0.0.1 that misbehaves on
purpose: answers without framing, HEAD answers with a length, idle connections it closes,
silence, and more callers than connections."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from athkit.gateway._http1 import Http1Pool, UpstreamError, UpstreamTimeout

Handler = Callable[[bytes, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[bool]]


class RawServer:
    """Reads request heads; ``handler`` writes raw bytes and says whether to keep the socket."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.heads: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.heads.append(head)
                if not await self.handler(head, reader, writer):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/base"

    async def __aexit__(self, *_: object) -> None:
        assert self.server is not None
        self.server.close()


def _answer(body: bytes, *, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%b\r\n%b" % (len(body), extra, body)


async def test_keep_alive_reuse_and_the_request_as_sent() -> None:
    async def handler(head: bytes, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> bool:
        w.write(_answer(b"hello"))
        return True

    raw = RawServer(handler)
    async with raw as base:
        pool = Http1Pool(base, max_connections=4, connect_timeout=2, read_timeout=2)
        for _ in range(3):
            response = await pool.request("GET", b"/x?a=%20b", [(b"X-Kept", b"yes")])
            assert response.status == 200 and await response.read() == b"hello"
            response.release()
        await pool.close()
    assert raw.connections == 1  # one keep-alive connection for all three
    first = raw.heads[0]
    assert first.startswith(b"GET /base/x?a=%20b HTTP/1.1\r\n")
    assert b"\r\nX-Kept: yes\r\n" in first and b"Host: 127.0.0.1:" in first
    assert b"Transfer-Encoding" not in first and b"Content-Length" not in first


async def test_bodies_whole_streamed_and_chunked() -> None:
    async def handler(head: bytes, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> bool:
        if b"Transfer-Encoding: chunked" in head:
            body = b""
            while True:
                size = int((await reader.readuntil(b"\r\n")).strip(), 16)
                chunk = await reader.readexactly(size + 2)
                if size == 0:
                    break
                body += chunk[:-2]
        else:
            length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
            body = await reader.readexactly(length)
        w.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for part in (body[:3], body[3:]):
            w.write(b"%x\r\n%b\r\n" % (len(part), part))
        w.write(b"0\r\n\r\n")
        return True

    async def stream() -> AsyncIterator[bytes]:
        yield b"abc"
        yield b"defg"

    async with RawServer(handler) as base:
        pool = Http1Pool(base, connect_timeout=2, read_timeout=2)
        whole = await pool.request("POST", b"/", [], b"payload")
        assert await whole.read() == b"payload"
        whole.release()
        sized = await pool.request("POST", b"/", [], stream(), 7)
        assert b"".join([c async for c in sized.iter_chunks()]) == b"abcdefg"
        sized.release()
        chunked = await pool.request("POST", b"/", [], stream())
        assert await chunked.read() == b"abcdefg"
        chunked.release()
        await pool.close()


async def test_answers_without_framing_and_head_answers() -> None:
    async def handler(head: bytes, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> bool:
        if head.startswith(b"HEAD"):
            # A HEAD answer declares the length of a body it does not send.
            w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
            return True
        w.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end")
        return False  # the body ends when the connection does

    raw = RawServer(handler)
    async with raw as base:
        pool = Http1Pool(base, connect_timeout=2, read_timeout=2)
        head = await asyncio.wait_for(pool.request("HEAD", b"/", []), 5)
        assert head.status == 200 and head.content_length == 1000
        assert await head.read() == b""
        head.release()
        plain = await pool.request("GET", b"/", [])
        assert await asyncio.wait_for(plain.read(), 5) == b"until the end"
        plain.release()
        again = await pool.request("GET", b"/", [])
        assert await again.read() == b"until the end"
        again.release()
        await pool.close()
    assert raw.connections == 3  # neither kind of answer leaves a reusable connection


async def test_an_idle_connection_closed_by_the_upstream_is_retried_once() -> None:
    async def handler(head: bytes, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> bool:
        w.write(_answer(b"ok"))
        await w.drain()
        return False  # close after each answer, though it did not say Connection: close

    raw = RawServer(handler)
    async with raw as base:
        pool = Http1Pool(base, connect_timeout=2, read_timeout=2)
        for i in range(6):
            response = await pool.request("GET", b"/", [])
            assert await response.read() == b"ok"
            response.release()
            if i % 2:
                # Let the close arrive first; otherwise the next call may find it only after
                # writing its request, and must then go again on a fresh connection.
                await asyncio.sleep(0.05)
        await pool.close()
    assert raw.connections == 6


async def test_silence_times_out_and_refused_connections_fail() -> None:
    async def handler(head: bytes, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(5)
        return False

    async with RawServer(handler) as base:
        pool = Http1Pool(base, connect_timeout=2, read_timeout=0.2)
        with pytest.raises(UpstreamTimeout):
            await pool.request("GET", b"/", [])
        await pool.close()
    closed = Http1Pool(base, connect_timeout=2, read_timeout=1)  # the server is gone now
    with pytest.raises(UpstreamError):
        await closed.request("GET", b"/", [])


async def test_callers_beyond_the_pool_wait_their_turn() -> None:
    async def handler(head: bytes, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(0.02)
        w.write(_answer(b"turn"))
        return True

    raw = RawServer(handler)
    async with raw as base:
        pool = Http1Pool(base, max_connections=2, connect_timeout=2, read_timeout=2)

        async def call() -> bytes:
            response = await pool.request("GET", b"/", [])
            try:
                return await response.read()
            finally:
                response.release()

        assert (
            await asyncio.wait_for(asyncio.gather(*(call() for _ in range(12))), 10)
            == [b"turn"] * 12
        )
        await pool.close()
    assert raw.connections == 2
