"""Pydantic models for every ATH 0.1 message (ATH §2–§5, §7).

Field names are exactly the protocol's. Unknown fields sent by a peer are accepted and dropped
(``extra="ignore"``), so they are never echoed back out. Serialise with :meth:`ATHModel.dump`,
which leaves out optional fields that are unset.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from athkit.protocol._errors import ATHError, ErrorCode

ATH_VERSION = "0.1"

# Bounds that keep hostile input small; generous for any honest peer.
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=256)]
Url = Annotated[str, StringConstraints(min_length=1, max_length=2048)]
Jwt = Annotated[str, StringConstraints(min_length=1, max_length=8192)]
ScopeName = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=r"^[\x21\x23-\x5b\x5d-\x7e]+$")
]
ScopeList = Annotated[list[ScopeName], Field(max_length=100)]

AgentStatus = Literal["approved", "pending", "denied"]


class ATHModel(BaseModel):
    """Base of every ATH message: tolerant on input, exact on output."""

    model_config = ConfigDict(extra="ignore", frozen=False, populate_by_name=True)

    def dump(self) -> dict[str, Any]:
        """The message as JSON-ready data, without unset optional fields."""
        return self.model_dump(mode="json", exclude_none=True)

    @classmethod
    def parse(cls, data: object) -> Self:
        """Validate a peer's message: parsed JSON (a dict) or raw JSON text/bytes.

        Any failure is an ``INVALID_REQUEST`` :class:`ATHError` (ATH §7, our decision) whose
        ``details["errors"]`` names each offending field; the peer's values are never echoed.
        """
        try:
            if isinstance(data, str | bytes | bytearray):
                return cls.model_validate_json(data)
            return cls.model_validate(data)
        except ValidationError as exc:
            errors = [
                {"field": ".".join(str(p) for p in e["loc"]) or "(body)", "problem": e["msg"]}
                for e in exc.errors(include_url=False, include_input=False, include_context=False)
            ][:20]
            summary = "; ".join(f"{e['field']}: {e['problem']}" for e in errors[:3])
            raise ATHError(
                ErrorCode.INVALID_REQUEST,
                f"invalid {cls.__name__}: {summary}",
                details={"errors": errors},
            ) from None


# --- §2 identity -------------------------------------------------------------------------------


class Developer(ATHModel):
    """The developer behind an agent."""

    name: ShortText
    id: ShortText
    contact: ShortText | None = None


class IdentityDocument(ATHModel):
    """The JSON an agent publishes at its ``agent_id`` URL."""

    ath_version: ShortText = ATH_VERSION
    agent_id: Url
    name: ShortText
    developer: Developer
    public_key: dict[str, Any] | Annotated[str, StringConstraints(max_length=4096)]
    capabilities: list[ShortText] | None = None


# --- §3 discovery -----------------------------------------------------------------------------


class GatewayProvider(ATHModel):
    """One provider in a gateway catalog."""

    provider_id: ShortText
    display_name: ShortText
    categories: list[ShortText] | None = None
    available_scopes: list[ScopeName]
    auth_mode: ShortText = "OAUTH2"
    agent_approval_required: bool = True


class GatewayDiscovery(ATHModel):
    """``GET /.well-known/ath.json``."""

    ath_version: ShortText = ATH_VERSION
    gateway_id: ShortText
    agent_registration_endpoint: Url
    supported_providers: list[GatewayProvider]


class AppAuth(ATHModel):
    """The ``auth`` object of a native service's discovery document."""

    type: ShortText = "oauth2"
    authorization_endpoint: Url
    token_endpoint: Url
    registration_endpoint: Url | None = None
    scopes_supported: list[ScopeName]
    agent_attestation_required: bool | None = None


class AppDiscovery(ATHModel):
    """``GET /.well-known/ath-app.json``."""

    ath_version: ShortText = ATH_VERSION
    app_id: ShortText
    name: ShortText
    auth: AppAuth
    api_base: Url


# --- §4.1 / §4.2 registration -----------------------------------------------------------------


class ProviderScopes(ATHModel):
    """A provider and the scopes asked of it."""

    provider_id: ShortText
    scopes: ScopeList


class RegisterRequest(ATHModel):
    """``POST /ath/agents/register``."""

    agent_id: Url
    agent_attestation: Jwt
    developer: Developer
    requested_providers: Annotated[list[ProviderScopes], Field(min_length=1, max_length=50)]
    purpose: Annotated[str, StringConstraints(max_length=1024)] | None = None
    redirect_uris: Annotated[list[Url], Field(max_length=20)] | None = None


class ApprovedProvider(ATHModel):
    """The decision for one provider of a registration."""

    provider_id: ShortText
    approved_scopes: list[ScopeName]
    denied_scopes: list[ScopeName]
    denial_reason: str | None = None
    # Our decision (ATH §4.1): scopes sent to operator review, so the agent knows what waits.
    pending_scopes: list[ScopeName] | None = None


class RegisterResponse(ATHModel):
    """Answer to a registration."""

    client_id: ShortText
    client_secret: ShortText
    agent_status: AgentStatus
    approved_providers: list[ApprovedProvider]
    approval_expires: datetime


class AgentStatusResponse(ATHModel):
    """``GET /ath/agents/{client_id}``: the registration as it stands (never the secret)."""

    client_id: ShortText
    agent_id: Url
    agent_status: AgentStatus
    approved_providers: list[ApprovedProvider]
    approval_expires: datetime


# --- §4.3 – §4.5 authorization and token ------------------------------------------------------


class AuthorizeRequest(ATHModel):
    """``POST /ath/authorize``."""

    client_id: ShortText
    agent_attestation: Jwt
    provider_id: ShortText
    scopes: Annotated[list[ScopeName], Field(min_length=1, max_length=100)]
    state: Annotated[str, StringConstraints(min_length=22, max_length=512)]
    user_redirect_uri: Url | None = None
    resource: Url | None = None


class AuthorizeResponse(ATHModel):
    """Answer to ``POST /ath/authorize``."""

    authorization_url: Url
    ath_session_id: ShortText


class TokenRequest(ATHModel):
    """``POST /ath/token``."""

    grant_type: Literal["authorization_code"]
    client_id: ShortText
    client_secret: ShortText
    agent_attestation: Jwt
    # Our decision (ATH §4.4): may be omitted only for a session without an agent redirect.
    code: ShortText | None = None
    ath_session_id: ShortText


class ScopeIntersection(ATHModel):
    """The breakdown returned with every token (ATH §5)."""

    agent_approved: list[str]
    user_consented: list[str]
    effective: list[str]


class TokenResponse(ATHModel):
    """Answer to ``POST /ath/token``."""

    access_token: ShortText
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int
    effective_scopes: list[str]
    provider_id: ShortText
    agent_id: Url
    scope_intersection: ScopeIntersection


# --- §4.7 revocation, §7 errors ---------------------------------------------------------------


class RevokeRequest(ATHModel):
    """``POST /ath/revoke``."""

    token: Annotated[str, StringConstraints(min_length=1, max_length=512)]
    client_id: ShortText | None = None
    client_secret: ShortText | None = None


class ErrorResponse(ATHModel):
    """The body of every failure."""

    code: ShortText
    message: str
    details: dict[str, Any] | None = None
