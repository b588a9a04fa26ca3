"""The agent SDK (sync and async) through the whole handshake with a native service."""

from __future__ import annotations

import time

import pytest

from athkit.agent import (
    AsyncATHClient,
    ATHClient,
    ATHClientError,
    MemoryCredentialStore,
    StoredClient,
    authorize_interactive,
    authorize_interactive_async,
    generate_key,
    serve_identity,
    serve_identity_async,
)
from athkit.protocol import AppDiscovery
from tests.integration.agent.conftest import DEVELOPER, PRODUCTS, NativeStack


def test_sync_client_full_flow(native: NativeStack) -> None:
    key = generate_key()
    with (
        serve_identity(key, name="Shopping helper", developer=DEVELOPER) as agent_id,
        ATHClient(native.url, agent_id=agent_id, private_key=key) as client,
    ):
        found = client.discover()
        assert isinstance(found, AppDiscovery) and client.mode == "native"
        assert found.app_id == native.app_id

        registration = client.register(
            {native.app_id: ["products:read", "cart:write"]}, developer=DEVELOPER
        )
        assert registration.agent_status == "approved"
        assert registration.approved_providers[0].approved_scopes == ["products:read", "cart:write"]
        assert client.status().agent_status == "approved"

        # The user consents to products:read only (unticks cart:write).
        token = authorize_interactive(
            client,
            None,
            ["products:read", "cart:write"],
            opener=native.opener(scopes=["products:read"]),
        )
        assert token.effective_scopes == ["products:read"]
        assert token.scope_intersection.agent_approved == ["products:read", "cart:write"]
        assert token.scope_intersection.user_consented == ["products:read"]
        assert token.agent_id == agent_id and token.provider_id == native.app_id

        response = client.request("GET", "/products")
        assert response.status_code == 200
        assert response.json() == {"products": PRODUCTS}
        with pytest.raises(ATHClientError) as refused:
            client.request("POST", "/cart", json={"p1": 1})
        assert (refused.value.code, refused.value.status) == ("SCOPE_NOT_APPROVED", 403)

        stored = client.token(native.app_id)
        assert stored is not None
        client.revoke()
        assert client.token(native.app_id) is None
        with pytest.raises(ATHClientError) as gone:
            client.request("GET", "/products")
        assert gone.value.code == "NOT_AUTHORIZED"  # nothing left to send
        client.store.save_token(native.url, stored)  # an agent that kept a copy anyway
        with pytest.raises(ATHClientError) as revoked:
            client.request("GET", "/products")
        assert (revoked.value.code, revoked.value.status) == ("TOKEN_REVOKED", 401)


async def test_async_client_full_flow(native: NativeStack) -> None:
    key = generate_key()
    async with (
        serve_identity_async(key, name="Async helper", developer=DEVELOPER) as agent_id,
        AsyncATHClient(native.url, agent_id=agent_id, private_key=key, mode="native") as client,
    ):
        registration = await client.register(
            {native.app_id: ["products:read", "cart:write"]}, developer=DEVELOPER
        )
        assert registration.agent_status == "approved"
        with pytest.raises(ATHClientError) as again:
            await client.register({native.app_id: ["products:read"]}, developer=DEVELOPER)
        assert (again.value.code, again.value.status) == ("AGENT_ALREADY_REGISTERED", 409)

        token = await authorize_interactive_async(
            client, native.app_id, ["products:read", "cart:write"], opener=native.opener()
        )
        assert token.effective_scopes == ["products:read", "cart:write"]
        listed = await client.request("GET", "/products")
        assert listed.json() == {"products": PRODUCTS}
        added = await client.request("POST", "/cart", json={"p2": 3})
        assert (added.status_code, added.json()) == (201, {"cart": {"p2": 3}})
        await client.revoke(native.app_id)
        assert client.token(native.app_id) is None


