"""The engine's OAuth bridge against the real OAuth server: code exchange, userinfo, refresh
(persisted), and a dead refresh token that sends the user back to consent."""

from __future__ import annotations

import secrets
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from athkit.oauthserver import create_oauth_app
from athkit.protocol import (
    ATHError,
    AuthorizeRequest,
    ErrorCode,
    TokenRequest,
    generate_private_key,
)
from athkit.server import (
    ATHEngine,
    HttpOAuthBridge,
    ManualClock,
    ProviderSettings,
    ServerSettings,
    memory_stores,
)
from athkit.testing import drive_consent_async, free_port, serve_in_thread
from tests.integration.native.harness import PASSWORD, oauth_config
from tests.integration.native.service import OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET
from tests.unit.server.helpers import Agent, KeyringVerifier, engine_register

BASE = "http://127.0.0.1:9"  # the engine's public URL; the browser stops before reaching it


async def test_exchange_userinfo_refresh_and_dead_refresh_token() -> None:
    port = free_port()
    oauth_url = f"http://127.0.0.1:{port}"
    app = create_oauth_app(oauth_config(port, BASE, generate_private_key()))
    clock = ManualClock()
    verifier = KeyringVerifier(clock)
    agent = Agent("bridge")
    verifier.add(agent)
    bridge = HttpOAuthBridge()
    settings = ServerSettings(
        base_url=BASE,
        secret_key=secrets.token_urlsafe(32),
        providers=[
            ProviderSettings(
                provider_id="shop",
                display_name="Shop",
                authorization_endpoint=f"{oauth_url}/authorize",
                token_endpoint=f"{oauth_url}/token",
                userinfo_endpoint=f"{oauth_url}/userinfo",
                client_id=OAUTH_CLIENT_ID,
                client_secret=OAUTH_CLIENT_SECRET,
                scopes=["orders:read", "profile"],
                auto_approve=["orders:read", "profile"],
            )
        ],
    )
    engine = ATHEngine(
        settings, stores=memory_stores(), verifier=verifier, oauth=bridge, clock=clock
    )
    with serve_in_thread(app, port=port):
        registered = await engine_register(engine, agent, clock, base=BASE, scopes=["orders:read"])
        started = await engine.authorize(
            AuthorizeRequest(
                client_id=registered.client_id,
                agent_attestation=agent.attest(BASE, clock),
                provider_id="shop",
                scopes=["orders:read"],
                state=secrets.token_urlsafe(24),
            )
        )
        begin = await engine.begin_consent(started.ath_session_id, None)
        async with httpx.AsyncClient(timeout=10) as browser:
            back = await drive_consent_async(
                browser,
                begin.redirect_url,
                username="bob",
                password=PASSWORD,
                stop_at=f"{BASE}/ath/callback",
            )
        assert isinstance(back, str)
        query = {k: v[0] for k, v in parse_qs(urlsplit(back).query).items()}
        result = await engine.callback(
            state=query["state"],
            code=query["code"],
            error=None,
            binding_for=lambda _s: begin.binding_secret,
        )
        issued = await engine.exchange_token(
            TokenRequest(
                grant_type="authorization_code",
                client_id=registered.client_id,
                client_secret=registered.client_secret,
                agent_attestation=agent.attest(f"{BASE}/ath/token", clock),
                code=result.code or "",
                ath_session_id=started.ath_session_id,
            )
        )
        info = await engine.validate_token(issued.access_token)
        assert info.user_id == "user-bob-2"  # learnt from /userinfo

        first = await engine.provider_credentials(info)
        refreshed = await engine.provider_credentials(info, force_refresh=True)
        assert refreshed.access_token != first.access_token
        # The refresh was persisted: the next call returns the same new token, and it works.
        assert (await engine.provider_credentials(info)).access_token == refreshed.access_token
        async with httpx.AsyncClient(timeout=10) as http:
            me = await http.get(
                f"{oauth_url}/userinfo",
                headers={"Authorization": f"Bearer {refreshed.access_token}"},
            )
            assert me.status_code == 200 and me.json()["sub"] == "user-bob-2"
            # The user withdraws consent at the provider: the refresh token dies.
            grant = await engine.stores.grants.get(info.grant_id or "")
            assert grant is not None and grant.refresh_token_enc is not None
            refresh_token = engine.vault._cipher.decrypt(
                grant.refresh_token_enc, bound_to=grant.grant_id
            )
            revoked = await http.post(
                f"{oauth_url}/revoke",
                data={"token": refresh_token},
                auth=(OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET),
            )
            assert revoked.status_code == 200
        with pytest.raises(ATHError) as err:
            await engine.provider_credentials(info, force_refresh=True)
        assert err.value.code is ErrorCode.OAUTH_ERROR
        assert err.value.details["reason"] == "user_reauthorization_required"
        grant = await engine.stores.grants.get(info.grant_id or "")
        assert grant is not None and grant.needs_user
    await bridge.aclose()
