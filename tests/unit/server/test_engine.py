"""The engine's handshake, end to end in-process, with real attestations and PKCE."""

from __future__ import annotations

import dataclasses
import secrets

import pytest

from athkit.protocol import ATHError, AuthorizeRequest, ErrorCode, RevokeRequest, TokenRequest
from athkit.server import EngineStores, ProviderGrant
from tests.unit.server.helpers import BASE, Agent, World, make_world, provider_settings


async def start(w: World, agent: Agent, client_id: str, scopes: list[str], **kw: object) -> str:
    response = await w.engine.authorize(
        AuthorizeRequest(
            client_id=client_id,
            agent_attestation=agent.attest(BASE, w.clock),
            provider_id="shop",
            scopes=scopes,
            state=secrets.token_urlsafe(16),
            **kw,  # type: ignore[arg-type]
        )
    )
    assert response.authorization_url == f"{BASE}/ath/consent/{response.ath_session_id}"
    return response.ath_session_id


async def consent(
    w: World, session_id: str, user: str = "alice", scopes: list[str] | None = None
) -> str:
    start = await w.engine.begin_consent(session_id, None)
    assert start.binding_secret is not None
    query = w.provider.consent(start.redirect_url, user, scopes)
    result = await w.engine.callback(
        state=query["state"],
        code=query["code"],
        error=None,
        binding_for=lambda sid: start.binding_secret if sid == session_id else None,
    )
    assert result.code is not None
    return result.code


async def token_request(
    w: World, agent: Agent, client_id: str, secret: str, session_id: str, code: str
) -> TokenRequest:
    return TokenRequest(
        grant_type="authorization_code",
        client_id=client_id,
        client_secret=secret,
        agent_attestation=agent.attest(f"{BASE}/ath/token", w.clock),
        code=code,
        ath_session_id=session_id,
    )


async def full_flow(
    w: World,
    agent: Agent,
    client_id: str,
    secret: str,
    scopes: list[str],
    consented: list[str] | None = None,
) -> str:
    sid = await start(w, agent, client_id, scopes)
    code = await consent(w, sid, scopes=consented)
    response = await w.engine.exchange_token(
        await token_request(w, agent, client_id, secret, sid, code)
    )
    return response.access_token


async def codes(w: World) -> list[str | None]:
    return [e.code for e in await w.engine.query_audit(limit=1000)]


async def test_full_handshake_issues_a_bound_token_with_the_intersection(
    stores: EngineStores,
) -> None:
    w = make_world(stores=stores)
    agent = w.agent("mail")
    client_id, secret = await w.register(agent, ["orders:read", "orders:write", "admin"])
    status = await w.engine.agent_status(client_id, client_secret=secret)
    assert status.agent_status == "approved"
    assert status.approved_providers[0].denied_scopes == ["admin"]
    sid = await start(w, agent, client_id, ["orders:read"])
    code = await consent(w, sid, scopes=["orders:read", "orders:write", "profile"])
    response = await w.engine.exchange_token(
        await token_request(w, agent, client_id, secret, sid, code)
    )
    assert response.effective_scopes == ["orders:read"]
    assert response.scope_intersection.agent_approved == ["orders:read", "orders:write"]
    assert response.expires_in == 3600
    info = await w.engine.validate_token(
        response.access_token, agent_id=agent.agent_id, provider_id="shop"
    )
    assert (info.user_id, info.scopes) == ("alice", ("orders:read",))
    # The provider token is stored encrypted, never in clear.
    grant = (await w.stores.grants.list_for_user("alice"))[0]
    creds = await w.engine.provider_credentials(info)
    assert creds.access_token.startswith("up-alice-")
    assert creds.access_token not in grant.access_token_enc
    events = [e.event for e in await w.engine.query_audit(limit=50)]
    assert {"agent_registered", "authorization_started", "access_granted"} <= set(events)
    # ATH §4.5: single use.
    with pytest.raises(ATHError) as err:
        await w.engine.exchange_token(await token_request(w, agent, client_id, secret, sid, code))
    assert err.value.code is ErrorCode.SESSION_NOT_FOUND


