"""When the provider-credential cache runs out under load, the calls in flight share one store
read instead of queueing a read each (which held calls for seconds on a busy machine)."""

from __future__ import annotations

import asyncio
import time

from athkit.server import (
    ManualClock,
    MemoryGrantStore,
    ProviderGrant,
    ProviderVault,
    TokenCipher,
    TokenInfo,
)
from athkit.server._oauth import OAuthBridge


class CountingGrants(MemoryGrantStore):
    """The memory store, slow and counting its reads."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    async def get(self, grant_id: str) -> ProviderGrant | None:
        self.reads += 1
        await asyncio.sleep(0.02)
        return await super().get(grant_id)


async def test_expired_cache_entry_is_reloaded_once_for_all_calls_in_flight() -> None:
    clock = ManualClock(time.time())
    cipher = TokenCipher("s" * 40)
    grants = CountingGrants()
    now = clock.now()
    await grants.upsert(
        ProviderGrant(
            grant_id="grant-1",
            client_id="ath_client",
            agent_id="https://agent.example/agent.json",
            user_id="alice",
            provider_id="mail",
            consented_scopes=["mail:read"],
            access_token_enc=cipher.encrypt("provider-token-1", bound_to="grant-1"),
            created_at=now,
            updated_at=now,
            expires_at=None,
        )
    )
    oauth: OAuthBridge = None  # type: ignore[assignment]  # never called: nothing to refresh
    vault = ProviderVault(grants, cipher, oauth, clock, lambda _provider: None)
    info = TokenInfo(
        token_id="tok-1",
        client_id="ath_client",
        agent_id="https://agent.example/agent.json",
        user_id="alice",
        provider_id="mail",
        scopes=("mail:read",),
        expires_at=now + 3600,
        grant_id="grant-1",
    )
    first = await asyncio.gather(*(vault.credentials(info) for _ in range(20)))
    assert {c.access_token for c in first} == {"provider-token-1"}
    assert grants.reads == 1

    clock.advance(31)  # the 30 s cache entry has run out
    again = await asyncio.gather(*(vault.credentials(info) for _ in range(20)))
    assert {c.access_token for c in again} == {"provider-token-1"}
    assert grants.reads == 2

    # A provider 401 still forces a fresh read (and refresh) past the cache.
    grants.reads = 0
    await grants.update(
        ProviderGrant(
            **{**_fields(await MemoryGrantStore.get(grants, "grant-1")), "needs_user": True}
        )
    )
    try:
        await vault.credentials(info, force_refresh=True)
    except Exception as exc:  # the grant now needs the user: refused, not served from cache
        assert "authorize" in str(exc)
    else:
        raise AssertionError("force_refresh was served from the cache")
    assert grants.reads == 1


def _fields(grant: ProviderGrant | None) -> dict[str, object]:
    assert grant is not None
    return {name: getattr(grant, name) for name in grant.__dataclass_fields__}
