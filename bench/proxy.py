"""The gateway's proxy against a bare forwarder and the upstream itself, with wrk as the load.

    .venv/bin/python bench/proxy.py [--duration 8] [--rounds 3] [--connections 32]
                                    [--databases sqlite,postgres] [--profile FILE]

Processes, all on 127.0.0.1 (``bench/setup.sh`` installs wrk and nginx):
  * the upstream: Debian's nginx answering a 179-byte JSON document (401 without a bearer
    token), far cheaper per request than any Python server, so it never caps a row;
  * a bare forwarder: uvicorn (uvloop, httptools) + one shared ``aiohttp.ClientSession`` that
    forwards and checks nothing, the floor for a Python proxy built on these libraries;
  * the gateway, ``create_gateway_app`` under uvicorn exactly as ``ath gateway serve`` runs it,
    once per database (a SQLite file, and a fresh PostgreSQL database on 127.0.0.1:5432);
  * the load: ``wrk`` (one thread, a fixed number of connections), bounded in time.

Every target is measured once per round, the rounds interleaved, so load from elsewhere on the
machine falls on all of them alike; the figures are medians over rounds, and the ratios are
medians of per-round ratios. CPU per request is read from /proc for each process (nginx summed
over its worker). Each Python server carries an event-loop lag probe (a 10 ms timer; how late
it fires, worst per second) and the worst lag during each target's runs is printed.

The ATH token comes from a real handshake before the measurement: an agent with a P-256 key and
an identity document registers, authorizes, a user consents at a real OAuth server (our own,
``drive_consent``) and the agent exchanges its code; the OAuth server and the identity host run
as threads of this driver and are not measured. Every proxied call runs the full path: token
lookup, agent and provider binding, scope → route map, rate limit, provider credentials,
forwarding, metrics and a ``proxy_request`` audit row.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _wrk import (
    HOST,
    LagProbe,
    cpu_seconds,
    max_lag_ms,
    need_tools,
    nginx_upstream,
    process_tree,
    run_wrk,
    wait_for_port,
    warm,
)

INTROSPECTION_CLIENT = ("mail-api", "mail-api-introspection-secret")
GATEWAY_CLIENT = ("ath-gateway", "gateway-client-secret-0123456789")
DIRECT_CLIENT = ("direct-client", "direct-client-secret-0123456789")
DIRECT_REDIRECT = "http://127.0.0.1:9/direct-callback"
AGENT_REDIRECT = "http://127.0.0.1:9/agent-callback"
PASSWORD = "bench password"
BODY = json.dumps({"messages": [{"id": str(i), "subject": "hello"} for i in range(5)]}).encode()
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
UVICORN = {
    "loop": "uvloop",
    "http": "httptools",
    "access_log": False,
    "log_level": "warning",
}


# --- a bare forwarder (the floor: uvicorn + aiohttp, no ATH checks) ---------------------------


def run_bare(port: int, upstream_port: int, lag_file: Path) -> None:
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

    uvicorn.run(LagProbe(app, lag_file), host=HOST, port=port, **UVICORN)


# --- the gateway ------------------------------------------------------------------------------


def write_config(
    workdir: Path, port: int, upstream_port: int, oauth_url: str, database_url: str
) -> Path:
    """A production-mode gateway.toml, secrets in files; identity documents on loopback."""
    workdir.mkdir(parents=True, exist_ok=True)
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


def run_gateway(config_file: Path, lag_file: Path) -> None:
    """The gateway exactly as ``ath gateway serve`` runs it (one worker), lag probe around it."""
    import uvicorn

    from athkit.gateway import create_gateway_app, load_config
    from athkit.gateway._serve import UVICORN_OPTIONS
    from athkit.server import FrozenStartupHeap

    config = load_config(config_file)
    app = FrozenStartupHeap(create_gateway_app(config))
    uvicorn.run(
        LagProbe(app, lag_file),
        host=config.listen_host,
        port=config.listen_port,
        **{**UVICORN_OPTIONS, "access_log": False, "log_level": "warning"},
    )


def granian_app() -> Any:
    """The gateway for granian's worker (factory target ``proxy:granian_app``)."""
    from athkit.gateway import create_gateway_app, load_config
    from athkit.server import FrozenStartupHeap

    config = load_config(Path(os.environ["BENCH_GATEWAY_CONFIG"]))
    return LagProbe(
        FrozenStartupHeap(create_gateway_app(config)), Path(os.environ["BENCH_LAG_FILE"])
    )


