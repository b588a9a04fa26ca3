"""Interfaces the engine is given rather than builds: attestation verification and the signed
agent context of agent-aware consent."""

from __future__ import annotations

from typing import Protocol

from athkit.protocol import IdentityDocument, VerifiedAttestation
from athkit.server._records import AgentRecord, SessionRecord
from athkit.server._settings import ProviderSettings


class VerifiedAgentLike(Protocol):
    """A verified attestation and the identity document it was verified against."""

    @property
    def attestation(self) -> VerifiedAttestation:
        """The attestation's checked claims."""
        ...

    @property
    def identity(self) -> IdentityDocument:
        """The agent's identity document."""
        ...


class AgentVerifier(Protocol):
    """Verifies an attestation (ATH §2): signature against the agent's published key, ``exp``,
    exact ``aud``, ``iat``, ``jti`` never seen before, and ``sub`` equal to
    ``expected_agent_id`` when given.

    Raises ``ATHError`` with ``INVALID_ATTESTATION``, ``AGENT_IDENTITY_MISMATCH`` or
    ``INTERNAL_ERROR``. ``athkit.server.AttestationVerifier`` is the production implementation.
    """

    async def verify(
        self, token: str, *, audience: str, expected_agent_id: str | None = None
    ) -> VerifiedAgentLike:
        """Verify ``token`` for ``audience``."""
        ...


class ConsentContextFactory(Protocol):
    """Builds the signed ``ath_context`` parameter added to the provider's authorization URL, so
    the provider's consent page can show the agent and the scopes the service approved."""

    def __call__(
        self,
        provider: ProviderSettings,
        agent: AgentRecord,
        session: SessionRecord,
        code_challenge: str,
    ) -> str | None:
        """The ``ath_context`` value, or ``None`` to send none."""
        ...
