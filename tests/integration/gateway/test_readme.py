"""The README's "Run the gateway" section, run as written: its Python example in-process, its
commands against examples/gateway.toml (``serve`` as a real process on 127.0.0.1)."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from athkit.cli import app as cli_app
from athkit.testing import free_port
from tests.docs import README, python_blocks

ROOT = Path(__file__).resolve().parents[3]
SECTION = "Run the gateway"


def example_env(tmp: Path) -> dict[str, str]:
    """What an operator of examples/gateway.toml exports (no address outside 127.0.0.1)."""
    calendar_secret = tmp / "calendar_secret"
    calendar_secret.write_text("calendar-client-secret")
    return {
        "ATH_GATEWAY_SECRET_KEY": "k" * 40,
        "ATH_GATEWAY_ADMIN_TOKEN": "a" * 40,
        "MAIL_CLIENT_SECRET": "mail-client-secret",
        "ATH_GATEWAY__PROVIDERS__CALENDAR__CLIENT_SECRET_FILE": str(calendar_secret),
    }


def commands() -> list[list[str]]:
    text = README.read_text(encoding="utf-8")
    section = text[text.index(f"## {SECTION}") :]
    section = section[: section.index("\n## ", 4)]
    found = []
    for block in re.findall(r"^```bash\n(.*?)^```", section, re.MULTILINE | re.DOTALL):
        for line in block.splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                found.append(shlex.split(line))
    return found


def test_python_example_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = python_blocks(SECTION)
    assert blocks
    for name in ("GW_SECRET_KEY", "GW_ADMIN_TOKEN", "NOTES_CLIENT_SECRET"):
        monkeypatch.setenv(name, "")  # restored after the test
    monkeypatch.setenv("ATH_GATEWAY__RATE_LIMIT__REQUESTS", "")
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})  # noqa: S102


def test_check_command_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    checks = [c for c in commands() if c[:3] == ["ath", "gateway", "check"]]
    assert checks
    for name, value in example_env(tmp_path).items():
        monkeypatch.setenv(name, value)
    for command in checks:
        result = CliRunner().invoke(cli_app, command[1:])
        assert result.exit_code == 0, result.output
        assert "OK" in result.output


def test_serve_command_runs_as_a_process(tmp_path: Path) -> None:
    serves = [c for c in commands() if c[:3] == ["ath", "gateway", "serve"]]
    assert serves
    port = free_port()
    env = {
        **os.environ,
        **example_env(tmp_path),
        "ATH_GATEWAY__LISTEN": f"127.0.0.1:{port}",
        "ATH_GATEWAY__DATABASE_URL": f"sqlite:///{tmp_path}/gateway.db",
        # Explicit endpoints, so that nothing outside 127.0.0.1 is contacted at start-up.
        "ATH_GATEWAY__PROVIDERS__MAIL__AUTHORIZATION_ENDPOINT": "http://127.0.0.1:9/authorize",
        "ATH_GATEWAY__PROVIDERS__MAIL__TOKEN_ENDPOINT": "http://127.0.0.1:9/token",
    }
    ath = str(Path(sys.executable).with_name("ath"))
    proc = subprocess.Popen(
        [ath, *serves[0][1:]], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                if health.headers.get("content-type") == "application/json":
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            assert time.monotonic() < deadline, "ath gateway serve did not start"
            time.sleep(0.1)
        assert health.json() == {"status": "ok"}
        catalog = httpx.get(f"http://127.0.0.1:{port}/.well-known/ath.json").json()
        assert {p["provider_id"] for p in catalog["supported_providers"]} == {"mail", "calendar"}
        assert httpx.get(f"http://127.0.0.1:{port}/readyz").json()["status"] == "ready"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=15)
