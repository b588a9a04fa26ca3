"""A native service's guarded API against the same route unguarded, with wrk as the load.

    .venv/bin/python bench/native.py [--duration 8] [--rounds 3] [--connections 32]

The service is the ATH Shop (``create_shop_app``, SQLite file) in its own process under uvicorn
(uvloop, httptools; start-up heap frozen as ``ath gateway serve`` does). Two routes of that one
process are measured, in interleaved rounds:

  * ``GET /api/products``, guarded by ``require_scopes("products:read")``: the one access check
    of ATH §4.6 (token read from the shop's database on every call, agent, provider, scope);
  * ``GET /bench/products``, added by this script: the same handler (the shop service's
    ``list_products``, the same JSON answer and headers) with no guard at all.

Both requests carry the same headers (a real ATH token and ``X-ATH-Agent-ID``), so the only
difference is the check. The token comes from a real handshake first: ShopBot registers,
authorizes, Alice consents at the shop's OAuth server and ShopBot exchanges its code; that
stack (``athkit.demo.native_stack``) runs in threads of this driver, and the measured shop
process shares its database. CPU per request of the shop process is read from /proc, and the
shop carries the event-loop lag probe of bench/proxy.py.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
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
    process_tree,
    run_wrk,
    wait_for_port,
    warm,
)


def run_shop(config_file: Path, port: int, lag_file: Path) -> None:
    """The shop on ``port``, plus ``GET /bench/products``: ``/api/products`` without its guard."""
    import uvicorn
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from athkit.demo.shop import ShopConfig, create_shop_app
    from athkit.gateway._serve import UVICORN_OPTIONS
    from athkit.server import FrozenStartupHeap

    config = ShopConfig.model_validate_json(config_file.read_text())
    app = create_shop_app(config)
    service = app.state.shop

    async def list_products(request: Request) -> Response:
        # The body of the shop's own list_products handler (athkit.demo.shop._api).
        products = await service.list_products()
        return JSONResponse(
            {"products": [p.to_dict() for p in products]}, headers={"Cache-Control": "no-store"}
        )

    app.router.routes.insert(0, Route("/bench/products", list_products, methods=["GET"]))
    uvicorn.run(
        LagProbe(FrozenStartupHeap(app), lag_file),
        host=HOST,
        port=port,
        **{**UVICORN_OPTIONS, "access_log": False, "log_level": "warning"},
    )


def _token(stack: Any) -> tuple[str, str]:
    """ShopBot's ATH token for products:read, by a real handshake, and its agent_id."""
    import httpx

    from athkit.agent import ATHClient
    from athkit.demo.shop import SHOP_PROVIDER_ID
    from athkit.testing import drive_consent

    redirect_uri = f"{stack.shopbot_id.rsplit('/.well-known', 1)[0]}/callback"
    with ATHClient(
        stack.shop_url, agent_id=stack.shopbot_id, private_key=stack.shopbot_key
    ) as agent:
        agent.register(
            {SHOP_PROVIDER_ID: ["products:read"]},
            developer={"name": "Bench", "id": "bench"},
            redirect_uris=[redirect_uri],
        )
        pending = agent.authorize(
            SHOP_PROVIDER_ID, ["products:read"], user_redirect_uri=redirect_uri
        )
        with httpx.Client(timeout=10) as browser:
            target = drive_consent(
                browser,
                pending.authorization_url,
                username=stack.username,
                password=stack.password,
                stop_at=redirect_uri,
            )
        assert isinstance(target, str), target
        issued = agent.exchange_token(httpx.URL(target).params["code"], pending.ath_session_id)
    return issued.access_token, stack.shopbot_id


def _shop_config(stack: Any, port: int) -> dict[str, Any]:
    """A configuration for the measured shop: the stack's database, fresh secrets."""
    from athkit.protocol import generate_private_key, private_key_to_pem

    return {
        "base_url": f"http://{HOST}:{port}",
        "database_url": f"sqlite:///{stack.workdir / 'shop.db'}",
        "secret_key": secrets.token_urlsafe(32),
        "oauth_issuer": stack.oauth_url,
        "web_client_secret": secrets.token_urlsafe(32),
        "agent_client_secret": secrets.token_urlsafe(32),
        "consent_signing_key": private_key_to_pem(generate_private_key()).decode(),
        "allow_loopback": True,
        "allow_http": True,
        # Every call is still counted; the limit is only set above what the run sends.
        "rate_limit": {"requests": 100_000_000},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    args = parser.parse_args()
    need_tools()
    from athkit.demo import native_stack
    from athkit.testing import free_port

    with native_stack() as stack, tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        token, agent_id = _token(stack)
        port = free_port()
        config_file = workdir / "shop.json"
        config_file.write_text(json.dumps(_shop_config(stack, port)))
        lag_file = workdir / "lag-shop"
        proc = subprocess.Popen(
            [sys.executable, __file__, "shop", str(config_file), str(port), str(lag_file)],
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            wait_for_port(port)
            headers = {"Authorization": f"Bearer {token}", "X-ATH-Agent-ID": agent_id}
            targets = {
                "unguarded": f"http://{HOST}:{port}/bench/products",
                "guarded": f"http://{HOST}:{port}/api/products",
            }
            for url in targets.values():
                warm(url, headers, workdir, args.connections)
            runs: dict[str, list[dict[str, Any]]] = {name: [] for name in targets}
            for _ in range(args.rounds):
                for name, url in targets.items():
                    pids = process_tree(proc.pid)
                    before, began = cpu_seconds(pids), time.time()
                    result = run_wrk(
                        url,
                        headers,
                        duration=args.duration,
                        connections=args.connections,
                        threads=args.threads,
                        workdir=workdir,
                    )
                    used = cpu_seconds(pids) - before
                    result["cpu_us"] = 1e6 * used / max(1, result["requests"])
                    result["lag_ms"], result["gc_ms"] = max_lag_ms(lag_file, began, time.time())
                    runs[name].append(result)
        finally:
            proc.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=15)
            if proc.poll() is None:
                proc.kill()
    report(runs, args)


def report(runs: dict[str, list[dict[str, Any]]], args: Any) -> None:
    """The table and the guarded/unguarded ratios."""
    print(
        f"native benchmark (ATH Shop, SQLite): wrk {args.threads} thread(s), "
        f"{args.connections} connections, {args.rounds} interleaved rounds of {args.duration:g} s "
        "per route (medians), GET of the product list"
    )
    print(
        f"{'':32} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} {'lag ms':>7} "
        f"{'gc ms':>6} {'CPU µs/req':>10}"
    )
    for name, rs in runs.items():
        label = {"unguarded": "GET /bench/products", "guarded": "GET /api/products"}[name]
        print(
            f"{label + ' (' + name + ')':32} {statistics.median(r['rps'] for r in rs):8.0f} "
            f"{statistics.median(r['p50_ms'] for r in rs):7.2f} "
            f"{statistics.median(r['p99_ms'] for r in rs):7.2f} "
            f"{sum(r['errors'] for r in rs):6d} {max(r['lag_ms'] for r in rs):7.1f} "
            f"{max(r['gc_ms'] for r in rs):6.1f} {statistics.median(r['cpu_us'] for r in rs):10.0f}"
        )
    ratios = [g["rps"] / u["rps"] for g, u in zip(runs["guarded"], runs["unguarded"], strict=True)]
    print(
        f"guarded / unguarded throughput: {statistics.median(ratios):.2f} (target ≥ 0.7; rounds "
        f"{min(ratios):.2f}–{max(ratios):.2f})"
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "shop":
        run_shop(Path(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4]))
    else:
        main()
