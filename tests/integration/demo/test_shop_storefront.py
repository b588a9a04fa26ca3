"""The storefront over real HTTP, before anyone logs in."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from athkit.demo.shop import ShopConfig, create_shop_app
from athkit.testing import ServerHandle, free_port, serve_in_thread


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[ServerHandle]:
    port = free_port()
    config = ShopConfig(
        base_url=f"http://127.0.0.1:{port}",
        database_url=f"sqlite:///{tmp_path / 'shop.db'}",
        secret_key="s" * 40,
        oauth_issuer="http://127.0.0.1:9",  # never reached by these tests
        web_client_secret="w" * 32,
        agent_client_secret="a" * 32,
    )
    with serve_in_thread(create_shop_app(config), port=port) as handle:
        yield handle


def test_products_page_lists_the_catalogue_without_login(shop: ServerHandle) -> None:
    page = httpx.get(f"{shop.url}/")
    assert page.status_code == 200
    assert page.text.count('class="card"') == 12
    assert "Sold out" in page.text
    assert "Add to cart" not in page.text  # only for people who logged in
    css = httpx.get(f"{shop.url}/static/shop.css")
    assert css.status_code == 200
    assert "text/css" in css.headers["content-type"]


def test_login_sends_the_browser_to_the_oauth_server_with_pkce(shop: ServerHandle) -> None:
    response = httpx.get(f"{shop.url}/login?next=//evil.example/")
    assert response.status_code == 303
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("athshop_session=")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie or "samesite=lax" in cookie.lower()
    target = urlsplit(response.headers["location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == "http://127.0.0.1:9/authorize"
    query = parse_qs(target.query)
    assert query["code_challenge_method"] == ["S256"]
    assert query["redirect_uri"] == [f"{shop.url}/login/callback"]
    assert len(query["state"][0]) >= 22


def test_callback_with_a_foreign_state_is_refused(shop: ServerHandle) -> None:
    with httpx.Client(base_url=shop.url) as client:
        client.get("/login")
        response = client.get("/login/callback", params={"code": "x", "state": "forged"})
        assert response.status_code == 400
        assert "did not start here" in response.text
        fresh = httpx.get(f"{shop.url}/login/callback", params={"code": "x", "state": "y"})
        assert fresh.status_code == 400


def test_forms_without_a_session_or_csrf_token_change_nothing(shop: ServerHandle) -> None:
    response = httpx.post(f"{shop.url}/cart/add", data={"product_id": "ceramic-mug"})
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    assert httpx.get(f"{shop.url}/cart").status_code == 303
    assert httpx.get(f"{shop.url}/nowhere").status_code == 404
