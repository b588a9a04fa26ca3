"""The agent SDK (sync and async) and ``ath`` (runner and subprocesses) through a gateway."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from athkit.agent import (
    AsyncATHClient,
    ATHClient,
    ATHClientError,
    authorize_interactive,
    authorize_interactive_async,
    generate_key,
    load_key,
    serve_identity,
    serve_identity_async,
)
from athkit.cli import app
from athkit.protocol import GatewayDiscovery
from tests.integration.agent.conftest import DEVELOPER, MESSAGES, GatewayStack

ATH = str(Path(sys.executable).with_name("ath"))


def _code(call: Any) -> tuple[str, int | None]:
    with pytest.raises(ATHClientError) as info:
        call()
    return info.value.code, info.value.status


def test_sync_client_full_flow_through_the_proxy(gateway: GatewayStack) -> None:
    key = generate_key()
    with (
        serve_identity(key, name="Mail helper", developer=DEVELOPER) as agent_id,
        ATHClient(gateway.url, agent_id=agent_id, private_key=key) as client,
    ):
        found = client.discover()
        assert isinstance(found, GatewayDiscovery) and client.mode == "gateway"
        assert {p.provider_id for p in found.supported_providers} == {"mail", "cal"}

        registration = client.register(
            {"mail": ["mail:read", "mail:send"], "cal": ["cal:read"]}, developer=DEVELOPER
        )
        assert registration.agent_status == "approved"
        assert client.status().client_id == registration.client_id

        token = authorize_interactive(
            client, "mail", ["mail:read", "mail:send"], opener=gateway.opener(scopes=["mail:read"])
        )
        assert token.effective_scopes == ["mail:read"]
        assert token.provider_id == "mail"

        response = client.proxy("mail", "GET", "/messages")
        assert response.status_code == 200
        assert response.json() == {"user": "user-alice", "messages": MESSAGES}
        assert _code(lambda: client.proxy("mail", "POST", "/messages", json={"to": "bob"})) == (
            "SCOPE_NOT_APPROVED",
            403,
        )
        assert _code(lambda: client.request("GET", "/messages")) == ("WRONG_MODE", None)

        # The mail token presented on the calendar's proxy path.
        mail_token = client.token("mail")
        assert mail_token is not None
        client.store.save_token(gateway.url, mail_token.model_copy(update={"provider_id": "cal"}))
        assert _code(lambda: client.proxy("cal", "GET", "/events")) == ("PROVIDER_MISMATCH", 403)

        client.revoke("mail")
        client.store.save_token(gateway.url, mail_token)
        assert _code(lambda: client.proxy("mail", "GET", "/messages")) == ("TOKEN_REVOKED", 401)


async def test_async_client_full_flow_through_the_proxy(gateway: GatewayStack) -> None:
    key = generate_key()
    async with (
        serve_identity_async(key, name="Async mail", developer=DEVELOPER) as agent_id,
        AsyncATHClient(gateway.url, agent_id=agent_id, private_key=key, mode="gateway") as client,
    ):
        await client.register({"mail": ["mail:read", "mail:send"]}, developer=DEVELOPER)
        with pytest.raises(ATHClientError) as again:
            await client.register({"mail": ["mail:read"]}, developer=DEVELOPER)
        assert again.value.code == "AGENT_ALREADY_REGISTERED"
        with pytest.raises(ATHClientError) as unapproved:
            await client.authorize("cal", ["cal:read"])
        assert unapproved.value.code == "PROVIDER_NOT_APPROVED"

        token = await authorize_interactive_async(
            client, "mail", ["mail:read", "mail:send"], opener=gateway.opener()
        )
        assert token.effective_scopes == ["mail:read", "mail:send"]
        sent = await client.proxy("mail", "POST", "/messages", json={"to": "bob"})
        assert (sent.status_code, sent.json()) == (201, {"sent": {"to": "bob"}, "by": "user-alice"})
        await client.revoke("mail")
        assert client.token("mail") is None


def _ath(env: dict[str, str], *args: str, code: int = 0) -> Any:
    run = subprocess.run(
        [ATH, *args, "--json"], env=env, capture_output=True, text=True, timeout=90, check=False
    )
    assert run.returncode == code, f"{args}: {run.stdout}\n{run.stderr}"
    assert "Traceback" not in run.stderr
    return json.loads(run.stdout)


def test_cli_through_the_gateway(
    gateway: GatewayStack,
    browser_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = browser_env
    key_path = Path(_ath(env, "keygen")["key_path"])
    with serve_identity(load_key(key_path), name="CLI mail", developer=DEVELOPER) as agent_id:
        _ath(env, "config", "set", "agent-id", agent_id)
        _ath(env, "config", "set-server", "gw", gateway.url, "--mode", "gateway")
        assert _ath(env, "discover")["discovery"]["gateway_id"] == "test-gateway"
        registered = _ath(env, "register", "-p", "mail=mail:read,mail:send", "-p", "cal=cal:read")
        assert registered["agent_status"] == "approved"

        # Separate processes: authorize (its $BROWSER completes the consent), then call.
        token = _ath(env, "authorize", "mail", "--scope", "mail:read")
        assert token["effective_scopes"] == ["mail:read"]
        call = _ath(env, "call", "GET", "/messages", "--provider", "mail")
        assert call["body"] == {"user": "user-alice", "messages": MESSAGES}
        refused = _ath(
            env, "call", "POST", "/messages", "-p", "mail", "-d", '{"to": "bob"}', code=3
        )
        assert refused["error"]["code"] == "SCOPE_NOT_APPROVED"

        # The same store, read in-process by typer's runner.
        for name in ("XDG_CONFIG_HOME", "BROWSER"):
            monkeypatch.setenv(name, env[name])
        monkeypatch.delenv("ATH_CONFIG_DIR", raising=False)
        runner = CliRunner()
        cal = runner.invoke(
            app,
            ["authorize", "cal", "--scope", "cal:read", "--json"],
            obj={"opener": gateway.opener()},
        )
        assert cal.exit_code == 0, cal.output
        events = runner.invoke(app, ["call", "GET", "/events", "-p", "cal", "--json"])
        assert json.loads(events.stdout)["body"] == {"user": "user-alice", "events": []}
        listed = runner.invoke(app, ["token", "--json"])
        assert sorted(t["provider_id"] for t in json.loads(listed.stdout)["tokens"]) == [
            "cal",
            "mail",
        ]

        _ath(env, "revoke", "mail")
        gone = _ath(env, "call", "GET", "/messages", "-p", "mail", code=3)
        assert gone["error"]["code"] == "NOT_AUTHORIZED"
