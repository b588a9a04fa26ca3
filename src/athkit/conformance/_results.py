"""What a conformance run reports, how it is configured, and the shared check helpers."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import httpx

from athkit.conformance._drivers import ConsentDriver
from athkit.protocol import ErrorCode

Outcome = Literal["pass", "fail", "skip"]
ATH_CODES = frozenset(code.value for code in ErrorCode)
# Registered for the run; loopback (RFC 8252 §7.3), so a listener may use any port.
AGENT_REDIRECT = "http://127.0.0.1:9/ath-conformance/callback"
LISTENER_REDIRECT = "http://127.0.0.1/callback"
_REDIRECTS = (301, 302, 303, 307, 308)


@dataclass(frozen=True)
class CheckResult:
    """One check: its id, the spec section, what it checks, the outcome and why."""

    id: str
    section: str
    title: str
    outcome: Outcome
    detail: str = ""


@dataclass
class ConformanceReport:
    """A whole run."""

    target: str
    mode: str | None
    driver: str
    results: list[CheckResult] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    duration: float = 0.0

    def count(self, outcome: Outcome) -> int:
        """How many checks ended with ``outcome``."""
        return sum(1 for r in self.results if r.outcome == outcome)

    @property
    def ok(self) -> bool:
        """No check failed (skips are allowed, and listed)."""
        return self.count("fail") == 0

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return {
            "target": self.target,
            "mode": self.mode,
            "consent_driver": self.driver,
            "started": self.started,
            "duration_seconds": round(self.duration, 2),
            "passed": self.count("pass"),
            "failed": self.count("fail"),
            "skipped": self.count("skip"),
            "ok": self.ok,
            "checks": [r.__dict__ for r in self.results],
        }


@dataclass
class ConformanceConfig:
    """What to run against and how.

    ``call`` is a protected API call the consented scopes allow, as ``("GET", "/path")``: under
    the gateway proxy (``/ath/proxy/{provider}/path``) or the native ``api_base``. Without it,
    the checks that need an API call (token binding, proxy checks, revocation taking effect) are
    skipped. ``headers`` go on every request to the server (not to the user's browser).
    """

    url: str
    consent: ConsentDriver
    provider: str | None = None
    scopes: list[str] | None = None
    call: tuple[str, str] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float = 20.0


Work = TypeVar("Work", bound=Callable[[], "str | None"])


class CheckList:
    """Checks in the order they are declared, each by ``@checks.add(check_id, section, title)``
    on its work; ``run.check_all(*checks)`` runs them."""

    def __init__(self) -> None:
        self._checks: list[tuple[str, str, str, Callable[[], str | None]]] = []

    def add(self, check_id: str, section: str, title: str) -> Callable[[Work], Work]:
        """Declare the check that the decorated function does."""

        def declare(work: Work) -> Work:
            self._checks.append((check_id, section, title, work))
            return work

        return declare

    def __iter__(self) -> Iterator[tuple[str, str, str, Callable[[], str | None]]]:
        return iter(self._checks)


class Failed(Exception):
    """The server did not do what the specification requires."""


class Skipped(Exception):
    """The check could not run (a prerequisite failed, or the driver cannot do it)."""


def error_of(response: httpx.Response, status: int | tuple[int, ...], *codes: str) -> str:
    """Check an ATH §7 error response: status, JSON ``{"code","message"[,"details"]}``, and a
    code among ``codes`` (any listed code when none are given). Returns a short description."""
    allowed = (status,) if isinstance(status, int) else status
    try:
        body = response.json()
    except ValueError:
        raise Failed(
            f"HTTP {response.status_code} without a JSON body: {response.text[:120]!r}"
        ) from None
    if not isinstance(body, dict) or not isinstance(body.get("code"), str):
        raise Failed(f"HTTP {response.status_code}: error body has no code: {body!r}"[:300])
    if not isinstance(body.get("message"), str):
        raise Failed(f"{body['code']}: error body has no message string")
    if "details" in body and body["details"] is not None and not isinstance(body["details"], dict):
        raise Failed(f"{body['code']}: details is not an object")
    got = f"{response.status_code} {body['code']}"
    if response.status_code not in allowed or (codes and body["code"] not in codes):
        want = "/".join(str(s) for s in allowed) + " " + ("|".join(codes) or "an ATH code")
        raise Failed(f"expected {want}, got {got}: {body['message'][:160]}")
    if not codes and body["code"] not in ATH_CODES and body["code"] != "INVALID_REQUEST":
        raise Failed(f"{got}: not an ATH error code")
    return got
