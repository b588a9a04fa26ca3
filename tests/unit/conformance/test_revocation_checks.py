"""The suite's revocation checks against a loopback /ath/revoke: a 200 passes them, anything
else fails each one with the status, the rule that owes a 200 and the start of the body."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from athkit.conformance import ConformanceConfig, ConformanceReport, FollowRedirectsDriver
from athkit.conformance._agents import Agent
from athkit.conformance._suite import _Run
from athkit.protocol import REVOKE_PATH, generate_private_key
from athkit.testing import serve_in_thread

SEEN: list[dict[str, object]] = []


async def revoke(request: Request) -> Response:
    body = await request.json()
    SEEN.append(body)
    if not body.get("client_id"):
        return JSONResponse({"code": "INVALID_REQUEST", "message": "who are you"}, 400)
    if str(body["client_id"]).startswith("refused-"):
        return JSONResponse({"code": "AGENT_IDENTITY_MISMATCH", "message": "not today"}, 403)
    return JSONResponse({})


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with serve_in_thread(Starlette(routes=[Route(REVOKE_PATH, revoke, methods=["POST"])])) as s:
        yield s.url


def _revocation_results(url: str, clients: str) -> dict[str, tuple[str, str]]:
    report = ConformanceReport(target=url, mode="native", driver="follow-redirects")
    run = _Run(ConformanceConfig(url=url, consent=FollowRedirectsDriver()), report)
    key = generate_private_key()
    run.agents = {
        name: Agent(name, f"http://127.0.0.1:9/{name}", key, f"{clients}-{name}", "s3cret")
        for name in ("main", "other")
    }
    run.tokens = {"main": "ath-token-of-main"}
    try:
        run.revocation_checks()
    finally:
        run.http.close()
    return {r.id: (r.outcome, r.detail) for r in report.results}


def test_revocation_answering_200_passes(server: str) -> None:
    SEEN.clear()
    results = _revocation_results(server, "accepted")
    assert results["revoke-foreign"] == ("pass", "200 (give --call to check the token survived)")
    assert results["revoke-own"] == ("pass", "200 (give --call to check the token died)")
    assert results["revoke-unknown"] == ("pass", "200")
    assert {"token": "ath-token-of-main", "client_id": "accepted-other"}.items() <= SEEN[1].items()
    assert SEEN[1]["client_secret"] == "s3cret"


def test_revocation_answering_otherwise_fails_each_check_with_why(server: str) -> None:
    results = _revocation_results(server, "refused")
    rules = {
        "revoke-foreign": "RFC 7009 §2.2: 200, even for another agent's token",
        "revoke-own": "ATH §4.7: 200 for an agent's own token",
        "revoke-unknown": "RFC 7009 §2.2: 200 for an unknown token",
    }
    for check_id, rule in rules.items():
        outcome, detail = results[check_id]
        assert outcome == "fail", check_id
        assert detail.startswith(f"revocation answered 403 ({rule}): "), detail
        assert "AGENT_IDENTITY_MISMATCH" in detail and "not today" in detail
