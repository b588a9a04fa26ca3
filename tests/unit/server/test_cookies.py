"""The browser-binding cookie on an https service: Secure, HttpOnly, SameSite=Lax, per app."""

from __future__ import annotations

import secrets

import httpx

from athkit.server import ServerSettings, create_native_app, memory_stores
from athkit.server._web import binding_cookie_name, cookie_tag
from tests.unit.server.helpers import BASE, FakeProvider, KeyringVerifier, make_world


async def test_binding_cookie_is_secure_on_https_and_named_per_app() -> None:
    w = make_world()
    agent = w.agent("cookie")
    settings = ServerSettings(
        base_url=BASE, secret_key="k" * 40, providers=w.engine.settings.providers
    )
    provider = FakeProvider()
    app = create_native_app(
        settings,
        verifier=KeyringVerifier(w.clock),
        stores=memory_stores(),
        oauth=provider,
        clock=w.clock,
    )
    app.state.ath_engine.verifier.add(agent)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        registered = await client.post(
            "/ath/agents/register",
            json={
                "agent_id": agent.agent_id,
                "agent_attestation": agent.attest(BASE, w.clock),
                "developer": {"name": "Dev", "id": "dev"},
                "requested_providers": [{"provider_id": "shop", "scopes": ["orders:read"]}],
            },
        )
        assert registered.status_code == 201, registered.text
        started_response = await client.post(
            "/ath/authorize",
            json={
                "client_id": registered.json()["client_id"],
                "agent_attestation": agent.attest(BASE, w.clock),
                "provider_id": "shop",
                "scopes": ["orders:read"],
                "state": secrets.token_urlsafe(24),
            },
        )
        started = started_response.json()
        consent = await client.get(started["authorization_url"], follow_redirects=False)
        assert consent.status_code == 302
        name = binding_cookie_name(cookie_tag(BASE), started["ath_session_id"])
        header = consent.headers["set-cookie"]
        assert header.startswith(f"{name}=")
        for attribute in ("Secure", "HttpOnly", "SameSite=lax", "Path=/ath/"):
            assert attribute.lower() in header.lower(), header
        assert cookie_tag("https://other.test") != cookie_tag(BASE)
        query = provider.consent(consent.headers["location"], "alice")
        done = await client.get("/ath/callback", params=query, follow_redirects=False)
        assert done.status_code == 200 and "ath_code_" in done.text
        assert f'{name}=""' in done.headers["set-cookie"]  # the binding cookie is cleared
