"""PostgreSQL down or hung under a running engine (through a TCP relay of the test's own in front
of the local server): token checks and handshakes answer 503 naming the database within the
configured timeout — never a 500, never a wait without end — and work again by themselves once
the database is back."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from athkit.protocol import ATHError, ErrorCode
from athkit.server import ServerSettings, build_engine
from athkit.testing import free_port
from tests.services import fresh_postgres_database

pytestmark = pytest.mark.postgres

TIMEOUT = 1.0


class Relay:
    """Forwards 127.0.0.1:<port> to PostgreSQL; ``mode`` decides what new and open
    connections get: ``"up"`` (forwarded), ``"down"`` (closed at once), ``"hung"`` (held open,
    nothing forwarded either way)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.mode = "up"
        self._conns: list[socket.socket] = []
        self._server = socket.create_server(("127.0.0.1", self.port))
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        self._server.settimeout(0.2)
        while not self._stop:
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self.mode == "down":
                client.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", 5432))
            self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, target: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while True:
                data = source.recv(65536)
                if not data:
                    break
                while self.mode == "hung":
                    time.sleep(0.05)
                if self.mode == "down":
                    break
                target.sendall(data)
        for s in (source, target):
            with contextlib.suppress(OSError):
                s.close()

    def cut(self) -> None:
        """The database goes away: open connections are closed, new ones refused."""
        self.mode = "down"
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._conns.clear()

    def close(self) -> None:
        self._stop = True
        self.cut()
        self._server.close()


@pytest.fixture
def relay() -> Iterator[Relay]:
    running = Relay()
    try:
        yield running
    finally:
        running.close()


@contextlib.asynccontextmanager
async def engine_through(relay: Relay, database: str) -> AsyncIterator[object]:
    name = database.rsplit("/", 1)[1]
    settings = ServerSettings(
        base_url="https://service.example",
        secret_key="k" * 40,
        database_url=f"postgresql://postgres@127.0.0.1:{relay.port}/{name}",
        database_timeout=TIMEOUT,
    )
    built = build_engine(settings)
    await built.start()
    try:
        yield built
    finally:
        await built.aclose()


async def _refused_in_time(built: object) -> float:
    engine = built.engine  # type: ignore[attr-defined]
    started = time.monotonic()
    with pytest.raises(ATHError) as refused:
        await engine.validate_token("ath_at_unknown-token", agent_id="https://a.example/a.json")
    waited = time.monotonic() - started
    assert refused.value.code is ErrorCode.INTERNAL_ERROR and refused.value.status == 503
    assert "the database is unavailable" in refused.value.message
    return waited


async def _works_again(built: object) -> None:
    engine = built.engine  # type: ignore[attr-defined]
    deadline = time.monotonic() + 15
    while True:
        try:
            await engine.validate_token("ath_at_unknown-token", agent_id="https://a.example/a.json")
        except ATHError as exc:
            if exc.code is ErrorCode.TOKEN_INVALID:
                return  # answered from the database again: an unknown token
            assert exc.status == 503, exc
        assert time.monotonic() < deadline, "did not recover"
        await asyncio.sleep(0.2)


def test_postgres_down_answers_503_naming_the_database_then_recovers(relay: Relay) -> None:
    with fresh_postgres_database("ath_pgfault") as database:

        async def run() -> None:
            async with engine_through(relay, database) as built:
                await _works_again(built)
                relay.cut()
                for _ in range(3):
                    assert await _refused_in_time(built) < 4 * TIMEOUT + 2
                readiness = await built.readiness()  # type: ignore[attr-defined]
                assert readiness["database"].startswith("failing")
                relay.mode = "up"
                await _works_again(built)

        asyncio.run(run())


def test_postgres_hung_is_refused_within_the_timeout(relay: Relay) -> None:
    with fresh_postgres_database("ath_pghang") as database:

        async def run() -> None:
            async with engine_through(relay, database) as built:
                await _works_again(built)
                relay.mode = "hung"
                waited = await asyncio.wait_for(_refused_in_time(built), 30)
                # database_timeout = 1 s bounds each wait; allow for a loaded machine.
                assert waited < 4 * TIMEOUT + 2, waited
                relay.mode = "up"
                relay.cut()  # the held connections are dead; fresh ones work
                relay.mode = "up"
                await _works_again(built)

        asyncio.run(run())
