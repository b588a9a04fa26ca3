"""One loader for every configuration file: TOML, environment overrides, secret files."""

from __future__ import annotations

from pathlib import Path

import pytest

from athkit.config import ConfigError, apply_env_overrides, read_secret, read_toml
from athkit.oauthserver import OAuthServerConfig
from athkit.server import ApprovalRules


def test_env_overrides_reach_nested_keys_and_name_their_variable() -> None:
    data = {"providers": {"google-mail": {"scopes": ["a"]}}}
    applied = apply_env_overrides(
        data,
        {"X__PROVIDERS__GOOGLE_MAIL__SCOPES": '["b", "c"]', "X__LIMIT": "7", "OTHER": "1"},
        "X__",
    )
    assert data == {"providers": {"google-mail": {"scopes": ["b", "c"]}}, "limit": "7"}
    assert applied["X__PROVIDERS__GOOGLE_MAIL__SCOPES"] == ("providers", "google-mail", "scopes")


def test_unreadable_and_broken_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        read_toml(tmp_path / "missing.toml")
    (tmp_path / "bad.toml").write_text("a = [", encoding="utf-8")
    with pytest.raises(ValueError, match="not valid TOML"):  # ConfigError is a ValueError
        read_toml(tmp_path / "bad.toml")


def test_secret_files_are_relative_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("  s3cret \n", encoding="utf-8")
    assert read_secret(None, "secret", {}, tmp_path) == "s3cret"
    assert read_secret("VAR", None, {"VAR": "v"}, tmp_path) == "v"
    assert read_secret("VAR", None, {}, tmp_path) is None


def test_oauth_server_uses_the_same_loader(tmp_path: Path) -> None:
    (tmp_path / "client.secret").write_text("a-client-secret-of-enough-length\n", encoding="utf-8")
    file = tmp_path / "oauth.toml"
    file.write_text(
        """
issuer = "http://127.0.0.1:8400"
database_url = "sqlite:///:memory:"
[scopes]
"notes:read" = "Read your notes"
[[clients]]
client_id = "notes"
name = "Notes"
redirect_uris = ["http://127.0.0.1:9000/cb"]
scopes = ["notes:read"]
client_secret_file = "client.secret"
""",
        encoding="utf-8",
    )
    config = OAuthServerConfig.from_toml(
        file, environ={"ATH_OAUTH__ACCESS_TOKEN_LIFETIME": "600", "SECRET": "x" * 40}
    )
    assert config.access_token_lifetime == 600  # ATH_OAUTH__ overrides, like ATH_GATEWAY__
    client = config.client("notes")
    assert client is not None and len(client.secret_hash) == 64


def test_approval_rules_are_checked_in_one_place() -> None:
    rules = ApprovalRules(auto_approve=["a", "x"], review=["a"], never=["y"])
    assert rules.rule_problems(["a", "b"]) == [
        ("auto_approve", "scopes not in scopes: ['x']"),
        ("never", "scopes not in scopes: ['y']"),
        ("review", "scopes both auto-approved and reviewed: ['a']"),
    ]
