"""Proxy throughput and added latency: the same upstream called directly and through the gateway.

Processes, all on 127.0.0.1:
  * the upstream: a minimal ASGI app answering a small JSON document (uvicorn, uvloop, httptools,
    no access log), checking the bearer token it is sent like a real API would;
  * the gateway: ``create_gateway_app`` from a gateway configuration, same uvicorn settings;
  * the load generator: aiohttp, a fixed number of concurrent connections, bounded in time;
  * for reference, a bare forwarder (uvicorn + one aiohttp session, no checks at all): the floor
    any Python proxy built on these two libraries starts from.

Each process's CPU time per request is read from /proc, so the figures say where the time goes
even when other work on the machine slows everything down.

The ATH token comes from a real handshake before the measurement: an agent with a P-256 key and
an identity document registers, authorizes, a user consents at a real OAuth server (our own, with
``drive_consent``) and the agent exchanges its code; the OAuth server and the identity host run
as threads of this driver and are not measured. The upstream checks bearer tokens by RFC 7662
introspection at that OAuth server and caches the answer per token, like a resource server. The
direct side calls it with a provider token of the same user, obtained by an ordinary OAuth flow.

    .venv/bin/python bench/proxy.py [--duration 10] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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
INTROSPECTION_CLIENT = ("mail-api", "mail-api-introspection-secret")
GATEWAY_CLIENT = ("ath-gateway", "gateway-client-secret-0123456789")
DIRECT_CLIENT = ("direct-client", "direct-client-secret-0123456789")
DIRECT_REDIRECT = "http://127.0.0.1:9/direct-callback"
AGENT_REDIRECT = "http://127.0.0.1:9/agent-callback"
PASSWORD = "bench password"
BODY = json.dumps({"messages": [{"id": str(i), "subject": "hello"} for i in range(5)]}).encode()


# --- the upstream -----------------------------------------------------------------------------


def make_upstream(oauth_url: str) -> Any:
    """GET /api/messages for a bearer token its OAuth server calls active → 200 JSON."""
    import httpx

    known: dict[bytes, bool] = {}
    client: list[httpx.AsyncClient] = []

    async def active(header: bytes) -> bool:
        if header in known:
            return known[header]
        scheme, _, token = header.decode("latin-1").partition(" ")
        if not client:
            client.append(httpx.AsyncClient(timeout=5))
        answer = await client[0].post(
            f"{oauth_url}/introspect", data={"token": token}, auth=INTROSPECTION_CLIENT
        )
        known[header] = scheme.lower() == "bearer" and answer.json().get("active") is True
        return known[header]

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        auth = dict(scope["headers"]).get(b"authorization", b"")
        if not auth or not await active(auth):
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

    return app


def run_upstream(port: int, oauth_url: str) -> None:
    import uvicorn

    uvicorn.run(
        make_upstream(oauth_url),
        host=HOST,
        port=port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )


# --- a bare forwarder (the floor: uvicorn + aiohttp, no ATH checks) ---------------------------


def run_bare(port: int, upstream_port: int) -> None:
    """Forward every request to the upstream with one shared aiohttp session, checking nothing."""
    import aiohttp
    import uvicorn

    sessions: list[aiohttp.ClientSession] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    sessions.append(aiohttp.ClientSession(auto_decompress=False))
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await sessions[0].close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        headers = {k.decode(): v.decode() for k, v in scope["headers"] if k == b"authorization"}
        url = f"http://{HOST}:{upstream_port}{scope['path']}"
        async with sessions[0].get(url, headers=headers) as response:
            body = await response.read()
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})

    uvicorn.run(
        app,
        host=HOST,
        port=port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )


# --- the gateway ------------------------------------------------------------------------------


def write_config(
    workdir: Path, port: int, upstream_port: int, oauth_url: str, database_url: str
) -> Path:
    """A production-mode gateway.toml, secrets in files; identity documents on loopback."""
    (workdir / "secret_key").write_text("bench-secret-key-" + "x" * 32)
    (workdir / "client_secret").write_text(GATEWAY_CLIENT[1])
    config_file = workdir / "gateway.toml"
    config_file.write_text(
        f"""
