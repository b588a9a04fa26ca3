"""Proxy throughput and added latency: the same upstream called directly and through the gateway.

Three kinds of process, all on 127.0.0.1:
  * the upstream: a minimal ASGI app answering a small JSON document (uvicorn, uvloop, httptools,
    no access log), checking the bearer token it is sent like a real API would;
  * the gateway: ``create_gateway_app`` from a gateway configuration, same uvicorn settings;
  * the load generator: aiohttp, a fixed number of concurrent connections, bounded in time.

The ATH token is seeded through the engine's SQL stores into the gateway's SQLite file before
the gateway starts (a registration, a provider grant holding the upstream's token, and an access
token), because this script measures
the proxy, not the handshake; every proxied call still runs the full check path (token lookup,
agent and provider binding, scope → route map, rate limit, provider credentials, audit).

    .venv/bin/python bench/proxy.py [--duration 10] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
PROVIDER_TOKEN = "bench-provider-token-0123456789abcdef"
AGENT_ID = "https://agent.bench.example/.well-known/agent.json"
BODY = json.dumps({"messages": [{"id": str(i), "subject": "hello"} for i in range(5)]}).encode()


# --- the upstream -----------------------------------------------------------------------------


async def upstream_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """GET /messages with the right bearer token → 200 JSON; anything else → 401/404."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    auth = dict(scope["headers"]).get(b"authorization", b"")
    if auth != b"Bearer " + PROVIDER_TOKEN.encode():
        status, body = 401, b'{"error":"invalid_token"}'
    elif scope["path"] != "/api/messages":
        status, body = 404, b'{"error":"not_found"}'
    else:
        status, body = 200, BODY
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def run_upstream(port: int) -> None:
    import uvicorn

    uvicorn.run(
        upstream_app,
        host=HOST,
        port=port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )


# --- the gateway ------------------------------------------------------------------------------


def write_config(workdir: Path, port: int, upstream_port: int, database_url: str) -> Path:
    """A production-mode gateway.toml, secrets in files."""
    (workdir / "secret_key").write_text("bench-secret-key-" + "x" * 32)
    (workdir / "client_secret").write_text("bench-client-secret")
    config_file = workdir / "gateway.toml"
    config_file.write_text(
        f"""
public_base_url = "http://{HOST}:{port}"
listen = "{HOST}:{port}"
database_url = "{database_url}"
secret_key_file = "secret_key"

[rate_limit]
requests = 100000000

[providers.mail]
display_name = "Bench Mail"
authorization_endpoint = "http://{HOST}:{upstream_port}/authorize"
token_endpoint = "http://{HOST}:{upstream_port}/token"
client_id = "gateway"
client_secret_file = "client_secret"
scopes = ["mail:read"]
api_base = "http://{HOST}:{upstream_port}/api"

[providers.mail.routes]
"mail:read" = ["GET /messages", "GET /messages/{{id}}"]

[providers.mail.approval]
auto_approve = ["mail:read"]
"""
    )
    return config_file


def run_gateway(config_file: Path, token_file: Path) -> None:
    import uvicorn

    from athkit.gateway import create_gateway_app, load_config

    config = load_config(config_file)
    app = create_gateway_app(config)
    if config.database_url.startswith("memory:"):
        # Memory stores live in this process only: seed them here.
        secret = app.settings.secret_key.get_secret_value()
        token_file.write_text(asyncio.run(seed(app.engine.stores, secret)))
    uvicorn.run(
        app,
        host=config.listen_host,
        port=config.listen_port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )


async def seed_database(config_file: Path) -> str:
    """Seed the gateway's SQL database before the gateway starts."""
    from athkit.gateway import load_config, resolve_settings
    from athkit.server import open_sql_stores

    settings = resolve_settings(load_config(config_file))
    stores, db = await open_sql_stores(settings.database_url)
    try:
        return await seed(stores, settings.secret_key.get_secret_value())
    finally:
        await db.dispose()


async def seed(stores: Any, secret_key: str) -> str:
    """Write a registration, a provider grant and an ATH access token into the stores."""
    from athkit.protocol import generate_secret, hash_secret
    from athkit.server import (
        AgentRecord,
        ProviderApproval,
        ProviderGrant,
        TokenCipher,
        TokenRecord,
    )

    now = time.time()
    await stores.agents.insert(
        AgentRecord(
            client_id="bench-client",
            agent_id=AGENT_ID,
            agent_name="Bench agent",
            developer_name="Bench",
            developer_id="bench",
            client_secret_hash=hash_secret("unused"),
            status="approved",
            providers=[ProviderApproval("mail", ["mail:read"], ["mail:read"], [])],
            created_at=now,
            updated_at=now,
            approval_expires=now + 86400,
        )
    )
    grant_id = generate_secret("grant_", 12)
    cipher = TokenCipher(secret_key)
    await stores.grants.upsert(
        ProviderGrant(
            grant_id=grant_id,
            client_id="bench-client",
            agent_id=AGENT_ID,
            user_id="bench-user",
            provider_id="mail",
            consented_scopes=["mail:read"],
            access_token_enc=cipher.encrypt(PROVIDER_TOKEN, bound_to=grant_id),
            created_at=now,
            updated_at=now,
            expires_at=now + 86400,
        )
    )
    token = generate_secret("ath_at_")
    await stores.tokens.insert(
        TokenRecord(
            token_id=generate_secret("tok_", 12),
            token_hash=hash_secret(token),
            client_id="bench-client",
            agent_id=AGENT_ID,
            user_id="bench-user",
            provider_id="mail",
            scopes=["mail:read"],
            created_at=now,
            expires_at=now + 3600,
            grant_id=grant_id,
        )
    )
    return token


