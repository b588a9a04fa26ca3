"""The default :class:`ConsentContextFactory`: the implementer signs ``ath_context`` with its
ES256 key so the provider's consent page can show the agent and the approved scopes."""

from __future__ import annotations

from datetime import timedelta

from athkit.protocol import PrivateKey, create_consent_context, origin_of
from athkit.server._clock import Clock
from athkit.server._records import AgentRecord, SessionRecord
from athkit.server._settings import ProviderSettings


class SignedConsentContext:
    """Signs one consent context per authorization request, bound to its PKCE challenge."""

    def __init__(self, private_key: PrivateKey, clock: Clock) -> None:
        self._key = private_key
        self._clock = clock

    def __call__(
        self,
        provider: ProviderSettings,
        agent: AgentRecord,
        session: SessionRecord,
        code_challenge: str,
    ) -> str | None:
        """The ``ath_context`` for this session; lives until the session ends (≤ 10 min)."""
        approval = agent.provider(provider.provider_id)
        remaining = max(1, int(session.expires_at - self._clock.now()))
        return create_consent_context(
            self._key,
            client_id=provider.client_id,
            audience=provider.issuer or origin_of(provider.authorization_endpoint),
            code_challenge=code_challenge,
            agent_id=agent.agent_id,
            agent_name=agent.agent_name,
            developer={"name": agent.developer_name, "id": agent.developer_id},
            approved_scopes=list(approval.approved_scopes) if approval else [],
            lifetime=timedelta(seconds=min(remaining, 600)),
            now=self._clock.now(),
        )