def run_gateway_granian(config_file: Path, lag_file: Path) -> None:
    """The same gateway app under granian (one worker, uvloop, HTTP/1), for the comparison."""
    from granian import Granian
    from granian.constants import HTTPModes, Interfaces, Loops

    from athkit.gateway import load_config

    config = load_config(config_file)
    os.environ["BENCH_GATEWAY_CONFIG"] = str(config_file)
    os.environ["BENCH_LAG_FILE"] = str(lag_file)
    Granian(
        "proxy:granian_app",
        address=config.listen_host,
        port=config.listen_port,
        interface=Interfaces.ASGI,
        workers=1,
        loop=Loops.uvloop,
        http=HTTPModes.http1,
        factory=True,
        log_access=False,
        working_dir=Path(__file__).resolve().parent,
    ).serve()


# --- the handshake ----------------------------------------------------------------------------


class _Handshake:
    """The OAuth server and the agent's identity host (threads of the driver, not measured)."""

    def __init__(self, gateway_bases: list[str]) -> None:
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
                    ClientConfig(
                        client_id=GATEWAY_CLIENT[0],
                        name=GATEWAY_CLIENT[0],
                        client_secret=GATEWAY_CLIENT[1],
                        redirect_uris=[f"{base}/ath/callback" for base in gateway_bases],
                        scopes=list(scopes),
                    ),
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

    def ath_token(self, base: str) -> str:
        """register → authorize → the user consents → token, over HTTP, as an agent would."""
        import secrets

        import httpx

        from athkit.protocol import create_attestation
        from athkit.testing import drive_consent

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


# --- the driver -------------------------------------------------------------------------------


async def _pg_create() -> str | None:
    """A fresh PostgreSQL database for the run, or ``None`` when PostgreSQL is not running."""
    try:
        import asyncpg

        admin = await asyncpg.connect(PG_ADMIN_URL, timeout=3)
    except Exception:
        return None
    name = f"ath_bench_{secrets.token_hex(4)}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    return name


async def _pg_drop(name: str) -> None:
    import asyncpg

    admin = await asyncpg.connect(PG_ADMIN_URL, timeout=3)
    await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    await admin.close()


class Target:
    """One thing wrk is aimed at: its URL and headers, the processes whose CPU is its cost."""

    def __init__(self, name: str, url: str, lag_file: Path | None = None) -> None:
        self.name = name
        self.url = url
        self.headers: dict[str, str] = {}
        self.pid: int | None = None
        self.lag_file = lag_file
        self.runs: list[dict[str, Any]] = []


def _measure(target: Target, upstream_pid: int, args: Any, workdir: Path) -> dict[str, Any]:
    upstream = process_tree(upstream_pid)
    own = process_tree(target.pid) if target.pid is not None else []
    before_up, before_own = cpu_seconds(upstream), cpu_seconds(own)
    began = time.time()
    result = run_wrk(
        target.url,
        target.headers,
        duration=args.duration,
        connections=args.connections,
        threads=args.threads,
        workdir=workdir,
    )
    ended = time.time()
    requests = max(1, result["requests"])
    result["upstream_cpu_us"] = 1e6 * (cpu_seconds(upstream) - before_up) / requests
    result["proxy_cpu_us"] = 1e6 * (cpu_seconds(own) - before_own) / requests
    result["lag_ms"], result["gc_ms"] = (
        max_lag_ms(target.lag_file, began, ended) if target.lag_file is not None else (0.0, 0.0)
    )
    return result


def _refusals(target: Target) -> dict[str, int]:
    """What the gateway's /metrics counted as proxy outcomes other than an upstream 2xx."""
    import re
    import urllib.request

    base = target.url.split("/ath/proxy/")[0]
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as answer:  # noqa: S310
        text = answer.read().decode()
    counts: dict[str, int] = {}
    pattern = (
        r'athkit_gateway_requests_total\{endpoint="/ath/proxy/[^"]*",outcome="([^"]+)"\} (\S+)'
    )
    for outcome, value in re.findall(pattern, text):
        if outcome != "upstream_2xx" and float(value):
            counts[outcome] = int(float(value))
    return counts


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def _ratio(a: Target, b: Target, key: str) -> tuple[float, float, float]:
    """Median, min and max over rounds of ``a[key] / b[key]`` (same round)."""
    ratios = [x[key] / y[key] for x, y in zip(a.runs, b.runs, strict=True) if y[key]]
    return statistics.median(ratios), min(ratios), max(ratios)