# --- the load generator -----------------------------------------------------------------------


async def _load(
    url: str, headers: dict[str, str], duration: float, concurrency: int
) -> dict[str, Any]:
    import aiohttp

    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        # Warm the connections and both servers' code paths first.
        for _ in range(3):
            async with session.get(url, headers=headers) as r:
                await r.read()
                if r.status != 200:
                    raise SystemExit(f"{url} answered {r.status}: {await r.text()}")
        deadline = time.perf_counter() + duration

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                try:
                    async with session.get(url, headers=headers) as r:
                        await r.read()
                        ok = r.status == 200
                except aiohttp.ClientError:
                    ok = False
                if ok:
                    latencies.append(time.perf_counter() - started)
                else:
                    errors += 1

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    latencies.sort()
    return {
        "requests": len(latencies),
        "errors": errors,
        "rps": len(latencies) / elapsed,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99) - 1],
    }


def run_load(url: str, headers: str, duration: float, concurrency: int) -> None:
    import uvloop

    result = uvloop.run(_load(url, json.loads(headers), duration, concurrency))
    print(json.dumps(result))


# --- the driver -------------------------------------------------------------------------------


def _wait_for_port(port: int, timeout: float = 20.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((HOST, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listening on {HOST}:{port} after {timeout}s")


def _measure(
    url: str, headers: dict[str, str], duration: float, concurrency: int
) -> dict[str, Any]:
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "load",
            url,
            json.dumps(headers),
            str(duration),
            str(concurrency),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=duration + 60,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        key: statistics.median(r[key] for r in runs)
        for key in ("rps", "p50_ms", "p99_ms", "errors")
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (medians)")
    parser.add_argument(
        "--database",
        choices=["sqlite", "postgres", "memory"],
        default="sqlite",
        help="the gateway's store (memory: the proxy's own cost, without a database)",
    )
    parser.add_argument(
        "--profile", metavar="FILE", help="record the gateway with py-spy (collapsed stacks)"
    )
    args = parser.parse_args()
    from athkit.testing import free_port

    up_port, gw_port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        database_url = {
            "sqlite": f"sqlite:///{workdir}/gateway.db",
            "postgres": "postgresql://postgres@127.0.0.1:5432/test",
            "memory": "memory://",
        }[args.database]
        config_file = write_config(workdir, gw_port, up_port, database_url)
        token_file = workdir / "token"
        token = "" if args.database == "memory" else asyncio.run(seed_database(config_file))
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        procs = [
            subprocess.Popen([sys.executable, __file__, "upstream", str(up_port)], env=env),
            subprocess.Popen(
                [sys.executable, __file__, "gateway", str(config_file), str(token_file)],
                env=env,
            ),
        ]
        try:
            _wait_for_port(up_port)
            _wait_for_port(gw_port)
            token = token or token_file.read_text().strip()
            direct_url = f"http://{HOST}:{up_port}/api/messages"
            gateway_url = f"http://{HOST}:{gw_port}/ath/proxy/mail/messages"
            direct_headers = {"Authorization": f"Bearer {PROVIDER_TOKEN}"}
            gateway_headers = {"Authorization": f"Bearer {token}", "X-ATH-Agent-ID": AGENT_ID}
            directs, throughs = [], []
            for i in range(args.rounds):
                # Interleaved, so that load from elsewhere on the machine hits both sides alike.
                directs.append(
                    _measure(direct_url, direct_headers, args.duration, args.concurrency)
                )
                spy = None
                if args.profile and i == 0:
                    spy = subprocess.Popen(
                        [
                            "py-spy",
                            "record",
                            "-r",
                            "200",
                            "-f",
                            "raw",
                            "-o",
                            args.profile,
                            "-d",
                            str(int(args.duration)),
                            "-p",
                            str(procs[1].pid),
                        ]
                    )
                throughs.append(
                    _measure(gateway_url, gateway_headers, args.duration, args.concurrency)
                )
                if spy is not None:
                    spy.wait(timeout=60)
        finally:
            for proc in procs:
                proc.send_signal(signal.SIGINT)
            for proc in procs:
                proc.wait(timeout=10)
    direct, through = _median(directs), _median(throughs)
    ratio = through["rps"] / direct["rps"]
    print(
        f"proxy benchmark ({args.database} store): {args.concurrency} concurrent connections, "
        f"{args.rounds} interleaved rounds of {args.duration:g} s per side (medians), "
        f"one GET of a {len(BODY)}-byte JSON document"
    )
    print(f"{'':10} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for name, r in (("direct", direct), ("gateway", through)):
        print(
            f"{name:10} {r['rps']:9.0f} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} {int(r['errors']):7d}"
        )
    print(f"throughput ratio gateway/direct: {ratio:.2f}  (target ≥ 0.50)")
    print(
        f"added latency: p50 {through['p50_ms'] - direct['p50_ms']:.2f} ms, "
        f"p99 {through['p99_ms'] - direct['p99_ms']:.2f} ms  (target p99 ≤ 5 ms)"
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "upstream":
        run_upstream(int(sys.argv[2]))
    elif len(sys.argv) > 1 and sys.argv[1] == "gateway":
        run_gateway(Path(sys.argv[2]), Path(sys.argv[3]))
    elif len(sys.argv) > 1 and sys.argv[1] == "load":
        run_load(sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5]))
    else:
        main()
