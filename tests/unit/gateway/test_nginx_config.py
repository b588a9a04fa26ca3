"""``ath gateway nginx-config``, examples/nginx/ and the README's "Use your own proxy" section.

The generated configuration is run by a real nginx in tests/integration/gateway/
test_forward_auth.py; here: what it says, the example file, the CLI and the documented contract.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from athkit.cli import app as cli_app
from athkit.gateway import load_config, nginx_config
from athkit.gateway._check import CREDENTIALS_HEADER
from athkit.protocol import ATHError, ErrorCode
from athkit.server._forward_auth import ERROR_HEADER, SECRET_HEADER, error_header
from tests.docs import code_blocks

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "gateway.toml"
EXAMPLE_NGINX = ROOT / "examples" / "nginx" / "ath-gateway.conf"
EXAMPLE_SECRET = "EXAMPLE-ONLY-make-your-own-with-ath-gateway-nginx-config"
SECTION = "Use your own proxy"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """What an operator of examples/gateway.toml exports, plus the forward-auth secret."""
    calendar = tmp_path / "calendar_secret"
    calendar.write_text("calendar-client-secret")
    return {
        "ATH_GATEWAY_SECRET_KEY": "k" * 40,
        "ATH_GATEWAY_ADMIN_TOKEN": "a" * 40,
        "MAIL_CLIENT_SECRET": "mail-client-secret",
        "ATH_GATEWAY__PROVIDERS__CALENDAR__CLIENT_SECRET_FILE": str(calendar),
        "ATH_GATEWAY__FORWARD_AUTH__SECRET_ENV": "ATH_FORWARD_AUTH_SECRET",
        "ATH_FORWARD_AUTH_SECRET": EXAMPLE_SECRET,
    }


def test_example_file_is_the_generators_output(env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "ath-nginx.conf"
    result = CliRunner().invoke(
        cli_app,
        ["gateway", "nginx-config", "-c", str(EXAMPLE), "--listen", "443 ssl", "-o", str(out)],
        env=env,
    )
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600  # it holds the secret
    assert out.read_text() == EXAMPLE_NGINX.read_text()
    printed = CliRunner().invoke(
        cli_app, ["gateway", "nginx-config", "-c", str(EXAMPLE), "--listen", "443 ssl"], env=env
    )
    assert printed.exit_code == 0 and printed.stdout == EXAMPLE_NGINX.read_text()


def test_generated_config_routes_by_the_raw_uri(env: dict[str, str]) -> None:
    config = load_config(EXAMPLE, environ=env)
    text = nginx_config(config, EXAMPLE_SECRET, listen="127.0.0.1:8443")
    # Each provider's API, by provider id, with its own path prefix and Host/SNI name.
    assert "    'mail' https://ath_api_1/v1;" in text
    assert "    'calendar' 'api.calendar.example';" in text
    assert "server api.mail.example:443;" in text
    assert "server 127.0.0.1:8080;" in text  # athkit's listen
    assert "proxy_pass $ath_api$ath_rest;" in text  # a variable: no normalisation
    assert f"proxy_set_header {SECRET_HEADER} '{EXAMPLE_SECRET}';" in text
    assert f'proxy_set_header {SECRET_HEADER} "";' in text  # a client's copy is blanked
    assert "proxy_ssl_verify on;" in text
    assert "server_name gateway.example.com;" in text


def test_cli_without_a_forward_auth_secret_explains(env: dict[str, str]) -> None:
    del env["ATH_GATEWAY__FORWARD_AUTH__SECRET_ENV"]
    result = CliRunner().invoke(cli_app, ["gateway", "nginx-config", "-c", str(EXAMPLE)], env=env)
    assert result.exit_code == 1
    assert "forward_auth.secret_env or forward_auth.secret_file" in result.output


def test_short_or_unquotable_secrets_are_refused(env: dict[str, str]) -> None:
    config = load_config(EXAMPLE, environ=env)
    with pytest.raises(ValueError, match="at least 32"):
        nginx_config(config, "short")
    with pytest.raises(ValueError, match="cannot put"):
        nginx_config(config, "x" * 40 + "';evil")
    env["ATH_FORWARD_AUTH_SECRET"] = "too-short"
    result = CliRunner().invoke(
        cli_app, ["gateway", "check", "--offline", "-c", str(EXAMPLE)], env=env
    )
    assert result.exit_code == 1
    assert "forward_auth.secret: the forward-auth secret must be at least 32" in result.output


def test_readme_nginx_excerpt_is_the_generated_config(env: dict[str, str]) -> None:
    generated = EXAMPLE_NGINX.read_text().splitlines()
    [excerpt] = code_blocks(SECTION, "nginx")
    for line in excerpt.splitlines():
        if line.strip() in ("", "}"):
            continue
        assert line in generated, f"README line not in the generated config: {line!r}"


def test_readme_commands_generate_a_config(env: dict[str, str], tmp_path: Path) -> None:
    """The README's commands, run by bash as written, on the example plus its [forward_auth]."""
    [block] = code_blocks(SECTION, "bash")
    [toml] = code_blocks(SECTION, "toml")
    (tmp_path / "gateway.toml").write_text(EXAMPLE.read_text() + "\n" + toml)
    del env["ATH_GATEWAY__FORWARD_AUTH__SECRET_ENV"], env["ATH_FORWARD_AUTH_SECRET"]
    path = f"{Path(sys.executable).parent}:{os.environ['PATH']}"  # this venv's ath and python
    run = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block],
        cwd=tmp_path,
        env={**os.environ, **env, "PATH": path},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    out = tmp_path / "ath-nginx.conf"
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert re.search(rf"proxy_set_header {SECRET_HEADER} '[A-Za-z0-9_-]{{43}}';", out.read_text())


