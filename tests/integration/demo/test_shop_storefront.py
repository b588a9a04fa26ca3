"""The storefront over real HTTP, before anyone logs in."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from athkit.demo.shop import ShopConfig, create_shop_app
from athkit.oauthserver import (
    ClientConfig,
    OAuthServerConfig,
    UserConfig,
    create_oauth_app,
    hash_password,
)
from athkit.testing import ServerHandle, drive_consent, free_port, serve_in_thread


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


@pytest.fixture
def shop_with_login(tmp_path: Path) -> Iterator[tuple[ServerHandle, str]]:
    """The shop and its real OAuth server, with the demo user alice."""
    shop_port, oauth_port = free_port(), free_port()
    shop_url, oauth_url = f"http://127.0.0.1:{shop_port}", f"http://127.0.0.1:{oauth_port}"
    oauth = OAuthServerConfig(
        issuer=oauth_url,
        database_url=f"sqlite:///{tmp_path / 'oauth.db'}",
        secret_key="k" * 40,
        scopes={"profile": "See your name"},
        users=[
            UserConfig(
                username="alice",
                password_hash=hash_password("wonderland-42"),
                sub="user-alice",
                name="Alice Example",
            )
        ],
        clients=[
            ClientConfig(
                client_id="athshop-web",
                name="ATH Shop",
                redirect_uris=[f"{shop_url}/login/callback"],
                scopes=["profile"],
                client_secret="w" * 32,
            )
        ],
    )
    config = ShopConfig(
        base_url=shop_url,
        database_url=f"sqlite:///{tmp_path / 'shop.db'}",
        secret_key="s" * 40,
        oauth_issuer=oauth_url,
        web_client_secret="w" * 32,
        agent_client_secret="a" * 32,
    )
    with (
        serve_in_thread(create_oauth_app(oauth), port=oauth_port),
        serve_in_thread(create_shop_app(config), port=shop_port) as shop,
    ):
        yield shop, oauth_url


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match is not None
    return match.group(1)


def test_a_person_logs_in_fills_a_cart_and_orders(
    shop_with_login: tuple[ServerHandle, str],
) -> None:
    shop, _ = shop_with_login
    with httpx.Client(timeout=10) as browser:
        page = drive_consent(
            browser, f"{shop.url}/login?next=/cart", username="alice", password="wonderland-42"
        )
        assert isinstance(page, httpx.Response)
        assert page.url.path == "/cart"
        assert "Alice Example" in page.text
        assert "Your cart is empty" in page.text
        csrf = _csrf(page.text)
        forged = browser.post(
            f"{shop.url}/cart/add", data={"product_id": "ceramic-mug", "csrf": "forged"}
        )
        assert forged.status_code == 403
        added = browser.post(
            f"{shop.url}/cart/add",
            data={"product_id": "ceramic-mug", "csrf": csrf},
            follow_redirects=True,
        )
        assert "Ceramic mug" in added.text
        assert "Added to your cart" in added.text
        ordered = browser.post(f"{shop.url}/orders", data={"csrf": csrf}, follow_redirects=True)
        assert ordered.url.path == "/orders"
        assert "1 × Ceramic mug" in ordered.text
        home = browser.get(f"{shop.url}/")
        assert "59 in stock" in home.text  # 60 before the order
        again = browser.post(f"{shop.url}/orders", data={"csrf": csrf})
        assert again.status_code == 409
        assert "the cart is empty" in again.text
        old_cookie = browser.cookies.get("athshop_session", domain="127.0.0.1")
        assert old_cookie
        out = browser.post(f"{shop.url}/logout", data={"csrf": csrf})
        assert out.status_code == 303
    # The cookie of a logged-out session is worthless, even replayed.
    replay = httpx.get(f"{shop.url}/cart", cookies={"athshop_session": old_cookie})
    assert replay.status_code == 303


def test_a_login_that_the_person_denies_logs_nobody_in(
    shop_with_login: tuple[ServerHandle, str],
) -> None:
    shop, _ = shop_with_login
    with httpx.Client(timeout=10) as browser:
        page = drive_consent(
            browser,
            f"{shop.url}/login",
            username="alice",
            password="wonderland-42",
            allow=False,
        )
        assert isinstance(page, httpx.Response)
        assert page.status_code == 400
        assert "cancelled" in page.text
        assert browser.get(f"{shop.url}/cart").status_code == 303
