"""The README's "The console" section, run as written: its commands (through the CLI, on a
temporary database) and its Python example (a native service on 127.0.0.1)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from athkit.cli import app as cli_app
from tests.docs import code_blocks, python_blocks

ROOT = Path(__file__).resolve().parents[3]
SECTION = "The console"


def _commands() -> list[list[str]]:
    found = []
    for block in code_blocks(SECTION, "bash"):
        for line in block.splitlines():
            if line.strip():
                found.append(shlex.split(line.split("#", 1)[0]))
    return found


def test_commands_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    # What an operator of examples/gateway.toml exports; the database goes to a temporary file.
    secret = tmp_path / "calendar_secret"
    secret.write_text("calendar-client-secret")
    for name, value in {
        "ATH_GATEWAY_SECRET_KEY": "k" * 40,
        "ATH_GATEWAY_ADMIN_TOKEN": "a" * 40,
        "MAIL_CLIENT_SECRET": "mail-client-secret",
        "ATH_GATEWAY__PROVIDERS__CALENDAR__CLIENT_SECRET_FILE": str(secret),
        "ATH_GATEWAY__DATABASE_URL": f"sqlite:///{tmp_path / 'gateway.db'}",
    }.items():
        monkeypatch.setenv(name, value)
    commands = _commands()
    assert [c[:3] for c in commands] == [
        ["ath", "gateway", "admin"],
        ["ath", "gateway", "admin"],
        ["ath", "console", "create-user"],
    ]
    password = "a long operator passphrase"
    created = CliRunner().invoke(cli_app, commands[0][1:], input=f"{password}\n{password}\n")
    assert created.exit_code == 0, created.output
    assert "operator ops-ann created for https://gateway.example.com" in created.output
    again = CliRunner().invoke(cli_app, commands[0][1:], input=f"{password}\n{password}\n")
    assert again.exit_code == 1 and "already exists" in again.output
    listed = CliRunner().invoke(cli_app, commands[1][1:])
    assert listed.exit_code == 0 and listed.output.split() == ["ops-ann"]
    native = [
        a if a != "sqlite:///shop.db" else f"sqlite:///{tmp_path / 'shop.db'}"
        for a in commands[2][1:]
    ]
    short = CliRunner().invoke(cli_app, [*native, "--password-stdin"], input="too short\n")
    assert short.exit_code == 2 and "at least 12 characters" in short.output
    made = CliRunner().invoke(cli_app, [*native, "--password-stdin"], input=f"{password}\n")
    assert made.exit_code == 0, made.output


def test_python_example_runs() -> None:
    blocks = python_blocks(SECTION)
    assert len(blocks) == 1
    exec(compile(blocks[0], "README.md", "exec"), {})  # noqa: S102
