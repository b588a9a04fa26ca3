"""One complete handshake on PostgreSQL (register → authorize → consent → callback → token) costs
at most the statements and round trips counted here, step by step; a change that adds one fails.

Round trips are counted where they leave the process: every call of asyncpg that talks to the
server (a prepared statement's execution, a ``prepare``, a ``BEGIN``/``COMMIT`` sent by
``execute``). Statements are SQLAlchemy's ``before_cursor_execute``. The handshake counted is
the fourth, so prepared statements and the identity-document cache are warm, as in service.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from athkit.server import ServerSettings, build_engine
from athkit.testing import serve_in_thread
from tests.integration.native.harness import IdentityHost, World
from tests.integration.native.service import OffsetClock
from tests.services import fresh_postgres_database
from tests.unit.server.helpers import (
    FakeProvider,
    engine_handshake,
    engine_register,
    provider_settings,
)

pytestmark = pytest.mark.postgres

BASE = "https://service.test"

# (statements, round trips) of each step. Where they go: register — the jti, the agent, its
# audit row; authorize — the agent, the jti, the session, its audit row; consent — the session,
# the agent, the browser binding (conditional UPDATE); callback — the session, the agent, the
# claim bound → exchanging, the grant (one INSERT … ON CONFLICT), the claim → consented; token —
# the client, the jti, the session, the claim consented → consumed, the token, its audit row.
BUDGET = {
    "register": (3, 3),
    "authorize": (4, 4),
    "consent": (3, 3),
    "callback": (5, 5),
    "token": (6, 6),
}


class _Counter:
    def __init__(self) -> None:
        self.statements = 0
        self.round_trips = 0

    def snapshot(self) -> tuple[int, int]:
        return self.statements, self.round_trips


@pytest.fixture
def counter(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Counter]:
    import asyncpg.connection
    import asyncpg.prepared_stmt

    counted = _Counter()

    def wrap(cls: type, name: str) -> None:
        original: Callable[..., Any] = getattr(cls, name)

        async def counting(self: object, *args: Any, **kwargs: Any) -> Any:
            counted.round_trips += 1
            return await original(self, *args, **kwargs)

        monkeypatch.setattr(cls, name, counting)

    for name in ("execute", "executemany", "fetch", "fetchrow", "fetchval", "prepare", "_prepare"):
        wrap(asyncpg.connection.Connection, name)
    for name in ("fetch", "fetchrow", "fetchval", "executemany"):
        wrap(asyncpg.prepared_stmt.PreparedStatement, name)
    yield counted


@pytest.fixture
def database_url() -> Iterator[str]:
    with fresh_postgres_database("ath_rt") as url:
        yield url


async def _handshake(
    n: int, engine: Any, world: World, provider: FakeProvider, counter: _Counter
) -> dict[str, tuple[int, int]]:
    """One handshake of a new agent; (statements, round trips) of each step."""
    costs: dict[str, tuple[int, int]] = {}
    before = counter.snapshot()

    def step(name: str) -> None:
        nonlocal before
        now = counter.snapshot()
        costs[name] = (now[0] - before[0], now[1] - before[1])
        before = now

    agent = world.new_agent(f"rt{n}")
    registered = await engine_register(
        engine, agent, world.clock, base=BASE, scopes=["orders:read"]
    )
    step("register")
    issued = await engine_handshake(
        engine,
        agent,
        registered,
        provider,
        world.clock,
        base=BASE,
        scopes=["orders:read"],
        step=step,
    )
    assert issued.access_token
    return costs


async def test_a_handshake_on_postgres_stays_within_its_round_trips(
    counter: _Counter, database_url: str
) -> None:
    identities = IdentityHost()
    with serve_in_thread(identities.app) as host:
        clock = OffsetClock()
        provider = FakeProvider()
        settings = ServerSettings(
            base_url=BASE,
            secret_key=secrets.token_urlsafe(32),
            database_url=database_url,
            allow_http=True,
            allow_loopback=True,
            providers=[provider_settings()],
        )
        built = build_engine(settings, oauth=provider, clock=clock)
        await built.start()
        assert built.database is not None

        @event.listens_for(built.database.sync_engine, "before_cursor_execute")
        def count_statement(*_: object) -> None:
            counter.statements += 1

        world = World(BASE, "", host.url, clock, identities, httpx.Client())
        try:
            for n in range(4):  # the last one counts: statements prepared, documents cached
                costs = await _handshake(n, built.engine, world, provider, counter)
        finally:
            world.http.close()
            await built.aclose()
    over = {
        k: (costs[k], BUDGET[k])
        for k in BUDGET
        if costs[k][0] > BUDGET[k][0] or costs[k][1] > BUDGET[k][1]
    }
    assert not over, f"(statements, round trips) over budget, (counted, budget): {over}"
    # Before these were batched: 24 statements in 26 round trips.
    assert sum(c[1] for c in costs.values()) <= 21, costs
