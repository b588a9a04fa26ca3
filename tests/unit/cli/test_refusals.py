"""Refusals say what to do next: the hint under each error, the full URL of a 404, a --server
without a scheme, revoke() in gateway mode without a provider, and ``ath token`` after the server
refused the stored token."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from athkit.agent import (
    NOT_AUTHORIZED,
    PROVIDER_REQUIRED,
    AgentConfig,
    ATHClient,
    ATHClientError,
    CredentialStore,
    MemoryCredentialStore,
    generate_key,
)
from athkit.agent._core import error_from_response
from athkit.agent._store import StoredToken
from athkit.cli import app
from athkit.cli._agent_output import next_step

SERVER = "http://127.0.0.1:9"  # never contacted: every case is decided before any request
AGENT = "http://127.0.0.1:9/.well-known/agent.json"


def test_hints_name_the_scope_and_the_command() -> None:
    violation = ATHClientError(
        "SCOPE_NOT_APPROVED",
        "the token does not allow POST /orders",
        status=403,
        details={"reason": "scope_violation", "required_scopes": ["orders:write"]},
    )
    hint = next_step(violation)
    assert hint is not None and "orders:write" in hint and "ath authorize" in hint
    typo = ATHClientError(
        "SCOPE_NOT_APPROVED",
        "x",
        details={"reason": "scope_not_approved", "unknown_scopes": ["prodcts:read"]},
    )
    assert "prodcts:read" in (next_step(typo) or "") and "ath discover" in (next_step(typo) or "")
    unapproved = ATHClientError("SCOPE_NOT_APPROVED", "x", details={"reason": "scope_not_approved"})
    assert "ath status" in (next_step(unapproved) or "")
    assert "ath authorize" in (next_step(ATHClientError("TOKEN_REVOKED", "x")) or "")


def test_a_404_names_the_url_tried() -> None:
    request = httpx.Request("GET", "http://127.0.0.1:8000/ath/agents/abc")
    answer = httpx.Response(
        404, json={"code": "INVALID_REQUEST", "message": "no such endpoint"}, request=request
    )
    error = error_from_response(answer)
    assert "GET http://127.0.0.1:8000/ath/agents/abc" in error.message


def test_server_without_scheme_gets_a_hint() -> None:
    with pytest.raises(ValueError, match=r"--server http://127\.0\.0\.1:8000"):
        AgentConfig().resolve_server("127.0.0.1:8000")
    with pytest.raises(ValueError, match="ath config set-server shop URL"):
        AgentConfig().resolve_server("shop")


def _token(provider: str, **extra: object) -> StoredToken:
    return StoredToken(
        agent_id=AGENT,
        provider_id=provider,
        access_token=f"ath_at_{provider}",
        effective_scopes=["mail:read"],
        expires_at=time.time() + 600,
        **extra,  # type: ignore[arg-type]
    )


def test_gateway_revoke_without_provider_is_an_ath_client_error() -> None:
    store = MemoryCredentialStore()
    with ATHClient(
        SERVER, agent_id=AGENT, private_key=generate_key(), mode="gateway", store=store
    ) as c:
        with pytest.raises(ATHClientError) as none:
            c.revoke()
        assert none.value.code == NOT_AUTHORIZED
        store.save_token(SERVER, _token("mail"))
        store.save_token(SERVER, _token("calendar"))
        with pytest.raises(ATHClientError) as several:
            c.revoke()
        assert several.value.code == PROVIDER_REQUIRED
        assert "calendar, mail" in several.value.message


@pytest.fixture
def cfg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("ATH_CONFIG_DIR", str(tmp_path))
    yield tmp_path


def test_ath_token_says_a_refused_token_is_dead(cfg: Path) -> None:
    store = CredentialStore(cfg)
    store.save_token(SERVER, _token("mail", refused="TOKEN_REVOKED"))
    runner = CliRunner()
    listed = runner.invoke(app, ["token", "--server", SERVER, "--agent-id", AGENT])
    assert listed.exit_code == 0, listed.output
    assert "refused by the server (TOKEN_REVOKED)" in listed.output
    assert "ath authorize" in listed.output
    as_json = runner.invoke(app, ["token", "--server", SERVER, "--agent-id", AGENT, "--json"])
    assert json.loads(as_json.stdout)["tokens"][0]["refused"] == "TOKEN_REVOKED"
    shown = runner.invoke(app, ["token", "mail", "--show", "--server", SERVER, "--agent-id", AGENT])
    assert shown.exit_code == 3
    assert "TOKEN_REVOKED" in shown.output and "ath authorize mail" in shown.output
