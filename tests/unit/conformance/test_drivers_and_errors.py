"""The conformance kit's pieces on their own: the follow-redirects driver over a real loopback
server, the forged attestations, and the ATH §7 error-shape check."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from athkit.conformance import ConsentFailed, FollowRedirectsDriver, error_of
from athkit.conformance._agents import Agent
from athkit.protocol import ATHError, generate_private_key, read_unverified_claims
from athkit.protocol import verify_attestation as verify
from athkit.testing import serve_in_thread

AGENT = "http://127.0.0.1:9/agent-callback"


def _provider() -> Starlette:
    async def authorize(request: Request) -> Response:
        state = request.query_params["state"]
        return RedirectResponse(f"/approve?state={state}", status_code=302)

    async def approve(request: Request) -> Response:
        state = request.query_params["state"]
        return RedirectResponse(f"{AGENT}?code=c-1&state={state}", status_code=303)

    async def login(request: Request) -> Response:
        return HTMLResponse("<form>sign in</form>")

    return Starlette(
        routes=[
            Route("/authorize", authorize),
            Route("/approve", approve),
            Route("/login", login),
        ]
    )


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    with serve_in_thread(_provider()) as server:
        yield server.url


def test_follow_driver_reaches_the_agent_redirect(provider: str) -> None:
    driver = FollowRedirectsDriver()
    query = driver.consent(f"{provider}/authorize?state=s1", redirect_uri=AGENT, state="s1")
    assert query == {"code": "c-1", "state": "s1"}
    stopped = driver.to_callback(f"{provider}/authorize?state=s2", f"{provider}/approve")
    assert stopped.callback_url == f"{provider}/approve?state=s2"
    stopped.browser.close()


def test_follow_driver_says_when_a_page_needs_a_person(provider: str) -> None:
    with pytest.raises(ConsentFailed, match="shows a page"):
        FollowRedirectsDriver().consent(f"{provider}/login", redirect_uri=AGENT, state="s")


def test_forged_attestations_are_what_they_claim() -> None:
    key = generate_private_key()
    agent = Agent("a", "http://127.0.0.1:1/.well-known/agent.json", key)
    audience = "http://127.0.0.1:2"
    verify(agent.attest(audience), key.public_key(), audience=audience)
    for forged, reason in (
        (agent.unsigned(audience), "bad_algorithm"),
        (agent.hmac_with_public_key(audience), "bad_algorithm"),
        (agent.expired(audience), "expired"),
        (agent.issued_in_future(audience), "iat_out_of_range"),
        (agent.signed_by(generate_private_key(), audience), "bad_signature"),
    ):
        with pytest.raises(ATHError) as info:
            verify(forged, key.public_key(), audience=audience)
        assert info.value.details["reason"] == reason
    assert read_unverified_claims(agent.claiming(audience, "https://x.example/"))["sub"] == (
        "https://x.example/"
    )


def _response(status: int, body: object) -> httpx.Response:
    return httpx.Response(status, json=body, request=httpx.Request("GET", "http://x/"))


def test_error_shape_check() -> None:
    assert error_of(_response(403, {"code": "USER_DENIED", "message": "no"}), 403) == (
        "403 USER_DENIED"
    )
    failures = [
        (_response(404, {"code": "USER_DENIED", "message": "no"}), 403, ()),
        (_response(403, {"code": "OTHER", "message": "no"}), 403, ("USER_DENIED",)),
        (_response(403, {"code": "MADE_UP", "message": "no"}), 403, ()),
        (_response(403, {"message": "no"}), 403, ()),
        (_response(403, {"code": "USER_DENIED"}), 403, ()),
        (_response(403, {"code": "USER_DENIED", "message": "x", "details": []}), 403, ()),
        (httpx.Response(403, text="nope", request=httpx.Request("GET", "http://x/")), 403, ()),
    ]
    for response, status, codes in failures:
        with pytest.raises(Exception, match=r".") as info:
            error_of(response, status, *codes)
        assert type(info.value).__name__ == "Failed"
