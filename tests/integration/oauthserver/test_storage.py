"""Storage: racing redemptions, a failing database, PostgreSQL, and the resource indicator."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import sqlite3
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from athkit.oauthserver import create_oauth_app
from athkit.testing import drive_consent, free_port, serve_in_thread
from tests.integration.oauthserver.conftest import (
    PASSWORD,
    RS_SECRET,
    Clock,
    OAuthEnv,
    make_config,
)


def test_racing_redemptions_leave_no_live_token(oauth: OAuthEnv, http: httpx.Client) -> None:
    code = oauth.consent(http)["code"]

    def redeem(_: int) -> httpx.Response:
        with httpx.Client(timeout=10) as own:
            return oauth.exchange(own, code)

    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(redeem, range(4)))
    winners = [a for a in answers if a.status_code == 200]
    assert len(winners) <= 1
    assert all(a.json()["error"] == "invalid_grant" for a in answers if a.status_code != 200)
    # The code was presented more than once, so whatever was issued from it is revoked.
    for winner in winners:
        me = http.get(
            f"{oauth.url}/userinfo",
            headers={"Authorization": f"Bearer {winner.json()['access_token']}"},
        )
        assert me.status_code == 401


def test_resource_indicator_is_recorded(oauth: OAuthEnv, http: httpx.Client) -> None:
    url = oauth.authorize_url(resource="http://127.0.0.1:7000/api")
    code = oauth.consent(http, url=url)["code"]
    other = oauth.exchange(http, code, resource="http://127.0.0.1:7000/other")
    assert other.json()["error"] == "invalid_target"
    code = oauth.consent(http, url=url)["code"]
    tokens = oauth.exchange(http, code).json()
    info = http.post(
        f"{oauth.url}/introspect",
        data={"token": tokens["access_token"]},
        auth=("orders-api", RS_SECRET),
    ).json()
    assert info["aud"] == "http://127.0.0.1:7000/api"


def test_a_failing_database_fails_closed(tmp_path: Path, http: httpx.Client) -> None:
    db = tmp_path / "oauth.db"
    port = free_port()
    config = make_config(port, database_url=f"sqlite:///{db}")
    with serve_in_thread(create_oauth_app(config, clock=Clock()), port=port) as server:
        env = OAuthEnv(url=server.url, config=config, clock=Clock())
        tokens = env.tokens(http)
        with sqlite3.connect(db) as conn:
            conn.execute("DROP TABLE oauth_tokens")
            conn.execute("DROP TABLE oauth_auth_requests")
        me = http.get(
            f"{server.url}/userinfo",
            headers={"Authorization": f"Bearer {tokens['access_token']}"},
        )
        assert me.status_code == 503
        assert me.json()["error"] == "temporarily_unavailable"
        page = http.get(env.authorize_url())
        assert page.status_code == 503
        assert "Traceback" not in page.text
        refresh = http.post(
            f"{server.url}/token",
            data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
            auth=(env.client_id, env.secret),
        )
        assert refresh.status_code == 503


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A throw-away database on the local PostgreSQL, dropped afterwards."""
    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=1).close()
    except OSError:
        if os.environ.get("ATH_REQUIRE_SERVICES") == "1":
            pytest.fail("PostgreSQL on 127.0.0.1:5432 is required but unreachable")
        pytest.skip("PostgreSQL on 127.0.0.1:5432 is not reachable")
    import asyncpg

    name = f"athkit_oauth_{secrets.token_hex(6)}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(host="127.0.0.1", port=5432, user="postgres", database="test")
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.mark.postgres
def test_flow_on_postgresql(postgres_url: str, http: httpx.Client) -> None:
    port = free_port()
    config = make_config(port, database_url=postgres_url)
    with serve_in_thread(create_oauth_app(config, clock=Clock()), port=port) as server:
        env = OAuthEnv(url=server.url, config=config, clock=Clock())
        code = env.consent(http, scopes=["orders:read"])["code"]
        first = env.exchange(http, code)
        assert first.json()["scope"] == "orders:read"
        assert env.exchange(http, code).json()["error"] == "invalid_grant"
        refresh = http.post(
            f"{server.url}/token",
            data={"grant_type": "refresh_token", "refresh_token": first.json()["refresh_token"]},
            auth=(env.client_id, env.secret),
        )
        assert refresh.json()["error"] == "invalid_grant"  # the reuse ended the grant


def _two_wrong_passwords_at_once(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two browsers fail to sign in as alice at the same moment; with a limit of two failures,
    both must count, so that even the right password is refused next."""
    from athkit.oauthserver import _authorize

    port = free_port()
    config = make_config(port, database_url=url, login_max_failures=2)
    real = _authorize.verify_password
    both_checked = threading.Barrier(2, timeout=20)

    def verify(password: str, stored: str | None) -> bool:
        ok = real(password, stored)
        both_checked.wait()  # both requests go on to count their failure together
        return ok

    def attempt(password: str) -> httpx.Response | str:
        with httpx.Client(timeout=30) as browser:
            start = env.authorize_url()
            return drive_consent(
                browser, start, username="alice", password=password, stop_at=env.redirect_uri
            )

    with serve_in_thread(create_oauth_app(config, clock=Clock()), port=port) as server:
        env = OAuthEnv(url=server.url, config=config, clock=Clock())
        monkeypatch.setattr(_authorize, "verify_password", verify)
        with ThreadPoolExecutor(max_workers=2) as pool:
            answers = list(pool.map(attempt, ["guess-1", "guess-2"]))
        monkeypatch.setattr(_authorize, "verify_password", real)
        for answer in answers:
            assert isinstance(answer, httpx.Response)
            assert answer.status_code == 401 and "Wrong username or password." in answer.text
        blocked = attempt(PASSWORD)
        assert isinstance(blocked, httpx.Response) and blocked.status_code == 429
        assert "Too many failed sign-ins" in blocked.text


def test_concurrent_failed_sign_ins_all_count_on_sqlite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _two_wrong_passwords_at_once(f"sqlite:///{tmp_path / 'oauth.db'}", monkeypatch)


@pytest.mark.postgres
def test_concurrent_failed_sign_ins_all_count_on_postgresql(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _two_wrong_passwords_at_once(postgres_url, monkeypatch)
