"""Scale-out figures: one gateway on SQLite beside two gateways sharing PostgreSQL and Redis, and
the gateway's memory and ``/metrics`` cost with many agents and tokens.

``throughput``: the proxy under wrk (Debian's ``wrk``, far cheaper than what it measures), in one
run, side by side: the upstream called directly (the floor), one ``ath gateway serve`` on a
SQLite file, and two ``ath gateway serve`` processes on one fresh PostgreSQL database and the
Redis on 127.0.0.1:6379 (shared rate limits and replay records), wrk driving both at once with
half the connections each. The ATH token comes from a real handshake (register, authorize,
consent at our OAuth server, token) through instance A; the calls to B prove the token is
shared. Every proxied call runs the whole check: token read, agent and provider binding, scope
map, the rate limit (in Redis for the two-instance row), provider credentials, forwarding and a
``proxy_request`` audit row.

``memory``: one gateway on a fresh PostgreSQL database; ``--agents`` agents register over HTTP
(each with its own key and identity document, really verified), then ``--tokens`` live tokens
are written to the database; the gateway's RSS is read from /proc after each step and after a
``/metrics`` scrape, whose duration is timed. With ``--migrated`` the schema is brought to head
by ``ath gateway migrate`` first (as several instances are deployed), so the gateway's start
finds it at head and never loads Alembic; without it the gateway migrates the fresh database.

    .venv/bin/python bench/scale.py throughput [--duration 10] [--connections 32]
    .venv/bin/python bench/scale.py memory [--agents 10000] [--tokens 100000] [--migrated]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _wrk import nginx_upstream, wait_for_port
from proxy import BODY, HOST, _Handshake, write_config

ATH = str(Path(sys.executable).with_name("ath"))
PG_ROOT = "postgresql://postgres@127.0.0.1:5432"
REDIS = "redis://127.0.0.1:6379/0"


# --- processes --------------------------------------------------------------------------------


def _gateway(config: Path, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    environ = {**os.environ, **env, "ATH_GATEWAY__LISTEN": f"{HOST}:{port}"}
    return subprocess.Popen(
        [ATH, "gateway", "serve", "--config", str(config)],
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _stop(*procs: subprocess.Popen[bytes]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
    for proc in procs:
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextlib.contextmanager
def _postgres() -> Iterator[str]:
    import asyncpg

    name = f"ath_bench_{secrets.token_hex(4)}"

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(f"{PG_ROOT}/test", timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{PG_ROOT}/{name}"
    finally:
        asyncio.run(run(f'DROP DATABASE "{name}" WITH (FORCE)'))


def _ready(port: int, timeout: float = 60) -> None:
    import httpx

    wait_for_port(port, timeout)
    deadline = time.monotonic() + timeout
    while httpx.get(f"http://{HOST}:{port}/readyz", timeout=5).status_code != 200:
        if time.monotonic() > deadline:
            raise SystemExit(f"gateway on {port} not ready")
        time.sleep(0.1)


# --- wrk --------------------------------------------------------------------------------------


def _wrk(url: str, headers: dict[str, str], connections: int, duration: float) -> list[str]:
    args = ["wrk", "-t1", f"-c{connections}", f"-d{duration:g}s", "--latency"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    return [*args, url]


def _parse(output: str) -> dict[str, float]:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", output)
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", output)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors:.*", output)
    return {
        "rps": rps,
        "p50_ms": float(p50.group(1)) * scale[p50.group(2)] if p50 else 0.0,
        "p99_ms": float(p99.group(1)) * scale[p99.group(2)] if p99 else 0.0,
        "non2xx": float(non2xx.group(1)) if non2xx else 0.0,
        "socket_errors": 1.0 if errors else 0.0,
    }


def _run_wrk(
    targets: list[tuple[str, dict[str, str]]], connections: int, duration: float
) -> dict[str, float]:
    """wrk against every target at once (connections split evenly); summed req/s, worst p99."""
    each = max(1, connections // len(targets))
    procs = [
        subprocess.Popen(_wrk(url, h, each, duration), stdout=subprocess.PIPE, text=True)
        for url, h in targets
    ]
    results = [_parse(p.communicate()[0]) for p in procs]
    return {
        "rps": sum(r["rps"] for r in results),
        "p50_ms": max(r["p50_ms"] for r in results),
        "p99_ms": max(r["p99_ms"] for r in results),
        "non2xx": sum(r["non2xx"] for r in results),
        "socket_errors": sum(r["socket_errors"] for r in results),
    }


def throughput(args: argparse.Namespace) -> None:
    from athkit.testing import free_port, serve_in_thread

    up_port, a_port, b_port, solo_port = (free_port() for _ in range(4))
    rows: dict[str, list[dict[str, float]]] = {"direct": [], "sqlite": [], "pg": []}
    with tempfile.TemporaryDirectory() as tmp, _postgres() as pg_url:
        work = Path(tmp)
        # One provider (our OAuth server) for both setups; nginx as the upstream API.
        handshake = _Handshake([f"http://{HOST}:{solo_port}", f"http://{HOST}:{a_port}"])
        stack = contextlib.ExitStack()
        stack.enter_context(serve_in_thread(handshake.oauth_app, port=handshake.oauth_port))
        stack.enter_context(serve_in_thread(handshake.identity_app, port=handshake.ident_port))
        stack.enter_context(nginx_upstream(work, up_port, {"/api/messages": BODY}))
        solo_cfg = write_config(
            work / "solo", solo_port, up_port, handshake.oauth_url, f"sqlite:///{work}/solo.db"
        )
        pair_cfg = write_config(work / "pair", a_port, up_port, handshake.oauth_url, pg_url)
        shared = {
            "ATH_GATEWAY__REDIS_URL": REDIS,
            "ATH_GATEWAY__RATE_LIMIT__KEY_PREFIX": f"athkit-bench:{secrets.token_hex(4)}",
        }
        procs: list[subprocess.Popen[bytes]] = []
        try:
            wait_for_port(up_port)
            procs.append(_gateway(solo_cfg, solo_port, {}))
            procs.append(_gateway(pair_cfg, a_port, shared))
            procs.append(_gateway(pair_cfg, b_port, shared))
            for port in (solo_port, a_port, b_port):
                _ready(port)
            solo_token = handshake.ath_token(f"http://{HOST}:{solo_port}")
            pair_token = handshake.ath_token(f"http://{HOST}:{a_port}")
            solo_hs = pair_hs = handshake
            provider_token = "any-token-nginx-wants-one"
            direct = [
                (
                    f"http://{HOST}:{up_port}/api/messages",
                    {"Authorization": f"Bearer {provider_token}"},
                )
            ]
            solo = [
                (
                    f"http://{HOST}:{solo_port}/ath/proxy/mail/messages",
                    {"Authorization": f"Bearer {solo_token}", "X-ATH-Agent-ID": solo_hs.agent_id},
                )
            ]
            pair = [
                (
                    f"http://{HOST}:{port}/ath/proxy/mail/messages",
                    {"Authorization": f"Bearer {pair_token}", "X-ATH-Agent-ID": pair_hs.agent_id},
                )
                for port in (a_port, b_port)
            ]
            for _ in range(args.rounds):  # interleaved: load from elsewhere hits all alike
                rows["direct"].append(_run_wrk(direct, args.connections, args.duration))
                rows["sqlite"].append(_run_wrk(solo, args.connections, args.duration))
                rows["pg"].append(_run_wrk(pair, args.connections, args.duration))
        finally:
            _stop(*procs)
            stack.close()
    print(
        f"scale benchmark: wrk, {args.connections} connections in all, {args.rounds} interleaved "
        f"rounds of {args.duration:g} s (medians); one GET through the proxy"
    )
    print(f"{'setup':<52} {'req/s':>8} {'ratio':>6} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}")
    floor = _median(rows["direct"])["rps"]
    names = {
        "direct": "upstream directly (floor)",
        "sqlite": "1 gateway, SQLite file",
        "pg": "2 gateways, one PostgreSQL + one Redis (wrk on both)",
    }
    for key, label in names.items():
        r = _median(rows[key])
        print(
            f"{label:<52} {r['rps']:8.0f} {r['rps'] / floor:6.2f} {r['p50_ms']:8.2f} "
            f"{r['p99_ms']:8.2f} {int(r['non2xx']):8d}"
        )


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    import statistics

    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


# --- memory -----------------------------------------------------------------------------------


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class _Agents:
    """``count`` agents with their own keys, identity documents on one loopback host."""

    def __init__(self, count: int) -> None:
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import JSONResponse, Response
        from starlette.routing import Route

        from athkit.protocol import generate_private_key, public_key_to_jwk
        from athkit.testing import free_port

        self.port = free_port()
        self.keys = [generate_private_key() for _ in range(count)]
        self.docs = [
            {
                "ath_version": "0.1",
                "agent_id": self.agent_id(i),
                "name": f"Bench agent {i}",
                "developer": {"name": "Bench", "id": "bench"},
                "public_key": public_key_to_jwk(key.public_key()),
            }
            for i, key in enumerate(self.keys)
        ]

        async def document(request: Request) -> Response:
            return JSONResponse(self.docs[int(request.path_params["n"])])

        self.app = Starlette(routes=[Route("/agents/{n:int}/agent.json", document)])

    def agent_id(self, n: int) -> str:
        return f"http://{HOST}:{self.port}/agents/{n}/agent.json"


async def _register_all(base: str, agents: _Agents, concurrency: int) -> int:
    import httpx

    from athkit.protocol import create_attestation

    queue = list(range(len(agents.keys)))
    done = 0

    async def worker(http: httpx.AsyncClient) -> None:
        nonlocal done
        while queue:
            n = queue.pop()
            body = {
                "agent_id": agents.agent_id(n),
                "agent_attestation": create_attestation(
                    agents.keys[n], agent_id=agents.agent_id(n), audience=base
                ),
                "developer": {"name": "Bench", "id": "bench"},
                "requested_providers": [{"provider_id": "mail", "scopes": ["mail:read"]}],
                "redirect_uris": ["http://127.0.0.1:9/cb"],
            }
            response = await http.post(f"{base}/ath/agents/register", json=body)
            if response.status_code != 201:
                raise SystemExit(f"registration {n}: {response.status_code} {response.text}")
            done += 1

    async with httpx.AsyncClient(timeout=60) as http:
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
    return done


async def _insert_tokens(url: str, count: int) -> None:
    """``count`` live tokens (hashes only, as the engine stores them) for the registered agents."""
    import hashlib

    from athkit.server._sql import agents_table, tokens_table
    from athkit.storage import create_database

    engine = create_database(url)
    try:
        async with engine.connect() as conn:
            agents = (
                await conn.execute(
                    agents_table.select().with_only_columns(
                        agents_table.c.client_id, agents_table.c.agent_id
                    )
                )
            ).all()
        now = time.time()
        batch: list[dict[str, Any]] = []
        for i in range(count):
            client_id, agent_id = agents[i % len(agents)]
            batch.append(
                {
                    "token_id": f"bench-{i}",
                    "token_hash": hashlib.sha256(f"bench-token-{i}".encode()).hexdigest(),
                    "client_id": client_id,
                    "agent_id": agent_id,
                    "user_id": f"user-{i % 1000}",
                    "provider_id": "mail",
                    "scopes": ["mail:read"],
                    "created_at": now,
                    "expires_at": now + 3600,
                    "grant_id": None,
                    "session_id": None,
                    "revoked_at": None,
                    "revoked_by": None,
                }
            )
            if len(batch) == 5000:
                async with engine.begin() as conn:
                    await conn.execute(tokens_table.insert(), batch)
                batch = []
        if batch:
            async with engine.begin() as conn:
                await conn.execute(tokens_table.insert(), batch)
    finally:
        await engine.dispose()


def memory(args: argparse.Namespace) -> None:
    import httpx

    from athkit.testing import free_port, serve_in_thread

    port, up_port = free_port(), free_port()
    base = f"http://{HOST}:{port}"
    agents = _Agents(args.agents)
    with tempfile.TemporaryDirectory() as tmp, _postgres() as pg_url:
        hs = _Handshake([base])
        config = write_config(Path(tmp), port, up_port, hs.oauth_url, pg_url)
        with (
            serve_in_thread(agents.app, port=agents.port),
            serve_in_thread(hs.oauth_app, port=hs.oauth_port),
        ):
            if args.migrated:
                subprocess.run([ATH, "gateway", "migrate", "--config", str(config)], check=True)
            proc = _gateway(config, port, {})
            try:
                _ready(port)
                steps = [("started", _rss_mb(proc.pid), "")]
                began = time.perf_counter()
                registered = asyncio.run(_register_all(base, agents, args.concurrency))
                took = time.perf_counter() - began
                steps.append(
                    (
                        f"after {registered} registrations",
                        _rss_mb(proc.pid),
                        f"{registered / took:.0f} registrations/s",
                    )
                )
                asyncio.run(_insert_tokens(pg_url, args.tokens))
                steps.append((f"{args.tokens} live tokens in the database", _rss_mb(proc.pid), ""))
                scrapes = []
                for _ in range(3):
                    began = time.perf_counter()
                    body = httpx.get(f"{base}/metrics", timeout=60).text
                    scrapes.append(time.perf_counter() - began)
                gauge = re.search(r"^athkit_gateway_active_tokens (\S+)", body, re.MULTILINE)
                began = time.perf_counter()
                httpx.get(f"{base}/healthz", timeout=60)
                floor = time.perf_counter() - began
                later = ", ".join(f"{1000 * s:.1f}" for s in scrapes[1:])
                steps.append(
                    (
                        "after 3 /metrics scrapes",
                        _rss_mb(proc.pid),
                        f"first scrape (counts) {1000 * scrapes[0]:.1f} ms, then {later} ms; "
                        f"gauge {gauge.group(1) if gauge else '?'}; /healthz {1000 * floor:.1f} ms",
                    )
                )
            finally:
                _stop(proc)
    print(f"gateway memory (PostgreSQL store): {args.agents} agents, {args.tokens} tokens")
    print(f"{'step':<44} {'RSS MB':>8}  note")
    for name, rss, note in steps:
        print(f"{name:<44} {rss:8.1f}  {note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    t = sub.add_parser("throughput")
    t.add_argument("--duration", type=float, default=10.0)
    t.add_argument("--connections", type=int, default=32)
    t.add_argument("--rounds", type=int, default=3)
    m = sub.add_parser("memory")
    m.add_argument("--agents", type=int, default=10_000)
    m.add_argument("--tokens", type=int, default=100_000)
    m.add_argument("--concurrency", type=int, default=16)
    m.add_argument("--migrated", action="store_true", help="ath gateway migrate before start")
    args = parser.parse_args()
    (throughput if args.mode == "throughput" else memory)(args)


if __name__ == "__main__":
    main()