async def test_token_expiry_revocation_and_binding(stores: EngineStores) -> None:
    w = make_world(stores=stores)
    agent, other = w.agent("a"), w.agent("b")
    cid, sec = await w.register(agent, ["orders:read"])
    ocid, osec = await w.register(other, ["orders:read"])
    token = await full_flow(w, agent, cid, sec, ["orders:read"])
    with pytest.raises(ATHError) as err:
        await w.engine.validate_token(token, agent_id=other.agent_id)
    assert err.value.code is ErrorCode.AGENT_IDENTITY_MISMATCH
    with pytest.raises(ATHError) as err:
        await w.engine.validate_token(token, provider_id="bank")
    assert err.value.code is ErrorCode.PROVIDER_MISMATCH
    # Another agent's revocation leaves the token alive.
    await w.engine.revoke(RevokeRequest(token=token, client_id=ocid, client_secret=osec))
    await w.engine.validate_token(token)
    with pytest.raises(ATHError) as err:
        await w.engine.revoke(RevokeRequest(token=token))
    assert err.value.code is ErrorCode.INVALID_CLIENT
    await w.engine.revoke(RevokeRequest(token=token, client_id=cid, client_secret=sec))
    with pytest.raises(ATHError) as err:
        await w.engine.validate_token(token)
    assert err.value.code is ErrorCode.TOKEN_REVOKED
    token2 = await full_flow(w, agent, cid, sec, ["orders:read"])
    w.clock.advance(3601)
    with pytest.raises(ATHError) as err:
        await w.engine.validate_token(token2)
    assert err.value.code is ErrorCode.TOKEN_EXPIRED
    assert {"TOKEN_REVOKED", "TOKEN_EXPIRED", "AGENT_IDENTITY_MISMATCH"} <= set(
        c for c in await codes(w) if c
    )


async def test_review_scopes_leave_the_agent_pending_until_an_operator_approves(
    stores: EngineStores,
) -> None:
    w = make_world(
        provider_settings(auto_approve=["orders:read"], review=["orders:write"]), stores=stores
    )
    agent = w.agent("p")
    cid, sec = await w.register(agent, ["orders:read", "orders:write"])
    assert (await w.engine.agent_status(cid, client_secret=sec)).agent_status == "pending"
    with pytest.raises(ATHError) as err:
        await start(w, agent, cid, ["orders:read"])
    assert err.value.code is ErrorCode.AGENT_UNAPPROVED
    await w.engine.approve_agent(cid)
    token = await full_flow(w, agent, cid, sec, ["orders:read", "orders:write"])
    assert (await w.engine.validate_token(token)).scopes == ("orders:read", "orders:write")
    await w.engine.suspend_agent(cid)
    with pytest.raises(ATHError) as err:
        await w.engine.validate_token(token)
    assert err.value.code is ErrorCode.TOKEN_REVOKED


async def test_an_operator_cannot_approve_a_scope_the_policy_never_grants(
    stores: EngineStores,
) -> None:
    w = make_world(stores=stores)  # the provider never grants "admin"
    agent = w.agent("n")
    cid, _secret = await w.register(agent, ["orders:read", "admin"])
    approval = (await w.engine.get_agent(cid)).provider("shop")
    assert approval is not None and approval.denied_scopes == ["admin"]
    with pytest.raises(ATHError) as err:
        await w.engine.set_approved_scopes(cid, "shop", ["orders:read", "admin"])
    assert err.value.code is ErrorCode.INVALID_REQUEST
    assert "never granted" in err.value.message
    approval = (await w.engine.get_agent(cid)).provider("shop")
    assert approval is not None and "admin" not in approval.approved_scopes  # nothing changed
    await w.engine.set_approved_scopes(cid, "shop", ["orders:read"])  # what policy allows


async def test_empty_intersection_and_user_denial_issue_nothing(stores: EngineStores) -> None:
    w = make_world(stores=stores)
    agent = w.agent("e")
    cid, sec = await w.register(agent, ["orders:read", "orders:write"])
    with pytest.raises(ATHError) as err:
        await full_flow(w, agent, cid, sec, ["orders:write"], consented=["orders:read"])
    assert err.value.code is ErrorCode.SCOPE_NOT_APPROVED
    assert err.value.details["scope_intersection"]["effective"] == []
    sid = await start(w, agent, cid, ["orders:read"], user_redirect_uri=None)
    begin = await w.engine.begin_consent(sid, None)
    q = w.provider.consent(begin.redirect_url, "bob")
    result = await w.engine.callback(
        state=q["state"],
        code=None,
        error="access_denied",
        binding_for=lambda _s: begin.binding_secret,
    )
    assert result.denied
    with pytest.raises(ATHError) as err:
        await w.engine.exchange_token(await token_request(w, agent, cid, sec, sid, "x"))
    assert err.value.code is ErrorCode.USER_DENIED
    assert (await w.engine.list_tokens()) == []


