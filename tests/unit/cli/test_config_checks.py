"""``ath gateway check`` and ``ath oauth check``: one problem per line, with its key path, a
"did you mean" for misspelt keys, the variable behind an override, no cascade, and a warning
where a deployment would silently lose something (the consent key)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from athkit.cli import app as cli_app
from athkit.cli._quickstart import QuickStart, write_quickstart
from athkit.protocol import RouteRule


@pytest.fixture
def quickstart(tmp_path: Path) -> Path:
    write_quickstart(tmp_path, QuickStart(gateway_port=18080, oauth_port=18400))
    return tmp_path


def _run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli_app, list(args), env=env)
    return result.exit_code, result.output


def test_version() -> None:
    code, out = _run("--version")
    assert code == 0 and out.startswith("ath (athkit) 0.1")


def test_init_writes_a_configuration_that_checks(quickstart: Path) -> None:
    assert {p.name for p in quickstart.iterdir()} == {
        "gateway.toml",
        "oauth-server.toml",
        "upstream.py",
        "secrets",
    }
    for secret in (quickstart / "secrets").iterdir():
        assert secret.stat().st_mode & 0o777 == 0o600, secret
    code, out = _run("gateway", "check", "--offline", "--config", str(quickstart / "gateway.toml"))
    assert code == 0, out
    assert "note: issuer metadata not probed (--offline): notes" in out
    assert "error" not in out
    code, out = _run("oauth", "check", "--config", str(quickstart / "oauth-server.toml"))
    assert code == 0 and out.strip().endswith("oauth-server.toml: OK"), out


def test_init_never_overwrites(quickstart: Path) -> None:
    code, out = _run("gateway", "init", str(quickstart))
    assert code == 2
    assert "already has gateway.toml" in out


def test_gateway_check_suggests_keys_and_names_variables(quickstart: Path) -> None:
    config = quickstart / "gateway.toml"
    text = config.read_text()
    text = text.replace("listen =", "lisen =")
    config.write_text(text.replace("auto_approve =", "auto_aprove ="))
    env = {"ATH_GATEWAY__PROVIDERS__NOTES__TIMEOUT_SECONDS": "-1"}
    code, out = _run("gateway", "check", "--offline", "--config", str(config), env=env)
    assert code == 1
    assert "error: lisen: unknown key; did you mean 'listen'?" in out
    assert (
        "error: providers.notes.approval.auto_aprove: unknown key; did you mean 'auto_approve'?"
        in out
    )
    assert (
        "error: providers.notes.timeout_seconds: Input should be greater than 0 "
        "(set by ATH_GATEWAY__PROVIDERS__NOTES__TIMEOUT_SECONDS)"
    ) in out
    # The provider with bad keys is reported once, not again as "at least one provider".
    assert "at least one provider" not in out


def test_route_methods_are_validated(quickstart: Path) -> None:
    config = quickstart / "gateway.toml"
    config.write_text(config.read_text().replace('["POST /notes"]', '["PSOT /notes"]'))
    code, out = _run("gateway", "check", "--offline", "--config", str(config))
    assert code == 1
    assert """providers.notes.routes."notes:write"[0]: unknown HTTP method 'PSOT'""" in out
    assert "(did you mean POST?)" in out
    with pytest.raises(ValueError, match="unknown HTTP method 'FETCH'"):
        RouteRule.parse(["GET", "FETCH"], "/x")


def test_missing_consent_key_is_warned_and_consent_key_prints_it(quickstart: Path) -> None:
    config = quickstart / "gateway.toml"
    code, pem = _run("gateway", "consent-key", "--config", str(config))
    assert code == 0 and pem.startswith("-----BEGIN PUBLIC KEY-----")
    assert pem.strip() in (quickstart / "oauth-server.toml").read_text()  # what init trusted
    config.write_text(
        config.read_text().replace('consent_signing_key_file = "secrets/consent-key.pem"', "")
    )
    code, out = _run("gateway", "check", "--offline", "--config", str(config))
    assert code == 0
    assert "warning: consent_signing_key_file: not set: users will consent on a page" in out
    code, out = _run("gateway", "consent-key", "--config", str(config))
    assert code == 2 and "sets no consent_signing_key_file" in out


def test_consent_key_generate(quickstart: Path) -> None:
    config = quickstart / "gateway.toml"
    config.write_text(config.read_text().replace("secrets/consent-key.pem", "new-key.pem"))
    code, out = _run("gateway", "check", "--offline", "--config", str(config))
    assert code == 1 and "ath gateway consent-key --generate" in out
    code, out = _run("gateway", "consent-key", "--generate", "--jwk", "--config", str(config))
    assert code == 0 and '"crv": "P-256"' in out
    assert (quickstart / "new-key.pem").stat().st_mode & 0o777 == 0o600


def test_oauth_check_format(quickstart: Path) -> None:
    config = quickstart / "oauth-server.toml"
    config.write_text(
        config.read_text().replace("issuer =", "isuer =").replace('name = "Alice"', "")
    )
    env = {"ATH_OAUTH__CODE_LIFETIME": "0"}
    code, out = _run("oauth", "check", "--config", str(config), env=env)
    assert code == 1
    assert "error: isuer: unknown key; did you mean 'issuer'?" in out
    assert "error: issuer: required but missing" in out
    assert "error: users[0].name: required but missing" in out
    assert "error: code_lifetime: Input should be greater than or equal to 1 (set by " in out
    assert "4 error(s)" in out
    code, out = _run("oauth", "serve", "--config", str(config), env=env)
    assert code == 2 and "the OAuth server did not start" in out
