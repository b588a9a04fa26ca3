"""Unit tests: password hashes, config validation, session cookies and the schema."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from pydantic import ValidationError
from sqlalchemy.engine import Connection

from athkit.oauthserver import OAuthServerConfig, hash_password, verify_password
from athkit.oauthserver._sessions import BrowserSession, decode_session, encode_session
from athkit.oauthserver._tables import metadata
from athkit.protocol import hash_secret
from athkit.storage import create_database, run_migrations
from tests.integration.oauthserver.conftest import make_config


def test_password_hash_round_trip() -> None:
    encoded = hash_password("s3cret!")
    assert encoded.startswith("scrypt$16384$8$1$")
    assert encoded != hash_password("s3cret!")  # a fresh salt each time
    assert verify_password("s3cret!", encoded)
    assert not verify_password("s3cret", encoded)
    assert not verify_password("s3cret!", None)
    assert not verify_password("s3cret!", "scrypt$1$1$1$x$y")


def test_config_refuses_bad_values() -> None:
    cases: list[dict[str, Any]] = [
        {"issuer": "ftp://x"},
        {"issuer": "http://127.0.0.1:1/?q=1"},
        {"scopes": {"bad scope": "x"}},
        {"secret_key": "short"},
        {"users": [{"username": "a", "password_hash": "plain", "sub": "1", "name": "A"}]},
    ]
    for override in cases:
        with pytest.raises(ValidationError):
            make_config(1, **override)


def test_client_secret_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = {"client_id": "c", "name": "C", "redirect_uris": ["http://127.0.0.1/cb"], "scopes": []}
    monkeypatch.setenv("C_SECRET", "from-the-environment-123")
    (tmp_path / "secret.txt").write_text("from-a-file-0123456789\n")
    for source, plain in [
        ({"client_secret_env": "C_SECRET"}, "from-the-environment-123"),
        ({"client_secret_file": str(tmp_path / "secret.txt")}, "from-a-file-0123456789"),
        ({"client_secret_hash": hash_secret("hashed-secret-0123")}, "hashed-secret-0123"),
        ({"client_secret": "python-plain-secret"}, "python-plain-secret"),
    ]:
        config = make_config(1, clients=[{**base, **source}])
        assert config.clients[0].secret_hash == hash_secret(plain)
        assert "python-plain-secret" not in repr(config)
    for bad in [{}, {"client_secret_env": "UNSET_VAR_XYZ"}, {"client_secret": "short"}]:
        with pytest.raises(ValidationError):
            make_config(1, clients=[{**base, **bad}])
    with pytest.raises(ValidationError):
        make_config(1, clients=[{**base, "client_secret": "x" * 20, "scopes": ["unknown"]}])


def test_toml_refuses_plain_secrets(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        'issuer = "http://127.0.0.1:1"\n[scopes]\n"a" = "A"\n'
        '[[clients]]\nclient_id = "c"\nname = "C"\nredirect_uris = ["http://127.0.0.1/cb"]\n'
        'scopes = ["a"]\nclient_secret = "plain-text-secret-123"\n'
    )
    with pytest.raises(ValueError, match="plain client_secret"):
        OAuthServerConfig.from_toml(path)


def test_session_cookie_is_signed() -> None:
    key = b"k" * 32
    session = BrowserSession.new(1000.0).logged_in("user-1", 1000.0)
    value = encode_session(session, key)
    assert decode_session(value, key, now=1001, lifetime=60) == session
    assert decode_session(value, b"x" * 32, now=1001, lifetime=60) is None
    assert decode_session(value, key, now=1100, lifetime=60) is None
    payload, mac = value.split(".")
    assert decode_session(payload[:-2] + "AA." + mac, key, now=1001, lifetime=60) is None
    assert decode_session("garbage", key, now=1001, lifetime=60) is None
    assert not session.csrf_ok(None) and not session.csrf_ok("") and session.csrf_ok(session.csrf)


def test_migrations_match_the_tables() -> None:
    async def check() -> list[Any]:
        engine = create_database("sqlite:///:memory:")
        await run_migrations(engine, "athkit.oauthserver:migrations", "oauthserver_alembic_version")

        def diff(conn: Connection) -> list[Any]:
            context = MigrationContext.configure(
                conn, opts={"version_table": "oauthserver_alembic_version"}
            )
            return list(compare_metadata(context, metadata))

        async with engine.connect() as conn:
            result = await conn.run_sync(diff)
        await engine.dispose()
        return result

    assert asyncio.run(check()) == []


def test_redirect_uri_matching() -> None:
    from athkit.protocol import redirect_matches

    assert redirect_matches("https://app.example/cb", "https://app.example/cb")
    assert not redirect_matches("https://app.example/cb", "https://app.example/cb/")
    assert not redirect_matches("https://app.example/cb", "https://app.example/cb?x=1")
    assert not redirect_matches("https://app.example/cb", "https://APP.example/cb")
    # RFC 8252 §7.3: loopback registered without a port matches any port.
    assert redirect_matches("http://127.0.0.1/cb", "http://127.0.0.1:51234/cb")
    assert redirect_matches("http://[::1]/cb", "http://[::1]:8080/cb")
    assert not redirect_matches("http://127.0.0.1/cb", "http://127.0.0.1:51234/other")
    assert not redirect_matches("http://127.0.0.1/cb", "http://localhost:51234/cb")
    assert not redirect_matches("http://127.0.0.1/cb", "http://u@127.0.0.1:5/cb")
    assert not redirect_matches("http://127.0.0.1/cb", "http://127.0.0.1:99999/cb")
    # One rule for the OAuth server and the ATH engine (they disagreed here): RFC 8252 §7.3
    # says any port, so a loopback URI registered with a port matches another port too.
    assert redirect_matches("http://127.0.0.1:8000/cb", "http://127.0.0.1:8001/cb")
    assert not redirect_matches("http://127.0.0.1/cb", "http://127.0.0.1:5/cb#frag")
    assert not redirect_matches("https://127.0.0.1/cb", "https://127.0.0.1:5/cb")