async def test_browser_binding_state_and_session_expiry(stores: EngineStores) -> None:
    w = make_world(stores=stores)
    agent = w.agent("s")
    cid, _ = await w.register(agent, ["orders:read"])
    sid = await start(w, agent, cid, ["orders:read"])
    begin = await w.engine.begin_consent(sid, None)
    # A second browser cannot open the same link.
    with pytest.raises(ATHError) as err:
        await w.engine.begin_consent(sid, None)
    assert err.value.code is ErrorCode.STATE_MISMATCH
    again = await w.engine.begin_consent(sid, begin.binding_secret)
    q = w.provider.consent(again.redirect_url, "carol")
    with pytest.raises(ATHError) as err:
        await w.engine.callback(
            state=q["state"], code=q["code"], error=None, binding_for=lambda _s: "another-browser"
        )
    assert err.value.details["reason"] == "browser_binding"
    with pytest.raises(ATHError) as err:
        await w.engine.callback(
            state="forged", code=q["code"], error=None, binding_for=lambda _s: again.binding_secret
        )
    assert err.value.code is ErrorCode.STATE_MISMATCH
    w.clock.advance(601)
    with pytest.raises(ATHError) as err:
        await w.engine.callback(
            state=q["state"],
            code=q["code"],
            error=None,
            binding_for=lambda _s: again.binding_secret,
        )
    assert err.value.code is ErrorCode.SESSION_EXPIRED


async def test_provider_token_refresh_is_persisted(stores: EngineStores) -> None:
    w = make_world(stores=stores)
    agent = w.agent("r")
    cid, sec = await w.register(agent, ["orders:read"])
    token = await full_flow(w, agent, cid, sec, ["orders:read"])
    info = await w.engine.validate_token(token)
    first = await w.engine.provider_credentials(info)
    w.clock.advance(120)
    second = await w.engine.provider_credentials(info)
    assert second.access_token != first.access_token and w.provider.refresh_count == 1
    assert (await w.engine.provider_credentials(info)).access_token == second.access_token
    await w.engine.mark_grant_needs_user(info.grant_id or "", "upstream said 401")
    with pytest.raises(ATHError) as err:
        await w.engine.provider_credentials(info)
    assert err.value.details["reason"] == "user_reauthorization_required"


async def test_user_disconnects_an_agent(stores: EngineStores) -> None:
    w = make_world(stores=stores)
    agent = w.agent("u")
    cid, sec = await w.register(agent, ["orders:read"])
    token = await full_flow(w, agent, cid, sec, ["orders:read"])
    grants = await w.engine.list_user_grants("alice")
    assert [(g.agent_name, g.scopes) for g in grants] == [("u agent", ("orders:read",))]
    assert await w.engine.revoke_for_user("mallory", client_id=cid) == 0
    await w.engine.validate_token(token)
    assert await w.engine.revoke_for_user("alice", client_id=cid) == 1
    with pytest.raises(ATHError):
        await w.engine.validate_token(token)
    assert await w.engine.list_user_grants("alice") == []


async def test_a_broken_store_fails_closed(stores: EngineStores) -> None:
    w = make_world(stores=stores)
    agent = w.agent("f")
    cid, sec = await w.register(agent, ["orders:read"])
    sid = await start(w, agent, cid, ["orders:read"])
    code = await consent(w, sid)

    async def broken(*_a: object, **_k: object) -> None:
        raise OSError("disk gone")

    w.stores.tokens.insert = broken  # type: ignore[method-assign]
    with pytest.raises(ATHError) as err:
        await w.engine.exchange_token(await token_request(w, agent, cid, sec, sid, code))
    assert err.value.code is ErrorCode.INTERNAL_ERROR
    assert await w.engine.list_tokens() == []


