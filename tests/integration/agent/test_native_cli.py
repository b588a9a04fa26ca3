"""``ath`` through the whole handshake with a native service: in-process (typer's runner) and
as real subprocesses, each a fresh process reading the credential store the last one wrote."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from athkit.agent import load_key, serve_identity
from athkit.cli import app
from tests.integration.agent.conftest import DEVELOPER, PRODUCTS, NativeStack
from tests.subprocs import default_sigint

ATH = str(Path(sys.executable).with_name("ath"))


def _invoke(runner: CliRunner, args: list[str], code: int = 0, **kw: Any) -> Any:
    result = runner.invoke(app, [*args, "--json"], **kw)
    assert result.exit_code == code, f"{args}: {result.output}"
    return json.loads(result.stdout)


def test_cli_in_process_full_flow(
    native: NativeStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    for name in ("ATH_CONFIG_DIR", "ATH_SERVER", "ATH_AGENT_ID", "ATH_KEY"):
        monkeypatch.delenv(name, raising=False)
    runner = CliRunner()
    key_path = Path(_invoke(runner, ["keygen"])["key_path"])
    with serve_identity(load_key(key_path), name="CLI agent", developer=DEVELOPER) as agent_id:
        _invoke(runner, ["config", "set", "agent-id", agent_id])
        _invoke(runner, ["config", "set-server", "shop", native.url, "--default"])

        found = _invoke(runner, ["discover"])
        assert found["mode"] == "native" and found["discovery"]["app_id"] == native.app_id
        registered = _invoke(runner, ["register", "--scope", "products:read,cart:write"])
        assert registered["agent_status"] == "approved"
        assert "client_secret" not in registered
        assert _invoke(runner, ["status"])["agent_status"] == "approved"

        token = _invoke(
            runner,
            ["authorize", "--scope", "products:read", "--scope", "cart:write"],
            obj={"opener": native.opener(scopes=["products:read"])},
        )
        assert token["effective_scopes"] == ["products:read"]
        assert "access_token" not in token

        listed = _invoke(runner, ["token"])
        assert [t["provider_id"] for t in listed["tokens"]] == [native.app_id]
        call = _invoke(runner, ["call", "GET", "/products"])
        assert (call["status"], call["body"]) == (200, {"products": PRODUCTS})
        refused = _invoke(runner, ["call", "POST", "/cart", "--data", '{"p1": 1}'], code=3)
        assert refused["error"]["code"] == "SCOPE_NOT_APPROVED"

        assert _invoke(runner, ["revoke"])["revoked"] is True
        after = _invoke(runner, ["call", "GET", "/products"], code=3)
        assert after["error"]["code"] == "NOT_AUTHORIZED"
        again = _invoke(runner, ["register", "--scope", "products:read"], code=3)
        assert again["error"]["code"] == "AGENT_ALREADY_REGISTERED"


def _ath(env: dict[str, str], *args: str, code: int = 0) -> Any:
    run = subprocess.run(
        [ATH, *args, "--json"], env=env, capture_output=True, text=True, timeout=90, check=False
    )
    assert run.returncode == code, f"{args}: {run.stdout}\n{run.stderr}"
    assert "Traceback" not in run.stderr
    return json.loads(run.stdout)


def test_cli_subprocesses_full_flow_and_store_survives_restarts(
    native: NativeStack, browser_env: dict[str, str]
) -> None:
    env = browser_env
    key_path = Path(_ath(env, "keygen")["key_path"])
    with serve_identity(load_key(key_path), name="CLI agent", developer=DEVELOPER) as agent_id:
        _ath(env, "config", "set", "agent-id", agent_id)
        _ath(env, "config", "set-server", "shop", native.url)
        registered = _ath(env, "register", "--scope", "products:read,cart:write")
        assert registered["agent_status"] == "approved"
        creds = Path(env["XDG_CONFIG_HOME"]) / "athkit" / "credentials.json"
        assert oct(creds.stat().st_mode & 0o777) == "0o600"
        assert registered["credentials_stored_in"] == str(creds)

        # A new process finds the client credentials; $BROWSER completes the consent.
        token = _ath(env, "authorize", "--scope", "products:read")
        assert token["effective_scopes"] == ["products:read"]

        # And another finds the token.
        call = _ath(env, "call", "GET", "/products")
        assert call["body"] == {"products": PRODUCTS}
        raw = subprocess.run(
            [ATH, "token", native.app_id, "--show"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout.strip()
        stored = json.loads(creds.read_text())
        held = stored["servers"][native.url]["tokens"][agent_id][native.app_id]
        assert raw == held["access_token"]

        # Finish by hand: --no-wait prints the URL; the completion page shows the code.
        started = _ath(env, "authorize", "--scope", "products:read", "--no-wait")
        code = _completion_code(native, started["authorization_url"])
        finished = _ath(env, "authorize", "--session", started["ath_session_id"], "--code", code)
        assert finished["effective_scopes"] == ["products:read"]

        _ath(env, "revoke")
        gone = _ath(env, "call", "GET", "/products", code=3)
        assert gone["error"]["code"] == "NOT_AUTHORIZED"


def _completion_code(native: NativeStack, url: str) -> str:
    import re

    import httpx

    from athkit.testing import drive_consent
    from tests.integration.agent.conftest import PASSWORD, USER

    with httpx.Client(timeout=20) as http:
        page = drive_consent(http, url, username=USER, password=PASSWORD)
    assert not isinstance(page, str) and page.status_code == 200, page
    match = re.search(r"<code[^>]*>([^<]+)</code>", page.text)
    assert match, page.text
    return match.group(1).strip()


def test_cli_network_failure_and_user_errors(browser_env: dict[str, str]) -> None:
    from athkit.testing import free_port

    env = browser_env
    closed = f"http://127.0.0.1:{free_port()}"
    assert _ath(env, "discover", "--server", closed, code=4)["error"]["code"] == "NETWORK_ERROR"
    assert _ath(env, "register", "--server", closed, code=2)["error"]["code"] == "USAGE_ERROR"


def test_ctrl_c_while_waiting_for_the_browser(
    native: NativeStack, browser_env: dict[str, str]
) -> None:
    env = {k: v for k, v in browser_env.items() if k != "BROWSER"}
    key_path = Path(_ath(env, "keygen")["key_path"])
    with serve_identity(load_key(key_path), name="Impatient", developer=DEVELOPER) as agent_id:
        _ath(env, "config", "set", "agent-id", agent_id)
        _ath(env, "config", "set-server", "shop", native.url)
        _ath(env, "register", "--scope", "products:read")
        proc = subprocess.Popen(
            [ATH, "authorize", "--scope", "products:read", "--no-browser"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=default_sigint,
        )
        assert proc.stderr is not None
        for line in proc.stderr:
            if line.strip().startswith(native.url):
                break  # the URL is shown; ath now waits for the browser
        proc.send_signal(signal.SIGINT)
        _, rest = proc.communicate(timeout=20)
        assert proc.returncode == 130
        assert "INTERRUPTED" in rest and "Traceback" not in rest
        timed_out = _ath(
            env, "authorize", "--scope", "products:read", "--no-browser", "--timeout", "0.5", code=3
        )
        assert timed_out["error"]["code"] == "AUTHORIZATION_TIMEOUT"
