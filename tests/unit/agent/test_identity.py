"""Keys and the identity document, served over real HTTP on loopback."""

from __future__ import annotations

import stat
from pathlib import Path

import httpx
import pytest

from athkit.agent import (
    build_identity_document,
    generate_key,
    load_key,
    save_key,
    serve_identity,
    serve_identity_async,
)
from athkit.protocol import (
    IdentityDocument,
    create_attestation,
    load_public_key,
    public_key_to_pem,
    verify_attestation,
)

DEV = {"name": "Acme Agents", "id": "acme"}


def test_saved_key_is_private_and_loads_back(tmp_path: Path) -> None:
    key = generate_key()
    path = save_key(key, tmp_path / "keys" / "agent.pem")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert public_key_to_pem(load_key(path)) == public_key_to_pem(key)


def test_load_key_names_the_problem(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="ath keygen"):
        load_key(tmp_path / "missing.pem")
    (tmp_path / "bad.pem").write_text("not a key")
    with pytest.raises(ValueError, match="not a PEM private key"):
        load_key(tmp_path / "bad.pem")


def test_identity_document_carries_the_public_key() -> None:
    key = generate_key()
    doc = build_identity_document(
        key,
        agent_id="https://agent.example/.well-known/agent.json",
        name="Bot",
        developer=DEV,
        capabilities=["mail"],
    )
    body = doc.dump()
    assert body["ath_version"] == "0.1"
    assert body["developer"] == DEV
    assert "d" not in body["public_key"]  # never the private half
    assert public_key_to_pem(load_public_key(body["public_key"])) == public_key_to_pem(key)


def test_serve_identity_over_http_with_cache_header() -> None:
    key = generate_key()
    with serve_identity(key, name="Bot", developer=DEV) as agent_id:
        assert agent_id.startswith("http://127.0.0.1:")
        assert agent_id.endswith("/.well-known/agent.json")
        response = httpx.get(agent_id)
        assert response.status_code == 200
        assert response.headers["cache-control"] == "max-age=300"
        assert response.headers["content-type"] == "application/json"
        doc = IdentityDocument.model_validate(response.json())
        assert doc.agent_id == agent_id and doc.name == "Bot"
        # A verifier that fetched this document accepts the agent's attestations.
        jwt = create_attestation(key, agent_id=agent_id, audience="http://127.0.0.1:1")
        claims = verify_attestation(
            jwt, load_public_key(doc.public_key), audience="http://127.0.0.1:1"
        )
        assert claims.sub == agent_id
        assert httpx.get(agent_id.replace("agent.json", "other.json")).status_code == 404
    with pytest.raises(httpx.ConnectError):
        httpx.get(agent_id)  # the port is closed once the block ends


async def test_serve_identity_async() -> None:
    key = generate_key()
    async with (
        serve_identity_async(key, name="Bot", developer=DEV) as agent_id,
        httpx.AsyncClient() as http,
    ):
        response = await http.get(agent_id)
        assert response.json()["agent_id"] == agent_id
        assert response.headers["cache-control"] == "max-age=300"