def report(targets: list[Target], args: Any) -> None:
    """Print the table and the ratios the issue's targets are stated in."""
    print(
        f"proxy benchmark: wrk {args.threads} thread(s), {args.connections} connections, "
        f"{args.rounds} interleaved rounds of {args.duration:g} s per target (medians), "
        f"GET of a {len(BODY)}-byte JSON document from nginx"
    )
    print(
        f"{'':22} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} {'lag ms':>7} {'gc ms':>6}"
        f"   CPU µs/request: {'wrk':>5} {'nginx':>6} {'proxy':>6}"
    )
    for t in targets:
        print(
            f"{t.name:22} {_median(t.runs, 'rps'):8.0f} {_median(t.runs, 'p50_ms'):7.2f} "
            f"{_median(t.runs, 'p99_ms'):7.2f} {sum(r['errors'] for r in t.runs):6d} "
            f"{max(r['lag_ms'] for r in t.runs):7.1f} {max(r['gc_ms'] for r in t.runs):6.1f}"
            f"   {'':16}"
            f"{_median(t.runs, 'loadgen_cpu_us'):5.0f} {_median(t.runs, 'upstream_cpu_us'):6.0f} "
            f"{_median(t.runs, 'proxy_cpu_us'):6.0f}"
        )
    print(
        "(lag ms: the worst event-loop lag in any round, measured inside the server by a 10 ms "
        "timer; gc ms: its longest garbage collection; 0 for nginx)"
    )
    by_name = {t.name: t for t in targets}
    bare = by_name["bare forwarder"]
    for t in targets:
        if not t.name.startswith("gateway"):
            continue
        cpu = _ratio(t, bare, "proxy_cpu_us")
        rps = _ratio(t, bare, "rps")
        p99 = _ratio(t, bare, "p99_ms")
        print(
            f"{t.name} / bare forwarder:  CPU per request {cpu[0]:.2f} (target ≤ 1.5)  "
            f"throughput {rps[0]:.2f} (target ≥ 0.6)  p99 {p99[0]:.2f} (target ≤ 2.0)"
        )
        print(
            f"    per-round ranges: CPU {cpu[1]:.2f}–{cpu[2]:.2f}, throughput "
            f"{rps[1]:.2f}–{rps[2]:.2f}, p99 {p99[1]:.2f}–{p99[2]:.2f}"
        )
    for t in targets:
        if t.name.endswith(")") and "(" in t.name:
            base = by_name.get(t.name.rsplit(" (", 1)[0])
            if base is not None:
                rps, cpu = _ratio(t, base, "rps"), _ratio(t, base, "proxy_cpu_us")
                print(
                    f"{t.name} / same under uvicorn: throughput {rps[0]:.2f} "
                    f"({rps[1]:.2f}–{rps[2]:.2f}), CPU per request {cpu[0]:.2f} "
                    f"({cpu[1]:.2f}–{cpu[2]:.2f})"
                )
    if "gateway, SQLite" in by_name and "gateway, PostgreSQL" in by_name:
        pg = _ratio(by_name["gateway, PostgreSQL"], by_name["gateway, SQLite"], "rps")
        print(
            f"gateway PostgreSQL / SQLite throughput: {pg[0]:.2f} (target ≥ 0.8; rounds "
            f"{pg[1]:.2f}–{pg[2]:.2f})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument(
        "--databases",
        default="sqlite,postgres",
        help="gateways to measure, comma-separated: sqlite, postgres (skipped if not running)",
    )
    parser.add_argument(
        "--servers",
        default="uvicorn",
        help="HTTP servers to run each gateway under, comma-separated: uvicorn, granian",
    )
    parser.add_argument(
        "--profile", metavar="FILE", help="record the first gateway with py-spy (raw stacks)"
    )
    args = parser.parse_args()
    need_tools()
    from athkit.testing import free_port, serve_in_thread

    kinds = [k.strip() for k in args.databases.split(",") if k.strip()]
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        workdir = Path(tmp)
        pg_names: dict[str, str] = {}
        if "postgres" in kinds:
            import asyncio

            for server in [x.strip() for x in args.servers.split(",") if x.strip()]:
                created = asyncio.run(_pg_create())
                if created is None:
                    print("PostgreSQL is not running on 127.0.0.1:5432: its gateway is skipped")
                    kinds.remove("postgres")
                    break
                pg_names[server] = created
                stack.callback(lambda name=created: asyncio.run(_pg_drop(name)))
        up_port, bare_port = free_port(), free_port()
        servers = [x.strip() for x in args.servers.split(",") if x.strip()]
        gw_ports = {(kind, server): free_port() for kind in kinds for server in servers}
        handshake = _Handshake([f"http://{HOST}:{port}" for port in gw_ports.values()])
        stack.enter_context(serve_in_thread(handshake.oauth_app, port=handshake.oauth_port))
        stack.enter_context(serve_in_thread(handshake.identity_app, port=handshake.ident_port))
        upstream_pid = stack.enter_context(
            nginx_upstream(workdir, up_port, {"/api/messages": BODY})
        )
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        direct = Target("upstream direct", f"http://{HOST}:{up_port}/api/messages")
        bare = Target(
            "bare forwarder", f"http://{HOST}:{bare_port}/api/messages", workdir / "lag-bare"
        )
        targets = [direct, bare]
        procs: list[subprocess.Popen[bytes]] = []

        def stop_all() -> None:
            for proc in procs:
                proc.send_signal(signal.SIGINT)
            for proc in procs:
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()

        stack.callback(stop_all)
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "bare",
                    str(bare_port),
                    str(up_port),
                    str(bare.lag_file),
                ],
                env=env,
            )
        )
        bare.pid = procs[-1].pid
        for (kind, server), port in gw_ports.items():
            name = f"{kind}-{server}"
            database_url = (
                f"sqlite:///{workdir / name}/gateway.db"
                if kind == "sqlite"
                else f"postgresql://postgres@127.0.0.1:5432/{pg_names[server]}"
            )
            config = write_config(workdir / name, port, up_port, handshake.oauth_url, database_url)
            label = {"sqlite": "gateway, SQLite", "postgres": "gateway, PostgreSQL"}[kind]
            if server != "uvicorn":
                label += f" ({server})"
            target = Target(
                label, f"http://{HOST}:{port}/ath/proxy/mail/messages", workdir / f"lag-{name}"
            )
            mode = "gateway" if server == "uvicorn" else f"gateway-{server}"
            procs.append(
                subprocess.Popen(
                    [sys.executable, __file__, mode, str(config), str(target.lag_file)],
                    env=env,
                )
            )
            target.pid = procs[-1].pid
            targets.append(target)
        for port in (bare_port, *gw_ports.values()):
            wait_for_port(port)
        provider_token = handshake.provider_token()
        direct.headers = bare.headers = {"Authorization": f"Bearer {provider_token}"}
        for target, port in zip(targets[2:], gw_ports.values(), strict=True):
            token = handshake.ath_token(f"http://{HOST}:{port}")
            target.headers = {
                "Authorization": f"Bearer {token}",
                "X-ATH-Agent-ID": handshake.agent_id,
            }
        for target in targets:
            warm(target.url, target.headers, workdir, args.connections)
        for i in range(args.rounds):
            for target in targets:
                spy = None
                if args.profile and i == 0 and target is targets[2]:
                    spy = subprocess.Popen(
                        [
                            shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy"),
                            "record",
                            "-r",
                            "250",
                            "-f",
                            "raw",
                            "-o",
                            args.profile,
                            "-d",
                            str(int(args.duration)),
                            "-p",
                            str(target.pid),
                        ]
                    )
                target.runs.append(_measure(target, upstream_pid, args, workdir))
                if spy is not None:
                    spy.wait(timeout=60)
        refusals = {t.name: _refusals(t) for t in targets[2:]}
    report(targets, args)
    for t in targets:
        kinds: dict[str, int] = {}
        for r in t.runs:
            for kind, n in r["error_kinds"].items():
                kinds[kind] = kinds.get(kind, 0) + n
        if kinds:
            print(f"{t.name}: wrk errors by kind {kinds} (timeout: no answer within 2 s)")
    for name, counts in refusals.items():
        if counts:
            print(f"{name}: answers other than the upstream's 2xx, by outcome: {counts}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "gateway":
        run_gateway(Path(sys.argv[2]), Path(sys.argv[3]))
    elif len(sys.argv) > 1 and sys.argv[1] == "gateway-granian":
        run_gateway_granian(Path(sys.argv[2]), Path(sys.argv[3]))
    elif len(sys.argv) > 1 and sys.argv[1] == "bare":
        run_bare(int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4]))
    else:
        main()
