"""Property tests: hostile requests against every endpoint of every server athkit ships never
get a 5xx, always get the documented error shape, and are answered in bounded time.

Bounded by the "athkit" Hypothesis profile (tests/conftest.py); ATH_LONG_PROPERTIES=1 runs many
more examples. ``python -m tests.robustness.longrun`` is the long random run with counts.
"""

from __future__ import annotations

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.robustness._hostile import check_answer, probes
from tests.robustness._world import World

SERVERS = ["shop", "shop-oauth", "gateway", "mail-oauth", "mail-api"]


def test_every_server_and_many_endpoints_are_probed(world: World) -> None:
    assert set(SERVERS) <= set(world.servers)
    paths = {(e.server, e.method, e.path) for e in world.endpoints}
    for expected in [
        ("shop", "POST", "/ath/agents/register"),
        ("shop", "POST", "/api/cart/items"),
        ("shop", "PUT", "/ath/admin/agents/{client_id}/providers/{provider_id}/scopes"),
        ("shop", "POST", "/admin/login"),
        ("shop-oauth", "POST", "/token"),
        ("gateway", "POST", "/ath/proxy/{provider}/{rest}"),
        ("mail-api", "POST", "/messages"),
    ]:
        assert expected in paths
    assert len(paths) > 100


@pytest.mark.parametrize("server", SERVERS)
def test_hostile_requests_never_5xx(world: World, http: httpx.Client, server: str) -> None:
    endpoints = [e for e in world.endpoints if e.server == server]

    @given(probe=probes(world, endpoints))
    def run(probe: object) -> None:
        response, seconds = probe.send(http)  # type: ignore[attr-defined]
        check_answer(probe, response, seconds)  # type: ignore[arg-type]

    run()


def test_hostile_bodies_behind_real_credentials(world: World, http: httpx.Client) -> None:
    """Writes that get past authentication: the admin APIs and the agent APIs with real
    tokens, every body kind."""
    writes = [
        e
        for e in world.endpoints
        if e.method in ("POST", "PUT", "DELETE")
        and (e.path.startswith(("/ath/admin", "/api/", "/ath/proxy", "/ath/user")))
    ]

    @given(probe=probes(world, writes), data=st.data())
    def run(probe: object, data: st.DataObject) -> None:
        response, seconds = probe.send(http)  # type: ignore[attr-defined]
        check_answer(probe, response, seconds)  # type: ignore[arg-type]

    run()


@pytest.mark.parametrize(
    ("server", "method", "path"),
    [
        ("shop", "GET", "/ath/agents/x"),
        ("gateway", "POST", "/ath/revoke"),
        ("shop-oauth", "POST", "/token"),
    ],
)
def test_non_ascii_basic_credentials_are_refused_not_500(
    world: World, http: httpx.Client, server: str, method: str, path: str
) -> None:
    """Found by the long run: base64 of non-ASCII text raises ValueError, not binascii.Error."""
    response = http.request(
        method,
        world.servers[server] + path,
        headers={
            "Authorization": b"Basic \xe6\x9a",
            "Content-Type": "application/x-www-form-urlencoded",
        },
        content=b"token=x&grant_type=authorization_code",
    )
    assert response.status_code in (400, 401), response.text


@pytest.mark.parametrize("server", ["shop", "gateway"])
@pytest.mark.parametrize(
    "path", ["/api/products/%00", "/ath/consent/a%00b", "/ath/callback?state=%00", "/%00"]
)
def test_nul_in_the_url_is_refused_before_any_store(
    world: World, http: httpx.Client, server: str, path: str
) -> None:
    """PostgreSQL cannot compare text holding NUL: such a URL never reaches a lookup."""
    response = http.get(world.servers[server] + path)
    assert response.status_code == 400
    assert response.json()["details"]["reason"] == "nul_in_url"
    page = http.get(world.servers[server] + path, headers={"Accept": "text/html"})
    assert page.status_code == 400 and "<html" in page.text.lower()