public_base_url = "http://{HOST}:{port}"
listen = "{HOST}:{port}"
database_url = "{database_url}"
secret_key_file = "secret_key"

[verifier]
allow_loopback = true
allow_http = true

[rate_limit]
requests = 100000000

[providers.mail]
display_name = "Bench Mail"
authorization_endpoint = "{oauth_url}/authorize"
token_endpoint = "{oauth_url}/token"
userinfo_endpoint = "{oauth_url}/userinfo"
client_id = "{GATEWAY_CLIENT[0]}"
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


def run_gateway(config_file: Path) -> None:
    import uvicorn

    from athkit.gateway import create_gateway_app, load_config

    config = load_config(config_file)
    uvicorn.run(
        create_gateway_app(config),
        host=config.listen_host,
        port=config.listen_port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        # As `ath gateway serve`: the provider's own Date/Server pass through, not doubled.
        proxy_headers=False,
        server_header=False,
        date_header=False,
    )


# --- the handshake ----------------------------------------------------------------------------


class _Handshake:
    """The OAuth server and the agent's identity host (threads of the driver, not measured)."""

    def __init__(self, gateway_base: str) -> None:
        from starlette.applications import Starlette
        from starlette.responses import JSONResponse
        from starlette.routing import Route

        from athkit.oauthserver import (
            ClientConfig,
            OAuthServerConfig,
            UserConfig,
            create_oauth_app,
            hash_password,
        )
        from athkit.protocol import generate_private_key, public_key_to_jwk
        from athkit.testing import free_port

        self.gateway_base = gateway_base
        self.oauth_port, self.ident_port = free_port(), free_port()
        self.oauth_url = f"http://{HOST}:{self.oauth_port}"
        self.agent_id = f"http://{HOST}:{self.ident_port}/agent.json"
        self.key = generate_private_key()
        document = {
            "ath_version": "0.1",
            "agent_id": self.agent_id,
            "name": "Bench agent",
            "developer": {"name": "Bench", "id": "bench"},
            "public_key": public_key_to_jwk(self.key.public_key()),
        }
        self.identity_app = Starlette(
            routes=[Route("/agent.json", lambda _request: JSONResponse(document))]
        )
        scopes = {"mail:read": "Read your mail"}

        def client(pair: tuple[str, str], redirect: str, **extra: Any) -> ClientConfig:
            return ClientConfig(
                client_id=pair[0],
                name=pair[0],
                client_secret=pair[1],
                redirect_uris=[redirect],
                scopes=list(scopes),
                **extra,
            )

        self.oauth_app = create_oauth_app(
            OAuthServerConfig(
                issuer=self.oauth_url,
                database_url="sqlite:///:memory:",
                secret_key="bench-oauth-cookie-key-0123456789",
                scopes=scopes,
                users=[
                    UserConfig(
                        username="alice",
                        password_hash=hash_password(PASSWORD),
                        sub="alice-1",
                        name="Alice",
                    )
                ],
                clients=[
                    client(GATEWAY_CLIENT, f"{gateway_base}/ath/callback"),
                    client(DIRECT_CLIENT, DIRECT_REDIRECT),
                    client(INTROSPECTION_CLIENT, "http://127.0.0.1:9/unused", introspection=True),
                ],
            )
        )

    def provider_token(self) -> str:
        """An ordinary OAuth code flow (PKCE) for the direct side."""
        import httpx

        from athkit.protocol import code_challenge_s256, generate_code_verifier
        from athkit.testing import drive_consent

        verifier = generate_code_verifier()
        start = httpx.URL(
            f"{self.oauth_url}/authorize",
            params={
                "response_type": "code",
                "client_id": DIRECT_CLIENT[0],
                "redirect_uri": DIRECT_REDIRECT,
                "scope": "mail:read",
                "state": "bench-state-0123456789",
                "code_challenge": code_challenge_s256(verifier),
                "code_challenge_method": "S256",
            },
        )
        with httpx.Client(timeout=10) as http:
            back = drive_consent(
                http, str(start), username="alice", password=PASSWORD, stop_at=DIRECT_REDIRECT
            )
            assert isinstance(back, str), back
            token = http.post(
                f"{self.oauth_url}/token",
                auth=DIRECT_CLIENT,
                data={
                    "grant_type": "authorization_code",
                    "code": httpx.URL(back).params["code"],
                    "code_verifier": verifier,
                    "redirect_uri": DIRECT_REDIRECT,
                },
            ).json()
        return str(token["access_token"])

    def ath_token(self) -> str:
        """register → authorize → the user consents → token, over HTTP, as an agent would."""
        import secrets

        import httpx

        from athkit.protocol import create_attestation
        from athkit.testing import drive_consent

        base = self.gateway_base

        def attest(audience: str) -> str:
            return create_attestation(self.key, agent_id=self.agent_id, audience=audience)

        with httpx.Client(timeout=10) as http:
            registered = http.post(
                f"{base}/ath/agents/register",
                json={
                    "agent_id": self.agent_id,
                    "agent_attestation": attest(base),
                    "developer": {"name": "Bench", "id": "bench"},
                    "requested_providers": [{"provider_id": "mail", "scopes": ["mail:read"]}],
                    "redirect_uris": [AGENT_REDIRECT],
                },
            )
            assert registered.status_code == 201, registered.text
            client = registered.json()
            started = http.post(
                f"{base}/ath/authorize",
                json={
                    "client_id": client["client_id"],
                    "agent_attestation": attest(base),
                    "provider_id": "mail",
                    "scopes": ["mail:read"],
                    "state": secrets.token_urlsafe(24),
                    "user_redirect_uri": AGENT_REDIRECT,
                },
            ).json()
            back = drive_consent(
                http,
                started["authorization_url"],
                username="alice",
                password=PASSWORD,
                stop_at=AGENT_REDIRECT,
            )
            assert isinstance(back, str), back
            token = http.post(
                f"{base}/ath/token",
                json={
                    "grant_type": "authorization_code",
                    "client_id": client["client_id"],
                    "client_secret": client["client_secret"],
                    "agent_attestation": attest(f"{base}/ath/token"),
                    "code": httpx.URL(back).params["code"],
                    "ath_session_id": started["ath_session_id"],
                },
            )
            assert token.status_code == 200, token.text
        return str(token.json()["access_token"])


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

        began, cpu_began = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu_began
    latencies.sort()
    return {
        "requests": len(latencies),
        "errors": errors,
        "rps": len(latencies) / elapsed,
        "load_cpu_us": 1e6 * cpu / max(1, len(latencies)),
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


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _measure_with_cpu(
    url: str, headers: dict[str, str], args: Any, pids: dict[str, int]
) -> dict[str, Any]:
    before = {name: _cpu_seconds(pid) for name, pid in pids.items()}
    result = _measure(url, headers, args.duration, args.concurrency)
    for name, pid in pids.items():
        used = _cpu_seconds(pid) - before[name]
        result[f"{name}_cpu_us"] = 1e6 * used / max(1, result["requests"])
    return result


_KEYS = (
    "rps",
    "p50_ms",
    "p99_ms",
    "errors",
    "load_cpu_us",
    "upstream_cpu_us",
    "gateway_cpu_us",
    "bare_cpu_us",
)


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {key: statistics.median(r[key] for r in runs) for key in _KEYS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (medians)")
    parser.add_argument(
        "--database",
        choices=["sqlite", "postgres", "memory"],
        default="sqlite",
        help="the gateway's store (memory: test-only stores, which copy every record)",
    )
    parser.add_argument(
        "--profile", metavar="FILE", help="record the gateway with py-spy (collapsed stacks)"
    )
    args = parser.parse_args()
    from athkit.testing import free_port, serve_in_thread

    up_port, gw_port, bare_port = free_port(), free_port(), free_port()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        database_url = {
            "sqlite": f"sqlite:///{workdir}/gateway.db",
            "postgres": "postgresql://postgres@127.0.0.1:5432/test",
            "memory": "memory://",
        }[args.database]
        handshake = _Handshake(f"http://{HOST}:{gw_port}")
        config_file = write_config(workdir, gw_port, up_port, handshake.oauth_url, database_url)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        stack = contextlib.ExitStack()
        stack.enter_context(serve_in_thread(handshake.oauth_app, port=handshake.oauth_port))
        stack.enter_context(serve_in_thread(handshake.identity_app, port=handshake.ident_port))
        procs = [
            subprocess.Popen(
                [sys.executable, __file__, "upstream", str(up_port), handshake.oauth_url],
                env=env,
            ),
            subprocess.Popen([sys.executable, __file__, "gateway", str(config_file)], env=env),
            subprocess.Popen(
                [sys.executable, __file__, "bare", str(bare_port), str(up_port)], env=env
            ),
        ]
        try:
            _wait_for_port(up_port)
            _wait_for_port(gw_port)
            _wait_for_port(bare_port)
            token = handshake.ath_token()
            provider_token = handshake.provider_token()
            direct_url = f"http://{HOST}:{up_port}/api/messages"
            gateway_url = f"http://{HOST}:{gw_port}/ath/proxy/mail/messages"
            direct_headers = {"Authorization": f"Bearer {provider_token}"}
            gateway_headers = {
                "Authorization": f"Bearer {token}",
                "X-ATH-Agent-ID": handshake.agent_id,
            }
            bare_url = f"http://{HOST}:{bare_port}/api/messages"
            pids = {"upstream": procs[0].pid, "gateway": procs[1].pid, "bare": procs[2].pid}
            directs, throughs, bares = [], [], []
            for i in range(args.rounds):
                # Interleaved, so that load from elsewhere on the machine hits both sides alike.
                directs.append(_measure_with_cpu(direct_url, direct_headers, args, pids))
                bares.append(_measure_with_cpu(bare_url, direct_headers, args, pids))
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
                throughs.append(_measure_with_cpu(gateway_url, gateway_headers, args, pids))
                if spy is not None:
                    spy.wait(timeout=60)
        finally:
            for proc in procs:
                proc.send_signal(signal.SIGINT)
            for proc in procs:
                proc.wait(timeout=10)
            stack.close()
    direct, through, bare = _median(directs), _median(throughs), _median(bares)
    ratio = through["rps"] / direct["rps"]
    print(
        f"proxy benchmark ({args.database} store): {args.concurrency} concurrent connections, "
        f"{args.rounds} interleaved rounds of {args.duration:g} s per side (medians), "
        f"one GET of a {len(BODY)}-byte JSON document"
    )
    print(
        f"{'':10} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}"
        f"   CPU µs/request: {'loadgen':>8} {'upstream':>8} {'proxy':>8}"
    )
    for name, r in (("direct", direct), ("bare fwd", bare), ("gateway", through)):
        proxy = {"direct": 0.0, "bare fwd": r["bare_cpu_us"], "gateway": r["gateway_cpu_us"]}
        print(
            f"{name:10} {r['rps']:9.0f} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} {int(r['errors']):7d}"
            f"   {'':16}{r['load_cpu_us']:8.0f} {r['upstream_cpu_us']:8.0f} {proxy[name]:8.0f}"
        )
    print(
        f"bare forwarder (uvicorn + aiohttp, no checks) / direct: {bare['rps'] / direct['rps']:.2f}"
    )
    print(f"throughput ratio gateway/direct: {ratio:.2f}  (target ≥ 0.50)")
    print(
        f"added latency: p50 {through['p50_ms'] - direct['p50_ms']:.2f} ms, "
        f"p99 {through['p99_ms'] - direct['p99_ms']:.2f} ms  (target p99 ≤ 5 ms)"
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "upstream":
        run_upstream(int(sys.argv[2]), sys.argv[3])
    elif len(sys.argv) > 1 and sys.argv[1] == "gateway":
        run_gateway(Path(sys.argv[2]))
    elif len(sys.argv) > 1 and sys.argv[1] == "bare":
        run_bare(int(sys.argv[2]), int(sys.argv[3]))
    elif len(sys.argv) > 1 and sys.argv[1] == "load":
        run_load(sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5]))
    else:
        main()
