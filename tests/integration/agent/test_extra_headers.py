"""A server that wants a header of its own on every ATH call (as the reference gateway wants a
user session header): the SDK's ``headers=`` and ``ath --header`` / ``ath config set-server
--header`` reach it on every request, and never leave for another origin."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from athkit.agent import (
    ATHClient,
    ATHClientError,
    authorize_interactive,
    generate_key,
    save_key,
    serve_identity,
)
from athkit.cli import app
from tests.integration.agent.conftest import DEVELOPER, NativeStack, run_native

HEADER, VALUE = "X-Gateway-Session", "session-4f1c2d"


class RequireHeader:
    """ASGI wrapper: every agent request must carry ``HEADER: VALUE``, else 401 (all counted).

    The browser's steps (consent entry, OAuth callback) are the user's, not the agent's."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.refused: list[str] = []
        self.seen: list[str] = []
        self._lock = threading.Lock()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = dict(scope["headers"]).get(HEADER.lower().encode())
        with self._lock:
            (self.seen if sent == VALUE.encode() else self.refused).append(scope["path"])
        browser = scope["path"].startswith("/ath/consent") or scope["path"] == "/ath/callback"
        if sent != VALUE.encode() and not browser:
            body = json.dumps({"code": "INVALID_REQUEST", "message": f"{HEADER} needed"}).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 401,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


@pytest.fixture(scope="module")
def guarded() -> Iterator[tuple[NativeStack, RequireHeader]]:
    holder: list[RequireHeader] = []

    def wrap(inner: Any) -> RequireHeader:
        holder.append(RequireHeader(inner))
        return holder[0]

    with run_native(wrap) as stack:
        yield stack, holder[0]


def test_sdk_sends_default_headers_on_every_ath_call(
    guarded: tuple[NativeStack, RequireHeader],
) -> None:
    stack, guard = guarded
    key = generate_key()
    with serve_identity(key, name="Header agent", developer=DEVELOPER) as agent_id:
        with ATHClient(stack.url, agent_id=agent_id, private_key=key) as bare:
            with pytest.raises(ATHClientError) as info:
                bare.discover()
            assert info.value.status == 401 and HEADER in info.value.message
        refused_before = len(guard.refused)
        with ATHClient(
            stack.url, agent_id=agent_id, private_key=key, headers={HEADER: VALUE}
        ) as client:
            client.discover()
            client.register({stack.app_id: ["products:read"]}, developer=DEVELOPER)
            client.status()
            authorize_interactive(client, None, ["products:read"], opener=stack.opener())
            assert client.request("GET", "/products").status_code == 200
            client.revoke()
    # Only the browser's own consent step came without the header (a browser has its session).
    later = guard.refused[refused_before:]
    assert all(path.startswith("/ath/consent") or path == "/ath/callback" for path in later)
    for path in ("/.well-known/ath-app.json", "/ath/agents/register", "/ath/token", "/ath/revoke"):
        assert path in guard.seen


def test_default_headers_stay_on_the_servers_origin() -> None:
    key = generate_key()
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(404, json={"code": "INVALID_REQUEST", "message": "no"})

    http = httpx.Client(transport=httpx.MockTransport(handler))
    client = ATHClient(
        "http://127.0.0.1:9/base",
        agent_id="http://127.0.0.1:9/agent.json",
        private_key=key,
        headers={HEADER: VALUE},
        http_client=http,
    )
    core = client._core
    assert core.default_headers_for("http://127.0.0.1:9/ath/token") == {HEADER: VALUE}
    for other in ("http://127.0.0.1:10/api", "https://127.0.0.1:9/api", "http://localhost:9/"):
        assert core.default_headers_for(other) == {}
    with pytest.raises(ATHClientError):
        client.discover()
    assert seen and all(r.headers[HEADER] == VALUE for r in seen)
    http.close()


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer x"},
        {"X-ATH-Agent-ID": "https://a.example/"},
        {"Host": "evil.example"},
        {"Bad Name": "x"},
        {"X-Ok": "line\r\nInjected: yes"},
    ],
)
def test_headers_the_protocol_sets_are_refused(headers: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        ATHClient(
            "http://127.0.0.1:9",
            agent_id="http://127.0.0.1:9/agent.json",
            private_key=generate_key(),
            headers=headers,
        )


def test_ath_header_option_and_config_entry(
    guarded: tuple[NativeStack, RequireHeader], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack, _ = guarded
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    for name in ("ATH_CONFIG_DIR", "ATH_SERVER", "ATH_AGENT_ID", "ATH_KEY"):
        monkeypatch.delenv(name, raising=False)
    runner = CliRunner()
    key = generate_key()
    key_path = tmp_path / "agent.pem"
    save_key(key, key_path)
    with serve_identity(key, name="CLI header agent", developer=DEVELOPER) as agent_id:
        common = ["--agent-id", agent_id, "--key", str(key_path), "--json"]
        refused = runner.invoke(app, ["discover", "--server", stack.url, "--json"])
        assert refused.exit_code != 0, refused.output
        found = runner.invoke(
            app, ["discover", "--server", stack.url, "--header", f"{HEADER}: {VALUE}", "--json"]
        )
        assert found.exit_code == 0, found.output
        assert json.loads(found.stdout)["discovery"]["app_id"] == stack.app_id

        # Saved with the server: every later command sends it.
        saved = runner.invoke(
            app,
            ["config", "set-server", "guarded", stack.url, "-H", f"{HEADER}: {VALUE}", "--json"],
        )
        assert saved.exit_code == 0, saved.output
        shown = json.loads(saved.stdout)["servers"]["guarded"]
        assert shown["headers"] == [HEADER] and VALUE not in saved.stdout
        registered = runner.invoke(
            app,
            [
                "register",
                "--scope",
                "products:read",
                "--developer-name",
                "Acme Agents",
                "--developer-id",
                "acme",
                "--server",
                "guarded",
                *common,
            ],
        )
        assert registered.exit_code == 0, registered.output
        status = runner.invoke(app, ["status", "--server", "guarded", *common])
        assert status.exit_code == 0, status.output
        assert json.loads(status.stdout)["agent_status"] == "approved"
        bad = runner.invoke(app, ["status", "--server", "guarded", "-H", "Authorization: x"])
        assert bad.exit_code != 0
