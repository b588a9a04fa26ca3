"""Forward-auth: nginx + athkit's /ath/check against the built-in proxy and bare nginx, with wrk.

    .venv/bin/python bench/forward_auth.py [--duration 8] [--rounds 3] [--connections 32]

Processes, all on 127.0.0.1 (``bench/setup.sh`` installs wrk and nginx):
  * the upstream: Debian's nginx answering a 179-byte JSON document (``_wrk.nginx_upstream``),
    one worker, far cheaper per request than anything measured here;
  * athkit: ``create_gateway_app`` under uvicorn exactly as ``ath gateway serve`` runs it
    (``bench/proxy.py``'s ``run_gateway``: one process, SQLite, an event-loop lag probe), with a
    ``[forward_auth]`` secret, serving both the built-in proxy and ``/ath/check``;
  * the front nginx with the configuration ``ath gateway nginx-config`` prints for that gateway
    (``auth_request`` to athkit), once with 1 worker process and once with 2;
  * for reference, nginx forwarding with no check at all (it puts a fixed provider token on
    every call), with 1 and with 2 workers: the floor of nginx forwarding;
  * the load: ``wrk`` (one thread, a fixed number of connections), bounded in time.

Every target is measured once per round, rounds interleaved; figures are medians over rounds
and ratios medians of per-round ratios. CPU per request is read from /proc per process tree:
the front nginx (master and workers), athkit, and the upstream. Before measuring, the same
refusals (no token, a path outside the token's scopes, another provider) are sent through nginx
and through the built-in proxy and must answer the same status and ATH JSON.

The ATH token comes from a real handshake (register, authorize, consent at our OAuth server,
token) made by ``proxy._Handshake`` before the measurement.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import proxy
from _wrk import HOST, cpu_seconds, need_tools, nginx_upstream, wait_for_port, warm
from proxy import BODY, Target, _Handshake, _measure, _median, _ratio, write_config

SECRET = "bench-forward-auth-secret-0123456789abcdef"
REFUSALS: tuple[tuple[dict[str, str], str], ...] = (  # each refused identically everywhere
    ({"Authorization": ""}, "/ath/proxy/mail/messages"),
    ({}, "/ath/proxy/mail/admin"),
    ({}, "/ath/proxy/other/messages"),
)


def bare_nginx_config(port: int, upstream_port: int, provider_token: str) -> str:
    """nginx forwarding /ath/proxy/mail/... with a fixed provider token, checking nothing."""
    return f"""
