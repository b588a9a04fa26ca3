"""Proxy throughput and added latency: the same upstream called directly and through the gateway.

Three kinds of process, all on 127.0.0.1:
  * the upstream: a minimal ASGI app answering a small JSON document (uvicorn, uvloop, httptools,
    no access log), checking the bearer token it is sent like a real API would;
  * the gateway: ``create_gateway_app`` from a gateway configuration, same uvicorn settings;
  * the load generator: aiohttp, a fixed number of concurrent connections, bounded in time.

The ATH token is seeded through the engine's stores inside the gateway process (a registration,
a provider grant holding the upstream's token, and an access token), because this script measures
the proxy, not the handshake; every proxied call still runs the full check path (token lookup,
agent and provider binding, scope → route map, rate limit, provider credentials, audit).

    .venv/bin/python bench/proxy.py [--duration 10] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
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


def run_gateway(port: int, upstream_port: int, token_file: Path, workdir: Path) -> None:
    import uvicorn

    from athkit.gateway import create_gateway_app, load_config

    secret = workdir / "client_secret"
    secret.write_text("bench-client-secret")
    config_file = workdir / "gateway.toml"
    config_file.write_text(
        f"""
mode = "development"
public_base_url = "http://{HOST}:{port}"
database_url = "sqlite:///{workdir}/gateway.db"

[rate_limit]
requests = 100000000

[providers.mail]
display_name = "Bench Mail"
authorization_endpoint = "http://{HOST}:{upstream_port}/authorize"
token_endpoint = "http://{HOST}:{upstream_port}/token"
client_id = "gateway"
client_secret_file = "{secret}"
scopes = ["mail:read"]
api_base = "http://{HOST}:{upstream_port}/api"

[providers.mail.routes]
"mail:read" = ["GET /messages", "GET /messages/{{id}}"]

[providers.mail.approval]
auto_approve = ["mail:read"]
"""
    )
    app = create_gateway_app(load_config(config_file, mode="development"))
    token = asyncio.run(_seed(app))
    token_file.write_text(token)
    uvicorn.run(
        app,
        host=HOST,
        port=port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )


async def _seed(app: Any) -> str:
    from athkit.protocol import generate_secret, hash_secret
    from athkit.server import AgentRecord, ProviderApproval, ProviderGrant, TokenCipher, TokenRecord

    await app.prepare()
    engine = app.engine
    now = time.time()
    await engine.stores.agents.insert(
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
    cipher = TokenCipher(engine.settings.secret_key.get_secret_value())
    grant = await engine.stores.grants.upsert(
        ProviderGrant(
            grant_id=generate_secret("grant_", 12),
            client_id="bench-client",
            agent_id=AGENT_ID,
            user_id="bench-user",
            provider_id="mail",
            consented_scopes=["mail:read"],
            access_token_enc="",
            created_at=now,
            updated_at=now,
            expires_at=now + 86400,
        )
    )
    grant.access_token_enc = cipher.encrypt(PROVIDER_TOKEN, bound_to=grant.grant_id)
    await engine.stores.grants.update(grant)
    token = generate_secret("ath_at_")
    await engine.stores.tokens.insert(
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
            grant_id=grant.grant_id,
        )
    )
    await app.shutdown()
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    from athkit.testing import free_port

    up_port, gw_port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        token_file = workdir / "token"
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        procs = [
            subprocess.Popen([sys.executable, __file__, "upstream", str(up_port)], env=env),
            subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "gateway",
                    str(gw_port),
                    str(up_port),
                    str(token_file),
                    str(workdir),
                ],
                env=env,
            ),
        ]
        try:
            _wait_for_port(up_port)
            _wait_for_port(gw_port)
            token = token_file.read_text().strip()
            direct_url = f"http://{HOST}:{up_port}/api/messages"
            gateway_url = f"http://{HOST}:{gw_port}/ath/proxy/mail/messages"
            direct_headers = {"Authorization": f"Bearer {PROVIDER_TOKEN}"}
            gateway_headers = {"Authorization": f"Bearer {token}", "X-ATH-Agent-ID": AGENT_ID}
            direct = _measure(direct_url, direct_headers, args.duration, args.concurrency)
            through = _measure(gateway_url, gateway_headers, args.duration, args.concurrency)
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(timeout=10)
    ratio = through["rps"] / direct["rps"]
    print(
        f"proxy benchmark: {args.concurrency} concurrent connections, "
        f"{args.duration:g} s per side, one GET of a {len(BODY)}-byte JSON document"
    )
    print(f"{'':10} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for name, r in (("direct", direct), ("gateway", through)):
        print(f"{name:10} {r['rps']:9.0f} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} {r['errors']:7d}")
    print(f"throughput ratio gateway/direct: {ratio:.2f}  (target ≥ 0.50)")
    print(
        f"added latency: p50 {through['p50_ms'] - direct['p50_ms']:.2f} ms, "
        f"p99 {through['p99_ms'] - direct['p99_ms']:.2f} ms  (target p99 ≤ 5 ms)"
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "upstream":
        run_upstream(int(sys.argv[2]))
    elif len(sys.argv) > 1 and sys.argv[1] == "gateway":
        run_gateway(int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4]), Path(sys.argv[5]))
    elif len(sys.argv) > 1 and sys.argv[1] == "load":
        run_load(sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5]))
    else:
        main()
