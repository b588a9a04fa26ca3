"""The long random run: hostile requests against every endpoint of every server athkit ships,
for a bounded time, on 127.0.0.1 only; prints what it sent and what came back.

    .venv/bin/python -m tests.robustness.longrun --seconds 300

Exits 1 when any answer was a 5xx, had another shape than the documented one, or took longer
than the per-request bound; the offending requests are printed. The same generators and checks
as the property tests (``tests/robustness``), without shrinking, so that it keeps going.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter, defaultdict

import httpx
from hypothesis import HealthCheck, Phase, given, settings

from tests.robustness._hostile import Probe, check_answer, probes
from tests.robustness._world import running_world


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="how long to run")
    parser.add_argument(
        "--max-requests", type=int, default=200_000, help="stop after this many requests"
    )
    args = parser.parse_args(argv)

    statuses: dict[str, Counter[str]] = defaultdict(Counter)
    endpoints: set[tuple[str, str, str]] = set()
    slowest = 0.0
    failures: list[str] = []
    sent = 0
    with running_world() as world, httpx.Client(timeout=30, follow_redirects=False) as http:
        started = time.monotonic()
        deadline = started + args.seconds
        endpoint_of = {e.base + e.path.split("{")[0]: e for e in world.endpoints}

        @settings(
            max_examples=500,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(probe=probes(world))
        def batch(probe: Probe) -> None:
            nonlocal sent, slowest
            if time.monotonic() > deadline or sent >= args.max_requests:
                return
            sent += 1
            server = next(
                (e.server for prefix, e in endpoint_of.items() if probe.url.startswith(prefix)),
                "?",
            )
            endpoints.add((server, probe.method, probe.url.split("?")[0]))
            try:
                response, seconds = probe.send(http)
            except httpx.HTTPError as exc:
                statuses[server]["transport error"] += 1
                failures.append(f"{type(exc).__name__} for {probe.method} {probe.url}")
                return
            slowest = max(slowest, seconds)
            statuses[server][f"{response.status_code // 100}xx"] += 1
            statuses["(all)"][str(response.status_code)] += 1
            try:
                check_answer(probe, response, seconds)
            except AssertionError as exc:
                failures.append(str(exc)[:600])

        while time.monotonic() < deadline and sent < args.max_requests:
            batch()
        elapsed = time.monotonic() - started

    print(f"long random run: {sent} requests in {elapsed:.0f} s, loopback only")
    print(f"distinct request targets: {len(endpoints)}; slowest answer {slowest:.2f} s")
    for server in sorted(k for k in statuses if k != "(all)"):
        counts = statuses[server]
        shown = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        print(f"  {server:<11} {sum(counts.values()):>7}  {shown}")
    print("  statuses:   " + ", ".join(f"{k} {v}" for k, v in sorted(statuses["(all)"].items())))
    fives = sum(v for k, v in statuses["(all)"].items() if k.startswith("5"))
    print(f"5xx answers: {fives}; failed checks: {len(failures)}")
    for failure in failures[:20]:
        print("  " + failure.replace("\n", " "))
    return 1 if failures or fives else 0


if __name__ == "__main__":
    sys.exit(main())
