"""From gateway.toml to the engine's settings: secrets, issuer metadata, development keys."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from athkit.gateway import ConfigError, load_config, resolve_settings
from athkit.gateway._settings import metadata_url
from athkit.testing import serve_in_thread

CONFIG = """
public_base_url = "https://gw.example"
database_url = "sqlite:///data/gateway.db"
{secret}

[providers.mail]
display_name = "Mail"
{endpoints}
client_id = "gw"
client_secret_file = "mail.secret"
scopes = ["mail:read"]
api_base = "https://api.mail.example"

[providers.mail.routes]
"mail:read" = ["GET /messages"]
"""


def write(tmp: Path, *, secret: str = "", endpoints: str = "") -> Path:
    (tmp / "mail.secret").write_text("mail-client-secret\n")
    endpoints = endpoints or (
        'authorization_endpoint = "https://a.example/authorize"\n'
        'token_endpoint = "https://a.example/token"'
    )
    path = tmp / "gateway.toml"
    path.write_text(CONFIG.format(secret=secret, endpoints=endpoints))
    return path


def test_development_mode_generates_and_keeps_a_secret_key(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(tmp_path)
    with pytest.raises(ConfigError, match="production mode needs a secret key"):
        load_config(path, environ={})
    settings = resolve_settings(load_config(path, environ={}, mode="development"), environ={})
    key_file = tmp_path / "data" / "gateway.db.secret-key"
    assert key_file.read_text().strip() == settings.secret_key.get_secret_value()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert "DEVELOPMENT MODE" in caplog.text
    again = resolve_settings(load_config(path, environ={}, mode="development"), environ={})
    assert again.secret_key == settings.secret_key  # persisted: provider tokens still decrypt
    # The relative SQLite path is relative to the config file, like every other path.
    assert settings.database_url == f"sqlite:///{tmp_path}/data/gateway.db"
    provider = settings.providers[0]
    assert provider.client_secret.get_secret_value() == "mail-client-secret"
    assert provider.route_map().allowing_scope("GET", "/messages", ["mail:read"]) == "mail:read"


def test_issuer_metadata_fills_in_the_endpoints(tmp_path: Path) -> None:
    def metadata(issuer: str) -> JSONResponse:
        return JSONResponse(
            {
                "issuer": issuer,
                "authorization_endpoint": f"{issuer}/authorize",
                "token_endpoint": f"{issuer}/token",
                "userinfo_endpoint": f"{issuer}/userinfo",
            }
        )

    holder: dict[str, str] = {}
    app = Starlette(
        routes=[
            Route(
                "/.well-known/oauth-authorization-server",
                lambda _request: metadata(holder["issuer"]),
            )
        ]
    )
    with serve_in_thread(app) as server:
        holder["issuer"] = server.url
        path = write(
            tmp_path, secret='secret_key_env = "KEY"', endpoints=f'issuer = "{server.url}"'
        )
        env = {"KEY": "k" * 40}
        settings = resolve_settings(load_config(path, environ=env), environ=env)
        provider = settings.providers[0]
        assert provider.authorization_endpoint == f"{server.url}/authorize"
        assert provider.token_endpoint == f"{server.url}/token"
        assert provider.userinfo_endpoint == f"{server.url}/userinfo"
        # An issuer whose metadata names someone else is refused (RFC 8414 §3.3).
        holder["issuer"] = "https://impostor.example"
        with pytest.raises(ConfigError, match="names issuer"):
            resolve_settings(load_config(path, environ=env), environ=env)


def test_metadata_url_inserts_the_well_known_path() -> None:
    assert (
        metadata_url("https://auth.example/tenant1")
        == "https://auth.example/.well-known/oauth-authorization-server/tenant1"
    )
    assert (
        metadata_url("https://auth.example/")
        == "https://auth.example/.well-known/oauth-authorization-server"
    )
