"""``ath conformance`` against athkit's own native ATH Shop (the README's example, as written)
and gateway: every check must pass. Against a deliberately broken server, exactly the broken
checks must fail."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from athkit.conformance import ConformanceConfig, FormsDriver, run_conformance
from athkit.demo import NativeStack, native_stack
from athkit.demo._stack import GatewayStack, gateway_stack
from tests.docs import code_blocks
from tests.integration.agent.conftest import PASSWORD, USER, run_native

ATH = str(Path(sys.executable).with_name("ath"))


@pytest.fixture(scope="module")
def shop() -> Iterator[NativeStack]:
    with native_stack() as running:
        yield running


@pytest.fixture(scope="module")
def mail() -> Iterator[GatewayStack]:
    with gateway_stack() as running:
        yield running


def _ath_conformance(url: str, password: str, *args: str) -> tuple[int, dict[str, Any]]:
    run = subprocess.run(
        [ATH, "conformance", url, "--username", "alice", "--password", password, "--json", *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert "Traceback" not in run.stderr, run.stderr
    return run.returncode, json.loads(run.stdout)


def _by_outcome(report: dict[str, Any], outcome: str) -> set[str]:
    return {c["id"] for c in report["checks"] if c["outcome"] == outcome}


def test_the_gateway_passes_every_check(mail: GatewayStack) -> None:
    code, report = _ath_conformance(mail.gateway_url, mail.password, "--call", "GET /messages")
    assert code == 0, [c for c in report["checks"] if c["outcome"] != "pass"]
    assert report["mode"] == "gateway"
    assert _by_outcome(report, "fail") == set() and _by_outcome(report, "skip") == set()


class _Broken:
    """ASGI wrapper that breaks three MUSTs of a conformant server: revocation is a no-op that
    answers 200, unknown clients get 404, and the callback's state is not checked (any state
    passes through to a fake redirect)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and path == "/ath/revoke":
            await _json(send, 200, {})
            return
        if (
            scope["type"] == "http"
            and path == "/ath/callback"
            and b"state=xxx" in scope.get("query_string", b"")
        ):
            await _json(send, 200, {"ok": True})
            return

        async def renumber(message: Any) -> None:
            if message["type"] == "http.response.start" and message["status"] == 403:
                message = {**message, "status": 404}
            await send(message)

        await self.app(scope, receive, renumber if path == "/ath/authorize" else send)


async def _json(send: Any, status: int, body: dict[str, Any]) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})


def test_a_broken_server_fails_exactly_the_broken_checks() -> None:
    with run_native(_Broken) as broken:
        report = run_conformance(
            ConformanceConfig(
                url=broken.url,
                consent=FormsDriver(USER, PASSWORD),
                scopes=["products:read", "cart:write"],  # orders:write would wait for review
                call=("GET", "/products"),
            )
        )
    failed = {r.id for r in report.results if r.outcome == "fail"}
    assert not report.ok
    assert failed == {
        "authz-unknown-client",  # 404 instead of 403
        "authz-scope",
        "authz-provider",
        "authz-sub",
        "cb-state",  # an unknown state was accepted
        "revoke-auth",  # unauthenticated revocation answered 200
        "revoke-own",  # the revoked token still works
    }, [(r.id, r.detail) for r in report.results if r.outcome == "fail"]


def test_readme_example_runs_as_written(shop: NativeStack, tmp_path: Path) -> None:
    (block,) = code_blocks("Check any ATH server: `ath conformance`", "bash")
    bin_dir = str(Path(sys.executable).parent)
    run = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block],
        env={
            "PATH": f"{bin_dir}:/usr/bin:/bin",
            "ATH_SERVER_URL": shop.shop_url,
            "ATH_CONFORMANCE_PASSWORD": shop.password,
            "HOME": str(tmp_path),
        },
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    # The native shop passes every check (the gateway proxy's own checks do not apply).
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    assert re.search(r"\b4\d passed, 0 failed, 0 skipped in .*: conformant", run.stdout)
    assert "proxy-scope-map" not in run.stdout
    page = (tmp_path / "conformance.html").read_text()
    assert "<strong>conformant</strong>" in page and "att-alg-hmac" in page
