"""The README's "Use with MCP" and "Use with LangChain" examples, run as written."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client, StdioServerParameters

from athkit.agent import (
    AgentConfig,
    ATHClient,
    CredentialStore,
    authorize_interactive,
    generate_key,
    save_key,
    serve_identity,
)
from athkit.testing import serve_in_thread
from tests.docs import code_blocks, python_blocks
from tests.integration.agent.conftest import DEVELOPER, PASSWORD, PRODUCTS, USER
from tests.integration.mcp.conftest import McpNative

BIN = Path(sys.executable).parent
DRIVER = Path(__file__).resolve().parents[1] / "agent" / "_consent_browser.py"


@pytest.fixture
def browser_env(tmp_path: Path) -> dict[str, str]:
    """A subprocess environment whose "browser" completes the real consent forms."""
    script = tmp_path / "consent-browser"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{DRIVER}" "$1"\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    env = {
        **os.environ,
        "BROWSER": str(script),
        "ATH_TEST_USER": USER,
        "ATH_TEST_PASSWORD": PASSWORD,
        "ATH_CONFIG_DIR": str(tmp_path / "config"),
        "NO_COLOR": "1",
    }
    for name in ("ATH_SERVER", "ATH_AGENT_ID", "ATH_KEY", "DISPLAY"):
        env.pop(name, None)
    return env


@pytest.fixture
def set_up_agent(mcp_native: McpNative, tmp_path: Path) -> Iterator[dict[str, str]]:
    """An agent set up as `ath config` / `ath register` / `ath authorize` leave it: key file,
    agent id and a products:read token in the credential store. Yields its environment."""
    key = generate_key()
    config = tmp_path / "agent-config"
    key_file = tmp_path / "agent.pem"
    save_key(key, key_file)
    with serve_identity(key, name="Configured helper", developer=DEVELOPER) as agent_id:
        AgentConfig(agent_id=agent_id, key_path=str(key_file)).save(config)
        with ATHClient(
            mcp_native.url, agent_id=agent_id, private_key=key, store=CredentialStore(config)
        ) as client:
            client.register({mcp_native.app_id: ["products:read"]}, developer=DEVELOPER)
            authorize_interactive(client, None, ["products:read"], opener=mcp_native.opener())
        yield {
            "ATH_CONFIG_DIR": str(config),
            "ATH_AGENT_ID": agent_id,
            "ATH_KEY": str(key_file),
            "PATH": f"{BIN}:/usr/bin:/bin",
        }


def test_mcp_server_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # sqlite:///notes-ath.db lands here
    server_block = python_blocks("Use with MCP")[0]
    namespace: dict[str, Any] = {}
    exec(compile(server_block, "README.md#use-with-mcp", "exec"), namespace)  # noqa: S102
    assert namespace["ath"].scope_map.to_config() == {
        "notes:read": ["list_notes"],
        "notes:write": ["add_note"],
    }
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    with serve_in_thread(namespace["app"]) as served, httpx.Client() as http:
        assert http.get(f"{served.url}/.well-known/ath-app.json").json()["app_id"] == "notes"
        refused = http.post(
            f"{served.url}/mcp",
            json=call,
            headers={"Accept": "application/json, text/event-stream"},
        )
    assert refused.status_code == 401
    assert refused.json()["error"]["data"]["code"] == "TOKEN_INVALID"
    assert (tmp_path / "notes-ath.db").exists()


def test_mcp_agent_example(mcp_native: McpNative, browser_env: dict[str, str]) -> None:
    agent_block = python_blocks("Use with MCP")[1]
    run = subprocess.run(
        [sys.executable, "-c", agent_block],
        env={**browser_env, "ATH_SERVICE": mcp_native.url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == "effective scopes: ['products:read']"
    assert lines[1] == "tools: ['search_products', 'stream_report', 'whoami']"
    assert lines[2] == "found: {'products': [{'id': 'p1', 'name': 'Teapot'}]}"
    assert lines[3].startswith("refused: SCOPE_NOT_APPROVED (HTTP 403)")


def test_gateway_mcp_config_example() -> None:
    (block,) = code_blocks("Use with MCP", "toml")
    from athkit.gateway._mcp import McpGate
    from athkit.gateway._schema import ProviderConfig
    from athkit.protocol import McpTarget

    provider = ProviderConfig.model_validate(tomllib.loads(block)["providers"]["shop"])
    assert provider.mcp is not None
    gate = McpGate.from_config(provider.mcp)
    assert gate.covers("/mcp")
    assert gate.scopes.allowed(McpTarget("resource", "shop://products/7"), ["products:read"])
    assert not gate.scopes.allowed(McpTarget("tool", "place_order"), ["cart:write"])


async def test_desktop_config_example(mcp_native: McpNative, set_up_agent: dict[str, str]) -> None:
    (block,) = code_blocks("Use with MCP", "json")
    entry = json.loads(block)["mcpServers"]["shop"]
    # As written, except that ATH_SERVER points at the test's service rather than port 8000.
    env = {**entry["env"], **set_up_agent, "ATH_SERVER": mcp_native.url}
    params = StdioServerParameters(command=str(BIN / entry["command"]), args=entry["args"], env=env)
    async with Client(params, read_timeout_seconds=30) as client:
        names = sorted(t.name for t in (await client.list_tools()).tools)
        assert names == [
            "ath_authorize",
            "ath_status",
            "list_products",
            "search_products",
            "stream_report",
            "whoami",
        ]
        listed = await client.call_tool("list_products", {})
        text = "".join(getattr(block, "text", "") for block in listed.content)
        assert text.startswith("HTTP 200") and "Teapot" in text


def test_langchain_example(mcp_native: McpNative, set_up_agent: dict[str, str]) -> None:
    (block,) = python_blocks("Use with LangChain")
    run = subprocess.run(
        [sys.executable, "-c", block],
        env={**os.environ, **set_up_agent, "ATH_SERVER": mcp_native.url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {"products": PRODUCTS}
