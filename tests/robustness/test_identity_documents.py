"""Property test: hostile identity documents, served by the agent's own host on 127.0.0.1, never
make registration answer 5xx, at the ATH Shop (native) or at the gateway.

Each example publishes one document under a fresh agent_id and registers that agent with a
correctly signed attestation, so the document is fetched and parsed for real: structurally valid
JSON with hostile shapes, documents that carry the right key but hostile fields, broken JSON,
other encodings, wrong media types and oversized bodies.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from athkit.protocol import create_attestation, generate_private_key, public_key_to_jwk
from athkit.testing import serve_in_thread
from tests.robustness._hostile import _HOSTILE_TEXT, _JSON, Probe, check_answer, json_bytes
from tests.robustness._world import World

KEY = generate_private_key()
JWK = public_key_to_jwk(KEY.public_key())


class HostileHost:
    """Serves whatever bytes and media type a test published for an agent name."""

    def __init__(self) -> None:
        self.documents: dict[str, tuple[bytes, str]] = {}

        async def document(request: Request) -> Response:
            body, media = self.documents.get(request.path_params["name"], (b"{}", "text/plain"))
            return Response(body, media_type=media, headers={"Cache-Control": "max-age=300"})

        self.app = Starlette(routes=[Route("/agents/{name}/agent.json", document)])


@pytest.fixture(scope="module")
def host() -> Iterator[tuple[HostileHost, str]]:
    hostile = HostileHost()
    with serve_in_thread(hostile.app) as server:
        yield hostile, server.url


@st.composite
def documents(draw: st.DrawFn, agent_id: str) -> tuple[bytes, str]:
    kind = draw(st.integers(0, 4))
    if kind <= 1:
        # A document with the right key, so the signature verifies and registration goes on;
        # one or two of its other fields hostile (or none: then the agent registers).
        doc: dict[str, Any] = {
            "ath_version": "0.1",
            "agent_id": agent_id,
            "name": "Hostile Test Agent",
            "developer": {"name": "Dev", "id": "dev"},
            "public_key": JWK,
        }
        for _ in range(draw(st.integers(0, 2))):
            field = draw(st.sampled_from(["name", "developer", "capabilities", "extra", "ver"]))
            if field == "name":
                doc["name"] = draw(_HOSTILE_TEXT | _JSON)
            elif field == "developer":
                doc["developer"] = draw(
                    st.fixed_dictionaries({"name": _HOSTILE_TEXT, "id": _HOSTILE_TEXT}) | _JSON
                )
            elif field == "capabilities":
                doc["capabilities"] = draw(st.lists(_HOSTILE_TEXT, max_size=300) | _JSON)
            elif field == "extra":
                doc[draw(st.text(max_size=10))] = draw(_JSON)
            else:
                doc["ath_version"] = draw(_HOSTILE_TEXT)
        body = json.dumps(doc).encode("utf-8")
    elif kind == 2:
        body = draw(json_bytes())
    elif kind == 3:
        body = b'{"name": "' + b"x" * draw(st.integers(60_000, 300_000)) + b'"}'
    else:
        body = draw(st.binary(max_size=300))
    media = draw(
        st.sampled_from(
            ["application/json"] * 6
            + ["application/json; charset=utf-16", "text/html", "", "a/b+json"]
        )
    )
    return body, media


@pytest.mark.parametrize("server", ["shop", "gateway"])
def test_hostile_identity_documents_never_5xx(
    world: World, http: httpx.Client, host: tuple[HostileHost, str], server: str
) -> None:
    hostile, url = host
    base = world.servers[server]

    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        name = secrets.token_hex(6)
        agent_id = f"{url}/agents/{name}/agent.json"
        hostile.documents[name] = data.draw(documents(agent_id))
        body = json.dumps(
            {
                "agent_id": agent_id,
                "agent_attestation": create_attestation(KEY, agent_id=agent_id, audience=base),
                "developer": {"name": "Dev", "id": "dev"},
                "requested_providers": [{"provider_id": "x", "scopes": ["a"]}],
            }
        ).encode()
        probe = Probe(
            "POST", f"{base}/ath/agents/register", {"Content-Type": "application/json"}, body
        )
        response, seconds = probe.send(http)
        check_answer(probe, response, seconds)
        assert response.status_code in (201, 400, 401, 403, 409), response.text

    run()
