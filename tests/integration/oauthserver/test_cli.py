"""``ath oauth``: serve the example config as a real subprocess; make hashes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from athkit.cli import app
from athkit.oauthserver import OAuthServerConfig, verify_password
from athkit.protocol import code_challenge_s256, generate_code_verifier, hash_secret
from athkit.testing import drive_consent, free_port

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "oauth-server.toml"
ENV = {
    "ATH_OAUTH_SECRET_KEY": "example-session-key-0123456789abcdef",
    "ATH_SHOP_CLIENT_SECRET": "example-shop-secret-0123456789",
    "ATH_ORDERS_API_SECRET": "example-orders-api-secret-0123",
}


def test_example_config_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    config = OAuthServerConfig.from_toml(EXAMPLE)
    assert config.issuer == "http://127.0.0.1:8400"
    shop = config.client("ath-shop")
    assert shop is not None and shop.secret_hash == hash_secret(ENV["ATH_SHOP_CLIENT_SECRET"])
    alice = config.user_by_name("alice")
    assert alice is not None and verify_password("wonderland", alice.password_hash)
    text = EXAMPLE.read_text()
    assert not any(value in text for value in ENV.values())
    monkeypatch.delenv("ATH_SHOP_CLIENT_SECRET")
    with pytest.raises(ValueError, match="ATH_SHOP_CLIENT_SECRET"):
        OAuthServerConfig.from_toml(EXAMPLE)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """``ath oauth serve`` on the example config, moved to a free port and a temp database."""
    port = free_port()
    config = tmp_path / "oauth.toml"
    text = EXAMPLE.read_text()
    text = text.replace('"http://127.0.0.1:8400"', f'"http://127.0.0.1:{port}"')
    text = text.replace('"sqlite:///ath-oauth.db"', f'"sqlite:///{tmp_path / "oauth.db"}"')
    config.write_text(text)
    ath = Path(sys.executable).parent / "ath"
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [str(ath), "oauth", "serve", "--config", str(config)],
        env={**os.environ, **ENV},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                output = (tmp_path / "serve.log").read_text()
                pytest.fail(f"ath oauth serve did not start: {output}")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_ath_oauth_serve(served: str) -> None:
    assert httpx.get(f"{served}/healthz").json() == {"status": "ok"}
    meta = httpx.get(f"{served}/.well-known/oauth-authorization-server").json()
    assert meta["issuer"] == served
    assert meta["code_challenge_methods_supported"] == ["S256"]
    # The example's demo user can log in and the client's env-var secret works.
    verifier = generate_code_verifier()
    params = {
        "response_type": "code",
        "client_id": "ath-shop",
        "redirect_uri": "http://127.0.0.1:8000/login/callback",
        "scope": "orders:read profile",
        "state": "s1",
        "code_challenge": code_challenge_s256(verifier),
        "code_challenge_method": "S256",
    }
    with httpx.Client(timeout=10) as http:
        url = str(httpx.URL(f"{served}/authorize", params=params))
        result = drive_consent(
            http,
            url,
            username="alice",
            password="wonderland",
            stop_at="http://127.0.0.1:8000/login/callback",
        )
        assert isinstance(result, str)
        code = re.search(r"code=([^&]+)", result)
        assert code is not None
        token = http.post(
            f"{served}/token",
            data={
                "grant_type": "authorization_code",
                "code": code.group(1),
                "redirect_uri": params["redirect_uri"],
                "code_verifier": verifier,
            },
            auth=("ath-shop", ENV["ATH_SHOP_CLIENT_SECRET"]),
        )
        assert token.status_code == 200
        assert token.json()["scope"] == "orders:read profile"


def test_serve_reports_a_bad_config(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('issuer = "ftp://nowhere"\n[scopes]\n')
    result = CliRunner().invoke(app, ["oauth", "serve", "--config", str(bad)])
    assert result.exit_code == 2
    assert "issuer" in result.output


def test_hash_password_and_secret() -> None:
    runner = CliRunner()
    prompted = runner.invoke(app, ["oauth", "hash-password"], input="pa55word\npa55word\n")
    assert prompted.exit_code == 0, prompted.output
    encoded = prompted.output.strip().splitlines()[-1]
    assert verify_password("pa55word", encoded)
    piped = runner.invoke(app, ["oauth", "hash-password", "--stdin"], input="other\n")
    assert verify_password("other", piped.output.strip())
    secret = runner.invoke(
        app, ["oauth", "hash-secret", "--stdin"], input="a-client-secret-1234567\n"
    )
    assert secret.output.strip() == hash_secret("a-client-secret-1234567")
    short = runner.invoke(app, ["oauth", "hash-secret", "--stdin"], input="short\n")
    assert short.exit_code == 2
