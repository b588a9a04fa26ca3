"""The ``ath`` agent commands without an ATH server: setup, config, errors and exit codes."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from athkit.cli import app
from athkit.testing import free_port, serve_in_thread
from tests.subprocs import default_sigint
from tests.unit.agent.test_client_errors import Double

runner = CliRunner()


@pytest.fixture
def cfg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.delenv("ATH_CONFIG_DIR", raising=False)
    yield tmp_path / "athkit"


def _json(args: list[str], code: int = 0) -> dict[str, object]:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == code, result.output
    data: dict[str, object] = json.loads(result.stdout)
    return data


def test_keygen_writes_a_private_key_once(cfg: Path) -> None:
    data = _json(["keygen"])
    key = Path(str(data["key_path"]))
    assert key == cfg / "agent.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    again = _json(["keygen"], code=2)
    assert again["error"]["code"] == "USAGE_ERROR"  # type: ignore[index]
    assert "--force" in again["error"]["message"]  # type: ignore[index]
    assert _json(["keygen", "--force"])["kid"] != data["kid"]


def test_config_servers_and_defaults(cfg: Path) -> None:
    _json(["config", "set-server", "shop", "http://127.0.0.1:8000/", "--mode", "native"])
    _json(["config", "set-server", "gw", "http://127.0.0.1:9000", "--mode", "gateway"])
    shown = _json(["config", "set", "agent-id", "http://127.0.0.1:7/.well-known/agent.json"])
    assert shown["default_server"] == "shop"
    assert shown["servers"] == {
        "shop": {"url": "http://127.0.0.1:8000", "mode": "native"},
        "gw": {"url": "http://127.0.0.1:9000", "mode": "gateway"},
    }
    assert _json(["config", "set", "default-server", "gw"])["default_server"] == "gw"
    assert _json(["config", "set", "colour", "blue"], code=2)["error"]["code"] == "USAGE_ERROR"  # type: ignore[index]
    assert stat.S_IMODE((cfg / "config.json").stat().st_mode) == 0o600
    shown = _json(["config", "remove-server", "gw"])
    assert "default_server" not in shown
    bad = _json(["config", "set-server", "x", "ftp://127.0.0.1"], code=2)
    assert "http" in bad["error"]["message"]  # type: ignore[index]


def test_identity_prints_the_document(cfg: Path) -> None:
    _json(["keygen"])
    agent = "http://127.0.0.1:7/.well-known/agent.json"
    doc = _json(["identity", "--agent-id", agent, "--name", "Bot", "--developer-id", "acme"])
    assert doc["agent_id"] == agent and doc["name"] == "Bot"
    assert doc["public_key"]["kty"] == "EC"  # type: ignore[index]
    assert "d" not in doc["public_key"]  # type: ignore[operator]


def test_missing_setup_is_a_user_error(cfg: Path) -> None:
    result = runner.invoke(app, ["status", "--server", "http://127.0.0.1:1"])
    assert result.exit_code == 2
    assert "ath keygen" in result.stderr or "agent id" in result.stderr
    no_server = runner.invoke(app, ["discover"])
    assert no_server.exit_code == 2 and "--server" in no_server.stderr


def test_network_failure_exits_4(cfg: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    data = _json(["discover", "--server", closed], code=4)
    assert data["error"]["code"] == "NETWORK_ERROR"  # type: ignore[index]


def test_server_refusal_exits_3_with_the_ath_code(cfg: Path) -> None:
    double = Double()
    double.error = (403, {"code": "AGENT_UNAPPROVED", "message": "pending review"})
    _json(["keygen"])
    with serve_in_thread(double.app()) as server:
        args = ["register", "--server", server.url, "--mode", "gateway"]
        args += ["--agent-id", "http://127.0.0.1:7/.well-known/agent.json", "-p", "mail=mail:read"]
        data = _json(args, code=3)
        human = runner.invoke(app, args)
    hint = data["error"].pop("hint")  # what to do next (issue 17)
    assert "ath status" in hint
    assert data["error"] == {"code": "AGENT_UNAPPROVED", "message": "pending review", "status": 403}
    assert human.exit_code == 3
    assert "AGENT_UNAPPROVED (HTTP 403): pending review" in human.stderr


def test_tampered_credentials_give_a_clear_error_not_a_traceback(tmp_path: Path) -> None:
    directory = tmp_path / "athkit"
    directory.mkdir()
    creds = directory / "credentials.json"
    creds.write_text('{"version": 1, "servers": {"x": {"clients": 5}}}')
    creds.chmod(0o600)
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path), "NO_COLOR": "1"}
    env.pop("ATH_CONFIG_DIR", None)
    ath = Path(sys.executable).with_name("ath")
    run = subprocess.run(
        [str(ath), "token", "--server", "http://127.0.0.1:1", "--agent-id", "http://127.0.0.1:7/a"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    assert "credentials.json" in run.stderr and "damaged or edited" in run.stderr


def test_identity_serve_runs_until_interrupted(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path)}
    env.pop("ATH_CONFIG_DIR", None)
    ath = str(Path(sys.executable).with_name("ath"))
    subprocess.run([ath, "keygen"], env=env, check=True, capture_output=True, timeout=60)
    port = free_port()
    proc = subprocess.Popen(
        [ath, "identity", "--serve", "--port", str(port), "--name", "Bot", "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
    )
    try:
        assert proc.stdout is not None
        lines = []
        while True:
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else "no output"
            lines.append(line)
            if line.startswith("}"):
                break
        served = json.loads("".join(lines))
        assert served["agent_id"] == f"http://127.0.0.1:{port}/.well-known/agent.json"
        response = httpx.get(served["agent_id"], timeout=5)
        assert response.json()["name"] == "Bot"
        assert response.headers["cache-control"] == "max-age=300"
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
