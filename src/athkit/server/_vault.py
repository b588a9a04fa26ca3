"""Custody of the users' provider tokens (ATH §6: they stay on the server).

``ProviderVault`` seals the tokens a provider issued at the callback (AES-GCM, bound to their
grant), hands the decrypted access token to whoever forwards an agent's call (the gateway proxy,
the forward-auth check), refreshes it with the refresh token when it has expired — one refresh
per grant at a time — and flags a grant as needing the user when the provider will not refresh.

Decrypted credentials are kept in a short in-process cache keyed by ATH token: at most 30 s,
never past 30 s before the provider token expires, bypassed by ``force_refresh`` (a provider
401). It never holds ATH token validity, which is read from the store on every call.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from dataclasses import replace

from athkit.protocol import ATHError, ErrorCode, generate_secret
from athkit.server._clock import Clock
from athkit.server._crypto import TokenCipher
from athkit.server._oauth import OAuthBridge, ProviderTokenSet
from athkit.server._records import (
    AgentRecord,
    ProviderCredentials,
    ProviderGrant,
    TokenInfo,
)
from athkit.server._settings import ProviderSettings
from athkit.server._stores import GrantStore

REFRESH_MARGIN = 30.0  # refresh provider tokens this many seconds before they expire
REFRESH_LEASE = 15.0  # how long one instance's claim to refresh a grant holds off the others
_REFRESH_POLL = 0.05
_CACHE_TTL = 30.0
_CACHE_MAX = 100_000


def _reauthorize(message: str) -> ATHError:
    return ATHError(
        ErrorCode.OAUTH_ERROR, message, details={"reason": "user_reauthorization_required"}
    )


class ProviderVault:
    """Seals, decrypts, caches and refreshes the provider tokens behind ATH grants."""

    def __init__(
        self,
        grants: GrantStore,
        cipher: TokenCipher,
        oauth: OAuthBridge,
        clock: Clock,
        provider: Callable[[str], ProviderSettings | None],
    ) -> None:
        self._grants = grants
        self._cipher = cipher
        self._oauth = oauth
        self._clock = clock
        self._provider = provider
        # One refresh per grant at a time; a lock is forgotten once nobody holds it.
        self._refresh_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )
        # ATH token_id → (valid until, credentials).
        self._cache: dict[str, tuple[float, ProviderCredentials]] = {}

    async def store_grant(
        self,
        agent: AgentRecord,
        provider: ProviderSettings,
        user_id: str,
        consented: list[str],
        tokens: ProviderTokenSet,
    ) -> ProviderGrant:
        """Seal the provider's tokens into the user's grant for this agent and provider (one
        grant per agent, user and provider: a new consent replaces the tokens)."""
        now = self._clock.now()
        grant_id = generate_secret("grant_", 12)
        # ATH §6: provider tokens stay on the server, encrypted at rest, bound to their grant.
        # A first consent inserts in one statement; when the owner already has a grant (a new
        # consent, or a concurrent one that won the insert), the store returns it untouched and
        # the tokens are sealed again to its id.
        stored = await self._grants.upsert(
            self._sealed(grant_id, agent, provider, user_id, consented, tokens, now)
        )
        if stored.grant_id != grant_id:
            stored = self._sealed(stored.grant_id, agent, provider, user_id, consented, tokens, now)
            stored = await self._grants.upsert(stored)
        return stored

    def _sealed(
        self,
        grant_id: str,
        agent: AgentRecord,
        provider: ProviderSettings,
        user_id: str,
        consented: list[str],
        tokens: ProviderTokenSet,
        now: float,
    ) -> ProviderGrant:
        return ProviderGrant(
            grant_id=grant_id,
            client_id=agent.client_id,
            agent_id=agent.agent_id,
            user_id=user_id,
            provider_id=provider.provider_id,
            consented_scopes=consented,
            access_token_enc=self._cipher.encrypt(tokens.access_token, bound_to=grant_id),
            refresh_token_enc=(
                self._cipher.encrypt(tokens.refresh_token, bound_to=grant_id)
                if tokens.refresh_token
                else None
            ),
            token_type=tokens.token_type,
            expires_at=now + tokens.expires_in if tokens.expires_in else None,
            created_at=now,
            updated_at=now,
        )

    async def credentials(
        self, info: TokenInfo, *, force_refresh: bool = False
    ) -> ProviderCredentials:
        """The decrypted provider access token behind a validated ATH token, from the cache
        or the store, refreshed first when it has expired (or when ``force_refresh``)."""
        # The engine's clock, not a monotonic one: what decides expiry for the engine (and for
        # tests that move time) decides it here too.
        now = self._clock.now()
        if not force_refresh:
            cached = self._cache.get(info.token_id)
            if cached is not None and cached[0] > now:
                return cached[1]
        try:
            creds = await self._load(info, force_refresh)
        except ATHError:
            self._cache.pop(info.token_id, None)
            raise
        valid_until = now + _CACHE_TTL
        if creds.expires_at is not None:
            valid_until = min(valid_until, creds.expires_at - REFRESH_MARGIN)
        if valid_until > now:
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[info.token_id] = (valid_until, creds)
        return creds

    def forget(self, token_id: str) -> None:
        """Drop the cached credentials of one ATH token."""
        self._cache.pop(token_id, None)

    async def _load(self, info: TokenInfo, force_refresh: bool) -> ProviderCredentials:
        if info.grant_id is None:
            raise _reauthorize("no provider grant behind this token")
        lock = self._refresh_locks.get(info.grant_id)
        if lock is None:
            lock = self._refresh_locks[info.grant_id] = asyncio.Lock()
        async with lock:
            if not force_refresh:
                # Single flight: when the cached entry ran out, every call in flight for this
                # token missed it and queued here; the first one loaded it again, so the others
                # take that instead of reading the store one after another (bench/proxy.py saw
                # 32 queued SQLite reads hold calls for over 2 s on a busy machine).
                cached = self._cache.get(info.token_id)
                if cached is not None and cached[0] > self._clock.now():
                    return cached[1]
            grant = await self._grants.get(info.grant_id)
            if grant is None or grant.needs_user:
                raise _reauthorize("the user must authorize this agent again")
            if self._stale(grant) or force_refresh:
                grant = await self._refresh_once(grant, force_refresh)
            return ProviderCredentials(
                grant_id=grant.grant_id,
                provider_id=grant.provider_id,
                user_id=grant.user_id,
                access_token=self._cipher.decrypt(grant.access_token_enc, bound_to=grant.grant_id),
                token_type=grant.token_type,
                expires_at=grant.expires_at,
            )

    def _stale(self, grant: ProviderGrant) -> bool:
        now = self._clock.now()
        return grant.expires_at is not None and grant.expires_at - REFRESH_MARGIN <= now

    async def _refresh_once(self, grant: ProviderGrant, force: bool) -> ProviderGrant:
        """Refresh ``grant`` unless another instance (another worker or gateway on the same
        database) is doing it or just did: the lock above covers this process only, and two
        refreshes with the same refresh token look like token theft to a provider that rotates
        them (it revokes the grant). The refresher claims the grant with a short lease in
        ``updated_at``; the others wait for its result."""
        seen = grant.updated_at
        waited = 0.0
        while True:
            now = self._clock.now()
            lease = now + REFRESH_LEASE
            if grant.updated_at <= now and await self._grants.claim_refresh(
                grant.grant_id, grant.updated_at, lease
            ):
                try:
                    return await self._refresh(grant)
                except ATHError as exc:
                    if exc.details.get("reason") != "user_reauthorization_required":
                        # A passing failure (the provider is down): let the next try go at once.
                        await self._grants.claim_refresh(grant.grant_id, lease, grant.updated_at)
                    raise
            if waited >= REFRESH_LEASE + 1:
                raise ATHError(
                    ErrorCode.OAUTH_ERROR,
                    "the provider token is being refreshed elsewhere; try again",
                    details={"reason": "refresh_in_progress"},
                )
            await asyncio.sleep(_REFRESH_POLL)
            waited += _REFRESH_POLL
            current = await self._grants.get(grant.grant_id)
            if current is None or current.needs_user:
                raise _reauthorize("the user must authorize this agent again")
            refreshed_elsewhere = current.updated_at != seen and current.updated_at <= (
                self._clock.now()
            )
            if refreshed_elsewhere and (force or not self._stale(current)):
                return current
            grant = current

    async def _refresh(self, grant: ProviderGrant) -> ProviderGrant:
        provider = self._provider(grant.provider_id)
        if provider is None or grant.refresh_token_enc is None:
            await self.mark_needs_user(grant, "provider token expired and cannot be refreshed")
            raise _reauthorize(
                "the provider token expired; the user must authorize this agent again"
            )
        refresh_token = self._cipher.decrypt(grant.refresh_token_enc, bound_to=grant.grant_id)
        try:
            tokens = await self._oauth.refresh(provider, refresh_token)
        except ATHError as exc:
            if exc.details.get("provider_error") in ("invalid_grant", "unauthorized_client"):
                await self.mark_needs_user(grant, "refresh token refused by the provider")
                raise _reauthorize(
                    "the provider refused the refresh; the user must authorize this agent again"
                ) from None
            raise
        now = self._clock.now()
        updated = replace(
            grant,
            access_token_enc=self._cipher.encrypt(tokens.access_token, bound_to=grant.grant_id),
            refresh_token_enc=(
                self._cipher.encrypt(tokens.refresh_token, bound_to=grant.grant_id)
                if tokens.refresh_token
                else grant.refresh_token_enc
            ),
            token_type=tokens.token_type,
            expires_at=now + tokens.expires_in if tokens.expires_in else None,
            updated_at=now,
        )
        await self._grants.update(updated)
        return updated

    async def mark_needs_user(self, grant: ProviderGrant, reason: str) -> None:
        """Flag ``grant`` as unusable until the user consents again."""
        grant.needs_user, grant.needs_user_reason = True, reason
        grant.updated_at = self._clock.now()
        await self._grants.update(grant)
        for token_id, (_, creds) in list(self._cache.items()):
            if creds.grant_id == grant.grant_id:
                self._cache.pop(token_id, None)
