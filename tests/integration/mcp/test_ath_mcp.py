"""``ath mcp`` as a real stdio subprocess, driven by the official ``mcp`` SDK's stdio client."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import anyio
import httpx
from mcp import Client, StdioServerParameters

from athkit.agent import (
    ATHClient,
    CredentialStore,
    authorize_interactive,
    generate_key,
    save_key,
    serve_identity,
)
from athkit.testing import drive_consent
from tests.integration.agent.conftest import DEVELOPER, PASSWORD, PRODUCTS, USER
from tests.integration.mcp.conftest import McpNative

ATH = str(Path(sys.executable).with_name("ath"))


def _text(result: object) -> str:
    content = result.content  # type: ignore[attr-defined]
    return "".join(getattr(block, "text", "") for block in content)


async def test_ath_mcp_over_stdio(mcp_native: McpNative, tmp_path: Path) -> None:
    key = generate_key()
    key_file = tmp_path / "agent.pem"
    save_key(key, key_file)
    config = tmp_path / "config"
    with serve_identity(key, name="Desktop helper", developer=DEVELOPER) as agent_id:
        # The person set the agent up once with `ath register` / `ath authorize`: the token is
        # in the shared credential file, with products:read only (cart:write unticked).
        with ATHClient(
            mcp_native.url, agent_id=agent_id, private_key=key, store=CredentialStore(config)
        ) as setup:
            setup.register(
                {mcp_native.app_id: ["products:read", "cart:write"]}, developer=DEVELOPER
            )
            authorize_interactive(
                setup,
                None,
                ["products:read", "cart:write"],
                opener=mcp_native.opener(scopes=["products:read"]),
            )
        params = StdioServerParameters(
            command=ATH,
            args=[
                "mcp",
                "--server", mcp_native.url,
                "--agent-id", agent_id,
                "--key", str(key_file),
                "--route", "list_products GET /products products:read",
                "--route", "add_to_cart POST /cart cart:write",
                "--mcp", "/mcp",
                "--scope", "products:read,cart:write",
            ],
            env={"ATH_CONFIG_DIR": str(config), "PATH": "/usr/bin:/bin", "NO_COLOR": "1"},
        )  # fmt: skip
        async with Client(params, read_timeout_seconds=30) as client:
            names = sorted(t.name for t in (await client.list_tools()).tools)
            # Routes and upstream tools the token allows; not add_to_cart (no cart:write).
            assert names == [
                "ath_authorize",
                "ath_status",
                "list_products",
                "search_products",
                "stream_report",
                "whoami",
            ]
            listed = await client.call_tool("list_products", {})
            assert not listed.is_error
            status_line, body = _text(listed).split("\n", 1)
            assert status_line == "HTTP 200" and json.loads(body) == {"products": PRODUCTS}

            found = await client.call_tool("search_products", {"query": "kettle"})
            assert found.structured_content == {"products": [{"id": "p2", "name": "Kettle"}]}

            refused = await client.call_tool("add_to_cart", {"body": {"p1": 1}})
            assert refused.is_error and _text(refused).startswith("SCOPE_NOT_APPROVED")

            # ath_authorize answers the consent link; the person opens it and allows both.
            answer = await client.call_tool("ath_authorize", {})
            link = next(w for w in _text(answer).split() if w.startswith("http"))
            assert link.startswith(mcp_native.url)
            with httpx.Client(timeout=20) as browser:
                landed = drive_consent(browser, link, username=USER, password=PASSWORD)
            assert not isinstance(landed, str) and landed.status_code == 200

            for _ in range(50):
                status = json.loads(_text(await client.call_tool("ath_status", {})))
                if status["authorization"] != "waiting for the person's consent":
                    break
                await anyio.sleep(0.1)
            assert status["token"]["scopes"] == ["products:read", "cart:write"], status
            assert status["agent_id"] == agent_id and status["mode"] == "native"
            added = await client.call_tool("add_to_cart", {"body": {"p1": 1}})
            assert _text(added).startswith("HTTP 201"), _text(added)


def test_bad_options_are_usage_errors(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from athkit.cli import app

    env = {"ATH_CONFIG_DIR": str(tmp_path), "NO_COLOR": "1"}
    for args, text in (
        (["--route", "list_products /products"], "expected 'NAME METHOD /path"),
        (["--route", "ath_status GET /x"], "the bridge's own tool"),
        (["--mcp", "mcp"], "--mcp takes a path"),
        ([], "no server given"),
    ):
        result = CliRunner().invoke(app, ["mcp", "--server", "http://127.0.0.1:9", *args], env=env)
        if not args:
            result = CliRunner().invoke(app, ["mcp"], env=env)
        assert result.exit_code == 2, result.output
        assert text in result.output, result.output