async def test_consent_link_carries_pkce_and_a_signed_agent_context(stores: EngineStores) -> None:
    from urllib.parse import parse_qs, urlsplit

    from athkit.protocol import generate_private_key, private_key_to_pem, verify_consent_context
    from athkit.server import ATHEngine

    w = make_world(stores=stores)
    key = generate_private_key()
    settings = w.engine.settings.model_copy(
        update={"consent_signing_key": private_key_to_pem(key).decode()}
    )
    engine = ATHEngine(
        settings, stores=w.stores, verifier=w.verifier, oauth=w.provider, clock=w.clock
    )
    w.engine = engine
    agent = w.agent("ctx")
    cid, _ = await w.register(agent, ["orders:read", "admin"])
    sid = await start(w, agent, cid, ["orders:read"])
    begin = await engine.begin_consent(sid, None)
    q = {k: v[0] for k, v in parse_qs(urlsplit(begin.redirect_url).query).items()}
    assert q["code_challenge_method"] == "S256" and q["redirect_uri"] == f"{BASE}/ath/callback"
    ctx = verify_consent_context(
        q["ath_context"],
        key.public_key(),
        client_id="svc",
        audience="https://idp.test",
        code_challenge=q["code_challenge"],
        now=w.clock.now(),
    )
    assert ctx.agent_id == agent.agent_id and ctx.approved_scopes == ("orders:read",)


async def test_expired_sessions_are_purged(stores: EngineStores) -> None:
    w = make_world(stores=stores)
    agent = w.agent("purge")
    cid, _ = await w.register(agent, ["orders:read"])
    sid = await start(w, agent, cid, ["orders:read"])
    w.clock.advance(601)
    with pytest.raises(ATHError) as err:
        await w.engine.begin_consent(sid, None)
    assert err.value.code is ErrorCode.SESSION_EXPIRED
    w.clock.advance(3600)
    assert await w.engine.purge_expired() == 1
    assert await w.stores.sessions.get(sid) is None


async def test_a_new_consent_reseals_tokens_to_the_existing_grant(
    stores: EngineStores,
) -> None:
    w = make_world(stores=stores)
    agent = w.agent("race")
    cid, sec = await w.register(agent, ["orders:read"])
    first = await full_flow(w, agent, cid, sec, ["orders:read"])
    [grant] = await w.stores.grants.list_for_user("alice")
    # The second consent's first write meets the owner's grant under another id (as a consent
    # racing another one does): the tokens are sealed again to the stored grant's id.
    second = await full_flow(w, agent, cid, sec, ["orders:read"])
    assert [g.grant_id for g in await w.stores.grants.list_for_user("alice")] == [grant.grant_id]
    for token in (first, second):
        creds = await w.engine.provider_credentials(await w.engine.validate_token(token))
        assert creds.access_token.startswith("up-alice-")


async def test_grant_upsert_replaces_only_the_grant_with_the_same_id(
    stores: EngineStores,
) -> None:
    first = ProviderGrant(
        grant_id="grant-a",
        client_id="client-1",
        agent_id="https://agent.test/agent.json",
        user_id="alice",
        provider_id="shop",
        consented_scopes=["orders:read"],
        access_token_enc="sealed-to-a",
        created_at=100.0,
        updated_at=100.0,
    )
    assert (await stores.grants.upsert(first)).grant_id == "grant-a"
    # Another id for the same owner: nothing written, the stored grant comes back.
    other = dataclasses.replace(first, grant_id="grant-b", access_token_enc="sealed-to-b")
    returned = await stores.grants.upsert(other)
    assert (returned.grant_id, returned.access_token_enc) == ("grant-a", "sealed-to-a")
    # The same id: replaced, created_at kept.
    again = dataclasses.replace(
        first, access_token_enc="resealed", consented_scopes=["orders:write"], created_at=200.0
    )
    replaced = await stores.grants.upsert(again)
    assert (replaced.access_token_enc, replaced.created_at) == ("resealed", 100.0)
    [stored] = await stores.grants.list_for_user("alice")
    assert (stored.grant_id, stored.access_token_enc) == ("grant-a", "resealed")
    assert (stored.consented_scopes, stored.created_at) == (["orders:write"], 100.0)