def test_readme_envoy_filter_names_the_checks_headers() -> None:
    [block] = code_blocks(SECTION, "yaml")
    [ext_authz] = yaml.safe_load(block)["http_filters"]
    config = ext_authz["typed_config"]
    assert config["failure_mode_allow"] is False
    service = config["http_service"]
    assert service["path_prefix"] == "/ath/check"
    request = service["authorization_request"]
    assert {"exact": "x-ath-agent-id"} in request["allowed_headers"]["patterns"]
    assert request["headers_to_add"][0]["key"] == SECRET_HEADER.lower()
    response = service["authorization_response"]
    # The check answers the credentials in Authorization too, for Envoy to copy upstream.
    assert response["allowed_upstream_headers"]["patterns"] == [{"exact": "authorization"}]
    client = [p["exact"] for p in response["allowed_client_headers"]["patterns"]]
    assert "authorization" not in client and CREDENTIALS_HEADER.lower() not in client
    assert ERROR_HEADER.lower() not in client


def test_error_header_is_one_ascii_line_and_bounded() -> None:
    exc = ATHError(
        ErrorCode.SCOPE_NOT_APPROVED,
        "GET /caf\u00e9\r\nX-Injected: 1 is not allowed",
        details={"path": "/x" * 5000},
    )
    line = error_header(exc)
    assert b"\r" not in line and b"\n" not in line and line.isascii()
    assert len(line) <= 2500
    assert b"SCOPE_NOT_APPROVED" in line
    small = ATHError(ErrorCode.TOKEN_REVOKED, "revoked")
    assert error_header(small) == b'{"code":"TOKEN_REVOKED","message":"revoked"}'


def test_check_warns_when_athkit_listens_outside(env: dict[str, str]) -> None:
    inside = CliRunner().invoke(
        cli_app, ["gateway", "check", "--offline", "-c", str(EXAMPLE)], env=env
    )
    assert inside.exit_code == 0 and "only your proxy reaches it" not in inside.output
    env["ATH_GATEWAY__LISTEN"] = "0.0.0.0:8080"
    outside = CliRunner().invoke(
        cli_app, ["gateway", "check", "--offline", "-c", str(EXAMPLE)], env=env
    )
    assert outside.exit_code == 0, outside.output  # a warning, not an error
    assert "warning: listen: with [forward_auth], bind athkit where only your proxy" in (
        outside.output
    )