upstream bench_api {{
    server {HOST}:{upstream_port};
    keepalive 64;
}}
server {{
    listen {HOST}:{port};
    location /ath/proxy/mail/ {{
        proxy_pass http://bench_api/api/;
        proxy_set_header Authorization "Bearer {provider_token}";
        proxy_set_header X-ATH-Agent-ID "";
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_buffering off;
    }}
}}
"""


def check_same_refusals(fronts: dict[str, str], headers: dict[str, str]) -> list[str]:
    """Each refusal answers the same status and JSON through every front; the lines to print."""
    import httpx

    lines = []
    for extra, path in REFUSALS:
        sent = {k: v for k, v in {**headers, **extra}.items() if v}
        answers = {name: httpx.get(base + path, headers=sent) for name, base in fronts.items()}
        seen = {(r.status_code, r.text) for r in answers.values()}
        first = next(iter(answers.values()))
        if len(seen) != 1 or first.status_code < 400:
            raise SystemExit(f"refusals differ for {path}: {seen}")
        lines.append(f"  {path:30} {first.status_code} {first.json()['code']}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument(
        "--profile", metavar="FILE", help="record athkit with py-spy (raw stacks) under nginx"
    )
    args = parser.parse_args()
    need_tools()
    from athkit.gateway import load_config, nginx_config
    from athkit.testing import free_port, run_nginx, serve_in_thread

    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        workdir = Path(tmp)
        up_port, athkit_port = free_port(), free_port()
        handshake = _Handshake([f"http://{HOST}:{athkit_port}"])
        stack.enter_context(serve_in_thread(handshake.oauth_app, port=handshake.oauth_port))
        stack.enter_context(serve_in_thread(handshake.identity_app, port=handshake.ident_port))
        upstream_pid = stack.enter_context(
            nginx_upstream(workdir, up_port, {"/api/messages": BODY})
        )
        config_file = write_config(
            workdir / "athkit",
            athkit_port,
            up_port,
            handshake.oauth_url,
            f"sqlite:///{workdir / 'athkit'}/gateway.db",
        )
        (workdir / "athkit" / "check_secret").write_text(SECRET)
        with config_file.open("a") as file:
            file.write('\n[forward_auth]\nsecret_file = "check_secret"\n')
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        lag_file = workdir / "lag-athkit"
        athkit = subprocess.Popen(  # as `ath gateway serve` runs it, with bench/proxy.py's probe
            [sys.executable, proxy.__file__, "gateway", str(config_file), str(lag_file)], env=env
        )

        def stop_athkit() -> None:
            athkit.send_signal(signal.SIGINT)
            try:
                athkit.wait(timeout=10)
            except subprocess.TimeoutExpired:
                athkit.kill()

        stack.callback(stop_athkit)
        wait_for_port(athkit_port)
        token = handshake.ath_token(f"http://{HOST}:{athkit_port}")
        provider_token = handshake.provider_token()
        agent_headers = {"Authorization": f"Bearer {token}", "X-ATH-Agent-ID": handshake.agent_id}
        config = load_config(config_file)

        built_in = Target(
            "built-in proxy", f"http://{HOST}:{athkit_port}/ath/proxy/mail/messages", lag_file
        )
        built_in.pid, built_in.headers = athkit.pid, agent_headers
        targets = [built_in]
        athkit_pids: dict[str, int] = {}
        fronts = {"built-in proxy": f"http://{HOST}:{athkit_port}"}
        for workers in (1, 2):
            port = free_port()
            snippet = nginx_config(config, SECRET, listen=f"{HOST}:{port}")
            handle = stack.enter_context(
                run_nginx(snippet, workdir / f"front-{workers}", port=port, workers=workers)
            )
            name = f"nginx({workers}w) + check"
            target = Target(name, f"http://{HOST}:{port}/ath/proxy/mail/messages", lag_file)
            target.pid, target.headers = handle.pid, agent_headers
            targets.append(target)
            athkit_pids[name] = athkit.pid
            fronts[name] = f"http://{HOST}:{port}"
        for workers in (1, 2):
            port = free_port()
            handle = stack.enter_context(
                run_nginx(
                    bare_nginx_config(port, up_port, provider_token),
                    workdir / f"bare-{workers}",
                    port=port,
                    workers=workers,
                )
            )
            target = Target(
                f"nginx({workers}w), no check", f"http://{HOST}:{port}/ath/proxy/mail/messages"
            )
            target.pid, target.headers = handle.pid, agent_headers
            targets.append(target)

        refusals = check_same_refusals(fronts, agent_headers)
        for target in targets:
            warm(target.url, target.headers, workdir, args.connections)
        for round_ in range(args.rounds):
            for target in targets:
                spy = None
                if args.profile and round_ == 0 and target.name == "nginx(1w) + check":
                    beside = Path(sys.executable).parent / "py-spy"  # the bench extra's
                    spy_bin = str(beside) if beside.exists() else "py-spy"
                    record = [spy_bin, "record", "-r", "200", "-f", "raw", "-o", args.profile]
                    spy = subprocess.Popen(
                        [*record, "-d", str(int(args.duration)), "-p", str(athkit.pid)]
                    )
                before = cpu_seconds([athkit.pid])
                result = _measure(target, upstream_pid, args, workdir)
                if spy is not None:
                    spy.wait(timeout=60)
                # nginx + check: athkit's CPU is part of the cost (the built-in proxy's own
                # process is athkit already).
                extra = cpu_seconds([athkit.pid]) - before if target.name in athkit_pids else 0
                result["athkit_cpu_us"] = 1e6 * extra / max(1, result["requests"])
                target.runs.append(result)
        # Whatever athkit refused under load (built-in proxy and check together): it must be
        # nothing, or the throughput above would count refusals.
        refused = {k: v for k, v in proxy._refusals(built_in).items() if k != "allowed"}
        report(targets, args, refusals)
        print(f"athkit's refusals during the run (from /metrics): {refused or 'none'}")


def report(targets: list[Target], args: Any, refusals: list[str]) -> None:
    """The table, the CPU split and the ratios the issue states its target in."""
    print(
        f"forward-auth benchmark: wrk {args.threads} thread(s), {args.connections} connections, "
        f"{args.rounds} interleaved rounds of {args.duration:g} s per target (medians), "
        f"GET of a {len(BODY)}-byte JSON document from nginx; athkit is one process"
    )
    print("same refusals through every front (status, ATH code; bodies identical):")
    print("\n".join(refusals))
    print(
        f"{'':24} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} {'lag ms':>6}"
        f"   CPU µs/request: {'wrk':>5} {'upstrm':>6} {'front':>6} {'athkit':>6} {'total':>6}"
    )
    for t in targets:
        front = _median(t.runs, "proxy_cpu_us")
        athkit = _median(t.runs, "athkit_cpu_us")
        upstream = _median(t.runs, "upstream_cpu_us")
        if t.name == "built-in proxy":
            front, athkit = 0.0, _median(t.runs, "proxy_cpu_us")
        print(
            f"{t.name:24} {_median(t.runs, 'rps'):8.0f} {_median(t.runs, 'p50_ms'):7.2f} "
            f"{_median(t.runs, 'p99_ms'):7.2f} {sum(r['errors'] for r in t.runs):6d} "
            f"{max(r['lag_ms'] for r in t.runs):6.1f}   "
            f"{'':16}{_median(t.runs, 'loadgen_cpu_us'):5.0f} {upstream:6.0f} {front:6.0f} "
            f"{athkit:6.0f} {front + athkit:6.0f}"
        )
    print(
        "(front: nginx master + workers; athkit: the one athkit process; lag ms: the worst "
        "event-loop lag inside athkit in any round, 0 where athkit is not involved)"
    )
    by_name = {t.name: t for t in targets}
    built_in = by_name["built-in proxy"]
    for workers in (1, 2):
        checked = by_name[f"nginx({workers}w) + check"]
        bare = by_name[f"nginx({workers}w), no check"]
        ratio = _ratio(checked, built_in, "rps")
        floor = _ratio(checked, bare, "rps")
        print(
            f"nginx({workers}w) + check / built-in proxy throughput: {ratio[0]:.2f} "
            f"(target ≥ 1.2; rounds {ratio[1]:.2f}–{ratio[2]:.2f});  / nginx no check: "
            f"{floor[0]:.2f} (rounds {floor[1]:.2f}–{floor[2]:.2f})"
        )
    for t in (by_name["nginx(1w) + check"], by_name["nginx(2w) + check"]):
        cpu = [
            (
                x["athkit_cpu_us"] / y["proxy_cpu_us"],
                (x["athkit_cpu_us"] + x["proxy_cpu_us"]) / y["proxy_cpu_us"],
            )
            for x, y in zip(t.runs, built_in.runs, strict=True)
            if y["proxy_cpu_us"]
        ]
        print(
            f"{t.name}: CPU per call / built-in proxy's: athkit's check "
            f"{statistics.median(c[0] for c in cpu):.2f}, athkit + nginx "
            f"{statistics.median(c[1] for c in cpu):.2f}"
        )
    scale_check = _ratio(by_name["nginx(2w) + check"], by_name["nginx(1w) + check"], "rps")
    scale_bare = _ratio(by_name["nginx(2w), no check"], by_name["nginx(1w), no check"], "rps")
    print(f"2 nginx workers / 1: with the check {scale_check[0]:.2f}, without {scale_bare[0]:.2f}")


if __name__ == "__main__":
    main()
