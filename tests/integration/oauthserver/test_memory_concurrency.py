"""The OAuth server on an in-memory SQLite database (the README's example) keeps every write when
several users sign in and consent at once.

With the one in-memory connection shared between requests, their transactions interleaved and
a third to a half of these consents failed; the engine now hands the connection to one request
at a time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from athkit.oauthserver import ClientConfig, UserConfig, create_oauth_app
from athkit.protocol import code_challenge_s256, generate_code_verifier
from athkit.testing import drive_consent_async, free_port, serve_in_thread
from tests.integration.oauthserver.conftest import ALICE_HASH, PASSWORD, SCOPES, make_config

USERS = 6
REDIRECT = "http://127.0.0.1:1/callback"


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    port = free_port()
    config = make_config(
        port,
        users=[
            UserConfig(username=f"user{i}", password_hash=ALICE_HASH, sub=f"sub-{i}", name="U")
            for i in range(USERS)
        ],
        clients=[
            ClientConfig(
                client_id="shop",
                name="Shop",
                client_secret="c" * 32,
                redirect_uris=[REDIRECT],
                scopes=list(SCOPES),
            )
        ],
    )
    assert config.database_url == "sqlite:///:memory:"
    with serve_in_thread(create_oauth_app(config), port=port) as server:
        yield server.url


async def _one_user(url: str, index: int) -> str:
    verifier = generate_code_verifier()
    params = {
        "response_type": "code",
        "client_id": "shop",
        "redirect_uri": REDIRECT,
        "scope": "orders:read profile",
        "state": f"state-{index}",
        "code_challenge": code_challenge_s256(verifier),
        "code_challenge_method": "S256",
    }
    async with httpx.AsyncClient(timeout=30) as browser:
        back = await drive_consent_async(
            browser,
            str(httpx.URL(f"{url}/authorize", params=params)),
            username=f"user{index}",
            password=PASSWORD,
            stop_at=REDIRECT,
        )
        if not isinstance(back, str):
            return f"consent answered {back.status_code}"
        code = httpx.URL(back).params.get("code")
        if code is None:
            return f"no code in {back}"
        token = await browser.post(
            f"{url}/token",
            auth=("shop", "c" * 32),
            data={
                "grant_type": "authorization_code",
                "code": code,
                "code_verifier": verifier,
                "redirect_uri": REDIRECT,
            },
        )
        if token.status_code != 200:
            return f"token answered {token.status_code}"
        me = await browser.get(
            f"{url}/userinfo", headers={"Authorization": f"Bearer {token.json()['access_token']}"}
        )
        return "ok" if me.json().get("sub") == f"sub-{index}" else f"userinfo {me.text}"


async def test_concurrent_users_all_complete_on_memory_sqlite(server_url: str) -> None:
    for _round in range(2):
        results = await asyncio.gather(*(_one_user(server_url, i) for i in range(USERS)))
        assert results == ["ok"] * USERS
