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
from dataclasses import dataclass, field

import httpx
from hypothesis import HealthCheck, Phase, given, settings

from tests.robustness._hostile import Probe, check_answer, probes
from tests.robustness._world import World, running_world


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tests.robustness.longrun", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--seconds", type=float, default=120.0, help="how long to run")
    parser.add_argument(
        "--max-requests", type=int, default=200_000, help="stop after this many requests"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with running_world() as world:
        report = run_random(world, seconds=args.seconds, max_requests=args.max_requests)
    print(report.render())
    return 0 if report.ok else 1


@dataclass
class Report:
    """What a random run sent and what came back."""

    sent: int = 0
    elapsed: float = 0.0
    slowest: float = 0.0
    targets: set[tuple[str, str, str]] = field(default_factory=set)
    statuses: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    failures: list[str] = field(default_factory=list)

    @property
    def fives(self) -> int:
        return sum(v for k, v in self.statuses["(all)"].items() if k.startswith("5"))

    @property
    def ok(self) -> bool:
        return self.sent > 0 and not self.failures and not self.fives

    def render(self) -> str:
        lines = [
            f"long random run: {self.sent} requests in {self.elapsed:.0f} s, loopback only",
            f"distinct request targets: {len(self.targets)}; slowest answer {self.slowest:.2f} s",
        ]
        for server in sorted(k for k in self.statuses if k != "(all)"):
            counts = self.statuses[server]
            shown = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
            lines.append(f"  {server:<11} {sum(counts.values()):>7}  {shown}")
        everything = sorted(self.statuses["(all)"].items())
        lines.append("  statuses:   " + ", ".join(f"{k} {v}" for k, v in everything))
        lines.append(f"5xx answers: {self.fives}; failed checks: {len(self.failures)}")
        lines += ["  " + f.replace("\n", " ") for f in self.failures[:20]]
        return "\n".join(lines)


def run_random(world: World, *, seconds: float, max_requests: int = 200_000) -> Report:
    """Send generated hostile requests to ``world`` for ``seconds`` (or ``max_requests``)."""
    report = Report()
    started = time.monotonic()
    deadline = started + seconds
    endpoint_of = {e.base + e.path.split("{")[0]: e for e in world.endpoints}
    with httpx.Client(timeout=30, follow_redirects=False) as http:

        @settings(
            max_examples=500,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(probe=probes(world))
        def batch(probe: Probe) -> None:
            if time.monotonic() > deadline or report.sent >= max_requests:
                return
            report.sent += 1
            server = next(
                (e.server for prefix, e in endpoint_of.items() if probe.url.startswith(prefix)),
                "?",
            )
            report.targets.add((server, probe.method, probe.url.split("?")[0]))
            try:
                response, elapsed = probe.send(http)
            except httpx.HTTPError as exc:
                report.statuses[server]["transport error"] += 1
                report.failures.append(f"{type(exc).__name__} for {probe.method} {probe.url}")
                return
            report.slowest = max(report.slowest, elapsed)
            report.statuses[server][f"{response.status_code // 100}xx"] += 1
            report.statuses["(all)"][str(response.status_code)] += 1
            try:
                check_answer(probe, response, elapsed)
            except AssertionError as exc:
                report.failures.append(str(exc)[:600])

        while time.monotonic() < deadline and report.sent < max_requests:
            batch()
    report.elapsed = time.monotonic() - started
    return report


if __name__ == "__main__":
    sys.exit(main())