def test_every_server_refusal_is_an_ath_client_error(native: NativeStack) -> None:
    key = generate_key()
    with serve_identity(key, name="Refused", developer=DEVELOPER) as agent_id:
        client = ATHClient(native.url, agent_id=agent_id, private_key=key, mode="native")

        def code_of(call: object) -> tuple[str, int | None]:
            with pytest.raises(ATHClientError) as info:
                call()  # type: ignore[operator]
            return info.value.code, info.value.status

        # Signed with a key other than the published one.
        impostor = ATHClient(native.url, agent_id=agent_id, private_key=generate_key())
        assert code_of(
            lambda: impostor.register({native.app_id: ["products:read"]}, developer=DEVELOPER)
        ) == ("INVALID_ATTESTATION", 401)
        impostor.close()

        client.register({native.app_id: ["products:read"]}, developer=DEVELOPER)
        assert code_of(lambda: client.authorize(native.app_id, ["cart:write"])) == (
            "SCOPE_NOT_APPROVED",
            403,
        )
        assert code_of(lambda: client.authorize("elsewhere", ["products:read"])) == (
            "PROVIDER_NOT_APPROVED",
            403,
        )
        pending = client.authorize(native.app_id, ["products:read"])
        assert code_of(lambda: client.exchange_token("wrong-code", pending.ath_session_id)) == (
            "SESSION_NOT_FOUND",
            400,
        )
        # The user refuses: the redirect says so, and no token exists.
        assert code_of(
            lambda: authorize_interactive(
                client, None, ["products:read"], opener=native.opener(allow=False)
            )
        ) == ("USER_DENIED", None)

        good = client.store.get_client(native.url, agent_id)
        assert good is not None
        client.store.save_client(
            native.url, good.model_copy(update={"client_secret": "not-the-secret"})
        )
        assert code_of(lambda: client.status()) == ("INVALID_CLIENT", 401)
        client.store.save_client(native.url, good)

        # Another agent presenting this agent's token.
        token = authorize_interactive(client, None, ["products:read"], opener=native.opener())
        assert token.effective_scopes == ["products:read"]
        other_key = generate_key()
        with serve_identity(other_key, name="Thief", developer=DEVELOPER) as other_id:
            thief = ATHClient(
                native.url, agent_id=other_id, private_key=other_key, store=MemoryCredentialStore()
            )
            stolen = client.token(native.app_id)
            assert stolen is not None
            thief.store.save_token(native.url, stolen.model_copy(update={"agent_id": other_id}))
            assert code_of(lambda: thief.request("GET", "/products")) == (
                "AGENT_IDENTITY_MISMATCH",
                403,
            )
            thief.close()

        # A token past its expires_in is never sent.
        live = client.token(native.app_id)
        assert live is not None
        client.store.save_token(native.url, live.model_copy(update={"expires_at": time.time() - 1}))
        code, status = code_of(lambda: client.request("GET", "/products"))
        assert (code, status) == ("TOKEN_EXPIRED", None)
        client.close()

        # An agent whose registration waits for an operator's review.
        waiting_key = generate_key()
        with serve_identity(waiting_key, name="Reviewed", developer=DEVELOPER) as waiting_id:
            waiting = ATHClient(native.url, agent_id=waiting_id, private_key=waiting_key)
            answer = waiting.register(
                {native.app_id: ["products:read", "orders:write"]}, developer=DEVELOPER
            )
            assert answer.agent_status == "pending"
            assert waiting.status().agent_status == "pending"
            assert code_of(lambda: waiting.authorize(None, ["products:read"])) == (
                "AGENT_UNAPPROVED",
                403,
            )
            waiting.close()

        unknown = ATHClient(native.url, agent_id=agent_id, private_key=key, mode="native")
        unknown.store.save_client(
            native.url, StoredClient(agent_id=agent_id, client_id="no-such", client_secret="x" * 20)
        )
        assert code_of(lambda: unknown.status()) == ("INVALID_CLIENT", 401)
        unknown.close()


def test_nobody_coming_back_times_out_cleanly(native: NativeStack) -> None:
    key = generate_key()
    opened: list[str] = []
    with (
        serve_identity(key, name="Patient", developer=DEVELOPER) as agent_id,
        ATHClient(native.url, agent_id=agent_id, private_key=key) as client,
    ):
        client.register({native.app_id: ["products:read"]}, developer=DEVELOPER)
        with pytest.raises(ATHClientError) as info:
            authorize_interactive(
                client, None, ["products:read"], opener=opened.append, timeout=0.5
            )
    assert info.value.code == "AUTHORIZATION_TIMEOUT"
    assert opened and opened[0].startswith(native.url)  # the implementer's consent link
