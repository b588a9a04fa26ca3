"""The records the engine keeps: registrations, sessions, tokens, provider grants, audit events.

Plain dataclasses, independent of any store. Secrets never appear in them in clear: client
secrets, access tokens, OAuth ``state`` values, browser-binding secrets and ATH codes are kept as
SHA-256 hashes; provider tokens as AES-GCM ciphertext (see ``_crypto.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

AgentState = Literal["approved", "pending", "denied", "suspended"]
"""``agent_status`` of ATH §4.1 plus ``suspended`` (ours: an operator stopped the agent)."""

SessionState = Literal[
    "created", "bound", "exchanging", "consented", "denied", "failed", "consumed"
]
"""Life of an ATH session: created at ``/ath/authorize``; ``bound`` once a browser opened the
consent link; ``consented``/``denied``/``failed`` after the provider's callback; ``consumed`` after
the token exchange (ATH §4.5: single-use)."""


@dataclass(slots=True)
class ProviderApproval:
    """The app-side decision (Phase A) for one provider of a registration."""

    provider_id: str
    requested_scopes: list[str]
    approved_scopes: list[str]
    denied_scopes: list[str]
    pending_scopes: list[str] = field(default_factory=list)
    denial_reason: str | None = None


@dataclass(slots=True)
class AgentRecord:
    """One registered agent (ATH §4.1)."""

    client_id: str
    agent_id: str
    agent_name: str
    developer_name: str
    developer_id: str
    client_secret_hash: str
    status: AgentState
    providers: list[ProviderApproval]
    created_at: float
    updated_at: float
    approval_expires: float
    redirect_uris: list[str] | None = None
    purpose: str | None = None
    developer_contact: str | None = None
    status_reason: str | None = None

    def provider(self, provider_id: str) -> ProviderApproval | None:
        """The decision for ``provider_id``, if the agent asked for it."""
        for approval in self.providers:
            if approval.provider_id == provider_id:
                return approval
        return None


@dataclass(slots=True)
class SessionRecord:
    """One ATH authorization session (ATH §4.3–§4.5)."""

    session_id: str
    client_id: str
    agent_id: str
    provider_id: str
    requested_scopes: list[str]
    agent_state: str
    code_verifier: str
    created_at: float
    expires_at: float
    status: SessionState = "created"
    oauth_state_hash: str | None = None
    user_redirect_uri: str | None = None
    resource: str | None = None
    binding_hash: str | None = None
    ath_code_hash: str | None = None
    user_id: str | None = None
    consented_scopes: list[str] | None = None
    grant_id: str | None = None
    failure_reason: str | None = None


@dataclass(slots=True)
class TokenRecord:
    """An issued ATH access token; only its hash is kept (ATH §4.5)."""

    token_id: str
    token_hash: str
    client_id: str
    agent_id: str
    user_id: str
    provider_id: str
    scopes: list[str]
    created_at: float
    expires_at: float
    grant_id: str | None = None
    session_id: str | None = None
    revoked_at: float | None = None
    revoked_by: str | None = None


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What a valid ATH token allows: returned by ``ATHEngine.validate_token``."""

    token_id: str
    client_id: str
    agent_id: str
    user_id: str
    provider_id: str
    scopes: tuple[str, ...]
    expires_at: float
    grant_id: str | None


@dataclass(slots=True)
class ProviderGrant:
    """A user's provider tokens, obtained through one agent's consent (ATH §4.4).

    One grant per (client_id, user_id, provider_id); a later consent replaces its tokens.
    ``access_token_enc`` / ``refresh_token_enc`` are AES-GCM ciphertext bound to ``grant_id``.
    """

    grant_id: str
    client_id: str
    agent_id: str
    user_id: str
    provider_id: str
    consented_scopes: list[str]
    access_token_enc: str
    created_at: float
    updated_at: float
    token_type: str = "Bearer"
    refresh_token_enc: str | None = None
    expires_at: float | None = None
    needs_user: bool = False
    needs_user_reason: str | None = None


@dataclass(frozen=True, slots=True)
class ProviderCredentials:
    """A decrypted, currently valid provider access token, for calling the provider."""

    grant_id: str
    provider_id: str
    user_id: str
    access_token: str
    token_type: str
    expires_at: float | None


@dataclass(frozen=True, slots=True)
class UserGrant:
    """One line of a user's "Connected agents" page."""

    client_id: str
    agent_id: str
    agent_name: str
    provider_id: str
    scopes: tuple[str, ...]
    since: float
    active_tokens: int


AuditEventName = Literal[
    "agent_registered",
    "agent_registration_denied",
    "attestation_failed",
    "authorization_started",
    "access_granted",
    "access_denied",
    "token_revoked",
    "proxy_request",
    "scope_violation",
    "agent_updated",
]
"""ATH §6 audit events, plus ``agent_updated`` for operator decisions (ours)."""


@dataclass(slots=True)
class AuditEvent:
    """One audited decision (ATH §6)."""

    event: str
    timestamp: float
    agent_id: str | None = None
    client_id: str | None = None
    user_id: str | None = None
    provider_id: str | None = None
    requested_scopes: list[str] = field(default_factory=list)
    effective_scopes: list[str] = field(default_factory=list)
    denied_scopes: list[str] = field(default_factory=list)
    reason: str | None = None
    code: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    event_id: int | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form, as logged and as served by the admin API."""
        return {
            "event_id": self.event_id,
            "event": self.event,
            "timestamp": self.timestamp,
            "agent_id": self.agent_id,
            "client_id": self.client_id,
            "user_id": self.user_id,
            "provider_id": self.provider_id,
            "requested_scopes": list(self.requested_scopes),
            "effective_scopes": list(self.effective_scopes),
            "denied_scopes": list(self.denied_scopes),
            "reason": self.reason,
            "code": self.code,
            "details": dict(self.details),
        }
