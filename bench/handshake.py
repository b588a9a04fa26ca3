"""Complete ATH handshakes per second and token validations per second, in one run.

    .venv/bin/python bench/handshake.py [--seconds 3]

A handshake is authorize → consent → callback → token for an agent registered once, with a fresh
attestation (new jti) at each step, really verified (ES256, identity document fetched once over
HTTP on 127.0.0.1 and cached, jti replay store).

* in-process: ``ATHEngine`` methods called directly; the provider is the PKCE-checking stand-in
  of the unit tests (no network), so the figure is the engine's own cost, with memory stores and
  with SQL stores on a SQLite file.
* HTTP: the native test service under uvicorn in its own process (SQLite file) and the real
  OAuth server (in this process); one
  browser (already logged in) answers the consent page each time, the engine exchanges the code
  and calls userinfo over HTTP. Sequential, one handshake at a time.

Token validations: ``validate_token`` in-process, and ``GET /api/orders`` behind
``require_scopes`` over HTTP (sequential, and 16 concurrent clients).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the tests' harness: OAuth server config, native service

from athkit.server import (  # noqa: E402
    ServerSettings,
    build_engine,
)
from athkit.testing import free_port, serve_in_thread  # noqa: E402
from tests.integration.native.harness import (  # noqa: E402
    IdentityHost,
    service_process,
    surroundings,
)
from tests.integration.native.service import OffsetClock  # noqa: E402
from tests.unit.server.helpers import (  # noqa: E402
    FakeProvider,
    engine_handshake,
    engine_register,
    provider_settings,
)

BASE = "https://bench.example"
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


async def _pg_database() -> str | None:
    """A fresh PostgreSQL database for the run, or ``None`` when PostgreSQL is not running."""
    global PG_URL
    try:
        import asyncpg

        admin = await asyncpg.connect(PG_URL, timeout=3)
    except (OSError, ImportError, Exception):
        return None
    name = f"ath_bench_{secrets.token_hex(4)}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    PG_URL = f"postgresql://postgres@127.0.0.1:5432/{name}"
    return name


async def _drop_pg(name: str) -> None:
    import asyncpg

    admin = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/test", timeout=3)
    await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    await admin.close()


async def _rate(seconds: float, step: Callable[[], Awaitable[object]]) -> float:
    for _ in range(5):  # warm-up
        await step()
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        await step()
        count += 1
    return count / elapsed


async def in_process(
    seconds: float, kind: str, agents_host: IdentityHost, agents_url: str, tmp: Path
) -> tuple[float, float]:
    """(handshakes/s, validations/s) calling the engine directly."""
    from tests.integration.native.harness import World

    clock = OffsetClock()
    url = {
        "memory": "memory://",
        "sqlite": f"sqlite:///{tmp / 'sqlite.db'}",
        "postgres": PG_URL,
    }[kind]
    provider = FakeProvider()
    settings = ServerSettings(
        base_url=BASE,
        secret_key=secrets.token_urlsafe(32),
        database_url=url,
        allow_http=True,
        allow_loopback=True,
        providers=[provider_settings()],
    )
    # The same assembly as the gateway and native services (fast SQLite reads included).
    built = build_engine(settings, oauth=provider, clock=clock)
    await built.start()
    engine = built.engine
    world = World(BASE, "", agents_url, clock, agents_host, httpx.Client())
    agent = world.new_agent("bench")
    registered = await engine_register(engine, agent, clock, base=BASE, scopes=["orders:read"])
    tokens: list[str] = []

    async def handshake() -> None:
        issued = await engine_handshake(
            engine, agent, registered, provider, clock, base=BASE, scopes=["orders:read"]
        )
        tokens.append(issued.access_token)

    handshakes = await _rate(seconds, handshake)
    token = tokens[-1]
    validations = await _rate(
        seconds, lambda: engine.validate_token(token, agent_id=agent.agent_id)
    )
    world.http.close()
    await built.aclose()
    return handshakes, validations


def over_http(seconds: float, tmp: Path) -> tuple[float, float, float]:
    """(handshakes/s, validations/s sequential, validations/s with 16 clients) over HTTP.

    The service runs as its own process (uvicorn, SQLite file), so the load generator and the
    OAuth server in this process do not share its interpreter.
    """
    base = f"http://127.0.0.1:{free_port()}"
    with contextlib.ExitStack() as stack:
        around = stack.enter_context(surroundings(base))
        config_file = tmp / "service.json"
        config = around.service_config(base, f"sqlite:///{tmp / 'service.db'}")
        # Measure the check, not the per-agent rate limit (600 calls a minute by default).
        config.rate_limit_requests = 10**9
        config_file.write_text(config.to_json(), encoding="utf-8")
        stack.enter_context(service_process(config_file, base))
        http = stack.enter_context(httpx.Client(timeout=10))
        browser = stack.enter_context(httpx.Client(timeout=10))
        world = around.world(base, http)
        agent = world.new_agent("bench")
        client_id, secret = world.registered(agent, ["orders:read"])
        token = ""

        def handshake() -> str:
            url, session_id, _ = world.start(agent, client_id, ["orders:read"])
            code = world.consent(url, browser=browser)["code"]
            response = world.token(agent, client_id, secret, session_id, code)
            assert response.status_code == 200, response.text
            return str(response.json()["access_token"])

        for _ in range(3):
            token = handshake()
        count, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds:
            token = handshake()
            count += 1
        handshakes = count / elapsed

        headers = {"Authorization": f"Bearer {token}", "X-ATH-Agent-ID": agent.agent_id}
        url = f"{world.base}/api/orders"
        count, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds:
            assert world.http.get(url, headers=headers).status_code == 200
            count += 1
        sequential = count / elapsed

        async def concurrent() -> float:
            done = 0
            async with httpx.AsyncClient(
                timeout=10, limits=httpx.Limits(max_connections=16)
            ) as client:
                stop = time.perf_counter() + seconds

                async def worker() -> None:
                    nonlocal done
                    while time.perf_counter() < stop:
                        response = await client.get(url, headers=headers)
                        assert response.status_code == 200
                        done += 1

                begin = time.perf_counter()
                await asyncio.gather(*(worker() for _ in range(16)))
                return done / (time.perf_counter() - begin)

        return handshakes, sequential, asyncio.run(concurrent())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    args = parser.parse_args()
    identities = IdentityHost()
    with tempfile.TemporaryDirectory() as tmp_dir, serve_in_thread(identities.app) as host:
        tmp = Path(tmp_dir)
        mem = asyncio.run(in_process(args.seconds, "memory", identities, host.url, tmp))
        sql = asyncio.run(in_process(args.seconds, "sqlite", identities, host.url, tmp))
        pg_name = asyncio.run(_pg_database())
        pg = None
        if pg_name is not None:
            try:
                pg = asyncio.run(in_process(args.seconds, "postgres", identities, host.url, tmp))
            finally:
                asyncio.run(_drop_pg(pg_name))
        (tmp / "http").mkdir()
        http: tuple[float, float, float] | None
        try:
            http = over_http(args.seconds, tmp / "http")
        except TimeoutError as exc:  # the service process did not come up (a loaded machine)
            print(f"HTTP rows skipped: {exc}")
            http = None
    rows = [
        ("in-process, memory stores", mem[0], mem[1]),
        ("in-process, SQLite stores", sql[0], sql[1]),
        *([("in-process, PostgreSQL stores", pg[0], pg[1])] if pg else []),
        *([("HTTP, SQLite, real OAuth server (sequential)", http[0], http[1])] if http else []),
    ]
    print(f"{'setup':<46} {'handshakes/s':>13} {'ratio':>6} {'validations/s':>14} {'ratio':>6}")
    for name, hs, val in rows:
        print(f"{name:<46} {hs:>13.1f} {hs / mem[0]:>6.3f} {val:>14.1f} {val / mem[1]:>6.3f}")
    if http is not None:
        print(
            f"{'HTTP validations, 16 concurrent clients':<46} {'':>13} {'':>6} "
            f"{http[2]:>14.1f} {http[2] / mem[1]:>6.3f}"
        )


if __name__ == "__main__":
    main()
