"""Helpers for the attestation-verifier tests: an identity-document host, a clock, services."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from athkit.protocol import PrivateKey, generate_private_key, public_key_to_jwk
from athkit.testing import ServerHandle, serve_in_thread

AUDIENCE = "https://service.test"


class FakeClock:
    """Epoch seconds that only move when the test says so."""

    def __init__(self, start: float = 1_900_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Reply:
    """What the document host answers on one path."""

    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=lambda: {"content-type": "application/json"})
    delay: float = 0.0
    stream_chunks: int = 0  # >0: stream the body this many times, no Content-Length


class DocumentHost:
    """A Starlette app serving identity documents and counting every request per path."""

    def __init__(self) -> None:
        self.replies: dict[str, Reply] = {}
        self.hits: Counter[str] = Counter()
        self.host_headers: dict[str, list[str]] = {}
        self.app = Starlette(routes=[Route("/{path:path}", self._serve)])
        self.server: ServerHandle | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url

    async def _serve(self, request: Request) -> Response:
        path = request.url.path
        self.hits[path] += 1
        self.host_headers.setdefault(path, []).append(request.headers.get("host", ""))
        reply = self.replies.get(path)
        if reply is None:
            return Response(b"not found", status_code=404)
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.stream_chunks:

            async def chunks() -> AsyncIterator[bytes]:
                for _ in range(reply.stream_chunks):
                    yield reply.body

            return StreamingResponse(chunks(), status_code=reply.status, headers=reply.headers)
        return Response(reply.body, status_code=reply.status, headers=reply.headers)

    def new_path(self, name: str = "agent.json") -> str:
        """A path no other test uses."""
        return f"/{uuid.uuid4().hex}/.well-known/{name}"

    def publish(
        self,
        key: PrivateKey,
        *,
        path: str | None = None,
        agent_id: str | None = None,
        cache_control: str | None = None,
    ) -> str:
        """Serve an identity document for ``key``; return its URL (the agent_id)."""
        path = path or self.new_path()
        url = f"{self.url}{path}"
        document = {
            "ath_version": "0.1",
            "agent_id": agent_id or url,
            "name": "Test Agent",
            "developer": {"name": "Test Dev", "id": "dev-1"},
            "public_key": public_key_to_jwk(key),
        }
        headers = {"content-type": "application/json"}
        if cache_control is not None:
            headers["cache-control"] = cache_control
        self.replies[path] = Reply(body=json.dumps(document).encode(), headers=headers)
        return url

    def path_of(self, url: str) -> str:
        return url[len(self.url) :]


@pytest.fixture(scope="module")
def document_host() -> Iterator[DocumentHost]:
    host = DocumentHost()
    with serve_in_thread(host.app) as server:
        host.server = server
        yield host


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(float(int(time.time())))


@pytest.fixture
def agent_key() -> PrivateKey:
    return generate_private_key()


class Listener:
    """A raw listening socket that never accepts: counts connections that reached it."""

    def __init__(self, family: int, host: str) -> None:
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.bind((host, 0))
        self.sock.listen(16)
        self.sock.setblocking(False)
        self.port: int = self.sock.getsockname()[1]

    def connections(self) -> int:
        count = 0
        while True:
            try:
                conn, _ = self.sock.accept()
            except BlockingIOError:
                return count
            conn.close()
            count += 1

    def close(self) -> None:
        self.sock.close()


def ipv6_loopback_available() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


def require_service(port: int, name: str) -> None:
    """Skip (or fail, with ATH_REQUIRE_SERVICES=1) when a local service is not listening."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        if os.environ.get("ATH_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{name} on 127.0.0.1:{port} is required but unreachable")
        pytest.skip(f"{name} on 127.0.0.1:{port} is not reachable")
