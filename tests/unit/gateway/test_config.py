"""gateway.toml: loading, environment overrides, and the problems ``ath gateway check`` prints."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from athkit.cli import app as cli_app
from athkit.gateway import ConfigError, check_config, load_config

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "gateway.toml"
KEY = "k" * 40
ADMIN = "a" * 40


@pytest.fixture
def example_env(tmp_path: Path) -> dict[str, str]:
    secret_file = tmp_path / "calendar_secret"
    secret_file.write_text("calendar-client-secret\n")
    return {
        "ATH_GATEWAY_SECRET_KEY": KEY,
        "ATH_GATEWAY_ADMIN_TOKEN": ADMIN,
        "MAIL_CLIENT_SECRET": "mail-client-secret",
        # The example points at /run/secrets; an override re-points it (and shows the scheme).
        "ATH_GATEWAY__PROVIDERS__CALENDAR__CLIENT_SECRET_FILE": str(secret_file),
    }


def test_example_config_is_valid(example_env: dict[str, str]) -> None:
    config, problems = check_config(EXAMPLE, environ=example_env)
    assert [p for p in problems if not p.warning] == []
    assert config is not None
    assert set(config.providers) == {"mail", "calendar"}
    mail = config.providers["mail"]
    assert mail.routes["mail:read"] == ["GET /messages", "GET /messages/{id}"]
    assert mail.approval.review == ["mail:send"]
    assert config.listen_host == "127.0.0.1" and config.listen_port == 8080


def test_environment_overrides_every_level(example_env: dict[str, str]) -> None:
    env = {
        **example_env,
        "ATH_GATEWAY__DATABASE_URL": "postgresql://postgres@127.0.0.1/test",
        "ATH_GATEWAY__RATE_LIMIT__REQUESTS": "5",
        "ATH_GATEWAY__PROVIDERS__MAIL__CLIENT_ID": "other-client",
        "ATH_GATEWAY__PROVIDERS__MAIL__SCOPES": '["mail:read", "mail:send", "mail:delete"]',
        "ATH_GATEWAY__PROVIDERS__MAIL__APPROVAL__AUTO_APPROVE": '["mail:read", "mail:send"]',
        "ATH_GATEWAY__PROVIDERS__MAIL__APPROVAL__REVIEW": "[]",
    }
    config = load_config(EXAMPLE, environ=env)
    assert config.database_url == "postgresql://postgres@127.0.0.1/test"
    assert config.rate_limit.requests == 5
    assert config.providers["mail"].client_id == "other-client"
    assert config.providers["mail"].approval.auto_approve == ["mail:read", "mail:send"]


def test_every_problem_is_reported_with_its_key_path(tmp_path: Path) -> None:
    bad = tmp_path / "gateway.toml"
    bad.write_text(
        """
public_base_url = "http://gateway.example.com"
listen = "nowhere"
colour = "blue"

[rate_limit]
backend = "redis"

[providers.mail]
display_name = "Mail"
client_id = "gw"
client_secret_env = "UNSET_SECRET_VAR"
scopes = ["mail:read"]
api_base = "ftp://files.example"

[providers.mail.routes]
"mail:read" = ["GET /messages", "FETCH", "GET messages"]
"mail:write" = ["POST /messages"]

[providers.mail.approval]
auto_approve = ["mail:admin"]

[providers.calendar]
display_name = "Calendar"
scopes = "calendar:read"
"""
    )
    config, problems = check_config(bad, environ={"ATH_GATEWAY__RATE_LIMIT__WINDOW_SECONDS": "-1"})
    assert config is None
    lines = {str(p) for p in problems}
    expected = [
        "error: colour: unknown key (misspelt?)",
        "error: public_base_url: must be https in production mode (ATH §6)",
        "error: listen: listen must be HOST:PORT, got 'nowhere'",
        "error: rate_limit.redis_url: redis_url is required when rate_limit.backend = 'redis'",
        "error: secret_key_env: production mode needs a secret key",
        "error: providers.mail.issuer: give an issuer",
        "error: providers.mail.api_base: must be an http(s) URL, got 'ftp://files.example'",
        "error: providers.mail.client_secret_env: environment variable UNSET_SECRET_VAR is not "
        "set or empty",
        """error: providers.mail.routes."mail:read"[1]: 'FETCH' must be 'METHODS /path'""",
        """error: providers.mail.routes."mail:read"[2]: route pattern must start with '/'""",
        """error: providers.mail.routes."mail:write": scope 'mail:write' is not in""",
        "error: providers.mail.approval.auto_approve: scopes not in providers.mail.scopes",
        "error: providers.calendar.client_id: required but missing",
        "error: providers.calendar.scopes: Input should be a valid list",
        "error: rate_limit.window_seconds: Input should be greater than 0 "
        "(set by ATH_GATEWAY__RATE_LIMIT__WINDOW_SECONDS)",
    ]
    for line in expected:
        assert any(actual.startswith(line) for actual in lines), (line, sorted(lines))


def test_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "gateway.toml"
    bad.write_text('public_base_url = "https://gw.example"\nlisten = 127.0.0.1:80\n')
    with pytest.raises(ConfigError) as caught:
        load_config(bad, environ={})
    assert "is not valid TOML" in str(caught.value)
    assert "line 2" in str(caught.value)


def test_development_mode_needs_no_secret_key(tmp_path: Path, example_env: dict[str, str]) -> None:
    env = {k: v for k, v in example_env.items() if k != "ATH_GATEWAY_SECRET_KEY"}
    with pytest.raises(ConfigError, match="production mode needs a secret key"):
        load_config(EXAMPLE, environ={**env, "ATH_GATEWAY__SECRET_KEY_ENV": ""})
    env["ATH_GATEWAY__SECRET_KEY_ENV"] = ""
    _, problems = check_config(EXAMPLE, environ=env, mode="development")
    assert not [p for p in problems if not p.warning and "secret" in p.path]


def test_cli_check_prints_problems_and_exits_nonzero(
    tmp_path: Path, example_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    for name, value in example_env.items():
        monkeypatch.setenv(name, value)
    ok = runner.invoke(cli_app, ["gateway", "check", "--offline", "--config", str(EXAMPLE)])
    assert ok.exit_code == 0, ok.output
    assert "OK" in ok.output
    monkeypatch.delenv("MAIL_CLIENT_SECRET")
    bad = runner.invoke(cli_app, ["gateway", "check", "--offline", "--config", str(EXAMPLE)])
    assert bad.exit_code == 1
    assert (
        "error: providers.mail.client_secret_env: environment variable MAIL_CLIENT_SECRET"
        in bad.output
    )
