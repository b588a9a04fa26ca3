"""``ATHEngine``: the implementer side of ATH 0.1 (§2–§7) as plain async methods.

Every dependency is passed in (stores, attestation verifier, approval policy, OAuth bridge, audit
logger, clock); nothing is global. Each public method either returns its result or raises
:class:`~athkit.protocol.ATHError`; every rejection is audited (ATH §6). Any other failure — a
store that is down, a bug — is logged and raised as ``INTERNAL_ERROR``, and nothing is issued
(fail closed).

The engine is one class per actor it serves, joined here:

- the agent — ``register``, ``agent_status``, ``authorize``, ``exchange_token``, ``revoke``
  (``_handshake.py``);
- the user's browser and the user — ``begin_consent``, ``callback``, ``list_user_grants``,
  ``revoke_for_user`` (``_browser.py``);
- every API call — ``validate_token`` (``_validation.py``) and ``provider_credentials`` (the
  provider-token vault, ``_vault.py``);
- the operator — approve, deny, suspend, reinstate, scopes, tokens, audit (``_operator.py``).

Flow::

    register ─> authorize ─> begin_consent (browser) ─> provider ─> callback ─> exchange_token
                                                                                     │
                         validate_token / provider_credentials  <── agent API calls ─┘
"""

from __future__ import annotations

from athkit.server._audit import AuditContext
from athkit.server._browser import BrowserEndpoints, CallbackResult, ConsentStart
from athkit.server._core import ACCESS_TOKEN_PREFIX
from athkit.server._handshake import AgentEndpoints
from athkit.server._operator import OperatorActions
from athkit.server._records import ProviderCredentials, TokenInfo
from athkit.server._validation import TokenChecks

__all__ = ["ACCESS_TOKEN_PREFIX", "ATHEngine", "CallbackResult", "ConsentStart"]


class ATHEngine(AgentEndpoints, BrowserEndpoints, TokenChecks, OperatorActions):
    """The ATH implementer: registration, authorization, callback, token, revocation,
    validation and the operator's administration of agents and tokens."""

    async def provider_credentials(
        self, info: TokenInfo, *, force_refresh: bool = False
    ) -> ProviderCredentials:
        """The decrypted provider access token behind a validated ATH token.

        Refreshed with the provider's refresh token when expired (or when ``force_refresh``,
        e.g. after the provider answered 401), and the refresh persisted. ``OAUTH_ERROR`` with
        ``details.reason == "user_reauthorization_required"`` when the user must consent again.
        """
        call = AuditContext(
            "access_denied",
            agent_id=info.agent_id,
            client_id=info.client_id,
            user_id=info.user_id,
            provider_id=info.provider_id,
        )
        return await self._run(call, self.vault.credentials(info, force_refresh=force_refresh))

    async def mark_grant_needs_user(self, grant_id: str, reason: str) -> None:
        """Flag a provider grant as unusable until the user consents again (e.g. the provider
        rejected the token even after a refresh)."""

        async def work() -> None:
            grant = await self.stores.grants.get(grant_id)
            if grant is not None:
                await self.vault.mark_needs_user(grant, reason)

        await self._run(AuditContext("access_denied"), work())
