"""The developer users are shown is never the Unix login; a mismatch between the published
identity document and the registration is warned about."""

from __future__ import annotations

import getpass
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from athkit.agent import build_identity_document, generate_key
from athkit.cli import app
from athkit.cli._options import warn_developer_mismatch
from athkit.testing import serve_in_thread

AGENT = "http://127.0.0.1:7/.well-known/agent.json"


@pytest.fixture
def cfg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("ATH_CONFIG_DIR", str(tmp_path))
    yield tmp_path


def test_identity_never_defaults_to_the_login(cfg: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["keygen"]).exit_code == 0
    result = runner.invoke(app, ["identity", "--agent-id", AGENT, "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["developer"] == {"name": "127.0.0.1", "id": "127.0.0.1"}
    assert getpass.getuser() not in json.dumps(document["developer"])
    assert "no developer set" in result.stderr
    for setting, value in (("developer-name", "Acme Agents"), ("developer-id", "acme")):
        assert runner.invoke(app, ["config", "set", setting, value]).exit_code == 0
    named = json.loads(runner.invoke(app, ["identity", "--agent-id", AGENT, "--json"]).stdout)
    assert named["developer"] == {"name": "Acme Agents", "id": "acme"}


def test_a_developer_mismatch_is_warned(capsys: pytest.CaptureFixture[str]) -> None:
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    document = build_identity_document(
        generate_key(), agent_id=AGENT, name="Bot", developer={"name": "Acme", "id": "acme"}
    ).dump()
    app_ = Starlette(routes=[Route("/agent.json", lambda _r: JSONResponse(document))])
    with serve_in_thread(app_) as host:
        warn_developer_mismatch(f"{host.url}/agent.json", {"name": "Acme", "id": "acme"})
        assert "Warning" not in capsys.readouterr().err
        warn_developer_mismatch(f"{host.url}/agent.json", {"name": "Other", "id": "other"})
        warned = capsys.readouterr().err
    assert "names developer 'Acme' (acme)" in warned and "'Other' (other)" in warned
