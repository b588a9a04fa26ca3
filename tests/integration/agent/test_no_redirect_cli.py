"""``ath authorize --no-wait``: the user finishes on the completion page, and the agent finishes
with the command that page shows — or with ``--session`` alone (no redirect, so no code needed,
ATH §4.4)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from athkit.agent import generate_key, save_key, serve_identity
from athkit.cli import app
from athkit.testing import drive_consent
from tests.integration.agent.conftest import DEVELOPER, PASSWORD, USER, NativeStack


def test_no_wait_then_finish_with_or_without_the_code(
    native: NativeStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    for name in ("ATH_CONFIG_DIR", "ATH_SERVER", "ATH_AGENT_ID", "ATH_KEY"):
        monkeypatch.delenv(name, raising=False)
    runner = CliRunner()
    key = generate_key()
    key_path = tmp_path / "agent.pem"
    save_key(key, key_path)

    def ath(*args: str) -> dict[str, object]:
        result = runner.invoke(app, [*args, "--server", native.url, *common, "--json"])
        assert result.exit_code == 0, result.output
        return dict(json.loads(result.stdout))

    with serve_identity(key, name="No-redirect agent", developer=DEVELOPER) as agent_id:
        common = ["--agent-id", agent_id, "--key", str(key_path)]
        ath(
            "register",
            "--scope",
            "products:read",
            "--developer-name",
            "Acme",
            "--developer-id",
            "a",
        )
        for with_code in (True, False):
            started = ath("authorize", "--scope", "products:read", "--no-wait")
            with httpx.Client(timeout=20) as browser:
                page = drive_consent(
                    browser, str(started["authorization_url"]), username=USER, password=PASSWORD
                )
            assert isinstance(page, httpx.Response) and page.status_code == 200
            shown = re.search(r'id="cli-command">([^<]+)</pre>', page.text)
            assert shown is not None, page.text
            command = shown.group(1).split()
            assert command[:4] == ["ath", "authorize", "--server", native.url]
            session = command[command.index("--session") + 1]
            code = command[command.index("--code") + 1]
            assert session == started["ath_session_id"]
            finish = ["--session", session] + (["--code", code] if with_code else [])
            token = ath("authorize", *finish)
            assert token["effective_scopes"] == ["products:read"]
