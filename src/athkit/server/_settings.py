"""Configuration of an ATH implementer, as pydantic models.

``ServerSettings`` describes the implementer itself; ``ProviderSettings`` one provider (the
service's own OAuth server in native mode, each upstream in gateway mode) with its approval
policy. Both may be subclassed (the gateway adds its upstream ``api_base`` and route map).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from athkit.protocol import (
    CALLBACK_PATH,
    TOKEN_PATH,
    AgentIdError,
    PrivateKey,
    canonical_agent_id,
    load_private_key,
)

MAX_SESSION_LIFETIME = 600  # ATH §4.3: sessions expire within 10 minutes
MAX_TOKEN_LIFETIME = 3600  # ATH §4.5: token lifetime ≤ 1 hour


ProviderId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.\-]+$")]


class StrictModel(BaseModel):
    """A model that refuses keys it does not define: a misspelt setting or body field is an
    error, never silently ignored."""

    model_config = ConfigDict(extra="forbid")


class ApprovalRules(StrictModel):
    """A provider's app-side approval policy (ATH §4.1): which requested scopes are approved at
    registration, which wait for an operator, which are never granted, and which agents may
    ask at all. The gateway's ``[providers.<id>.approval]`` table is this model too."""

    auto_approve: list[str] = Field(
        default_factory=list, description="Scopes approved at registration without review."
    )
    review: list[str] = Field(
        default_factory=list,
        description="Scopes an operator must approve; the agent stays 'pending' until then.",
    )
    never: list[str] = Field(default_factory=list, description="Scopes never granted to agents.")
    allowed_agent_domains: list[str] | None = Field(
        default=None,
        description="When set, only agents whose agent_id host is listed (or a "
        "subdomain of one) may use this provider.",
    )
    denied_agent_domains: list[str] = Field(default_factory=list)
    approve_while_reviewing: bool = Field(
        default=False,
        description="When true, an agent that got some scopes auto-approved is 'approved' for "
        "them at once, while its review scopes wait for the operator (answered as denied, "
        "'awaiting operator review'); when false, any review scope keeps the agent 'pending'.",
    )

    def rule_problems(
        self, offered: list[str], offered_name: str = "scopes"
    ) -> list[tuple[str, str]]:
        """``(field, message)`` for each broken rule: a policy scope the provider does not
        offer (``offered``, called ``offered_name`` in messages), or a scope both auto-approved
        and reviewed. The one place these rules live."""
        known = set(offered)
        out: list[tuple[str, str]] = []
        for name in ("auto_approve", "review", "never"):
            unknown = [s for s in getattr(self, name) if s not in known]
            if unknown:
                out.append((name, f"scopes not in {offered_name}: {unknown}"))
        overlap = sorted(set(self.auto_approve) & set(self.review))
        if overlap:
            out.append(("review", f"scopes both auto-approved and reviewed: {overlap}"))
        return out


class ProviderDescription(StrictModel):
    """What describes a provider wherever it is configured: its name, its OAuth server and the
    client registered there, and the scopes it offers. ``ProviderSettings`` (Python) and the
    gateway's ``[providers.<id>]`` (TOML) both extend it."""

    display_name: Annotated[str, Field(min_length=1, max_length=256)]
    categories: list[str] = Field(default_factory=list)
    issuer: str | None = Field(
        default=None,
        description="The authorization server's issuer URL: the audience of the signed "
        "ath_context (default: the origin of authorization_endpoint); the gateway also reads "
        "missing endpoints from its RFC 8414 metadata.",
    )
    authorization_endpoint: str | None = None
    token_endpoint: str | None = None
    userinfo_endpoint: str | None = None
    user_id_field: str = "sub"
    client_id: Annotated[str, Field(min_length=1)]
    scopes: list[str] = Field(
        default_factory=list, description="Every scope the provider offers to agents."
    )
    resource: str | None = None


class ProviderSettings(ProviderDescription, ApprovalRules):
    """One provider: its OAuth endpoints and client, its scopes, and the approval policy."""

    provider_id: ProviderId
    authorization_endpoint: str
    token_endpoint: str
    client_secret: SecretStr
    approval_lifetime: timedelta = timedelta(days=90)

    @model_validator(mode="after")
    def _policy_scopes_are_known(self) -> ProviderSettings:
        for name, message in self.rule_problems(self.scopes):
            raise ValueError(f"{name}: {message}")
        return self


class RateLimitSettings(StrictModel):
    """Requests per agent (ATH §6), counted in a sliding window by every access check."""

    requests: Annotated[int, Field(ge=1)] = 600
    window_seconds: Annotated[float, Field(gt=0, le=86_400)] = 60
    backend: Literal["memory", "redis"] | None = Field(
        default=None,
        description="Where the counters live; unset: in Redis when a redis_url is configured "
        "(shared by every instance), else in this process.",
    )
    redis_url: str | None = None
    key_prefix: str = "athkit:ratelimit"
    agents: dict[str, Annotated[int, Field(ge=1)]] = Field(
        default_factory=dict, description="Per-agent request counts, by agent_id."
    )

    @field_validator("agents")
    @classmethod
    def _canonical_agent_ids(cls, value: dict[str, int]) -> dict[str, int]:
        # ATH §2: agent_ids are compared in canonical form, so the keys are stored in it.
        try:
            return {canonical_agent_id(k, allow_query=True): v for k, v in value.items()}
        except AgentIdError as exc:
            raise ValueError(f"not an agent_id: {exc}") from None


class ServerSettings(StrictModel):
    """The implementer: where it lives, where it stores things, and its secrets."""

    base_url: str = Field(description="Public base URL, e.g. https://shop.example.com")
    app_id: str = "ath-app"
    name: str = "ATH service"
    api_base: str | None = Field(default=None, description="Defaults to {base_url}/api.")
    database_url: str = "sqlite:///ath.db"
    database_pool_size: Annotated[int, Field(ge=1, le=1000)] = Field(
        default=10, description="Connections kept open to PostgreSQL (per process)."
    )
    database_max_overflow: Annotated[int, Field(ge=0, le=1000)] = Field(
        default=10, description="Extra PostgreSQL connections opened under load, then closed."
    )
    database_timeout: Annotated[float, Field(gt=0, le=300)] = Field(
        default=5.0,
        description="Seconds a request waits for the database (connect, pool, statement) "
        "before it is refused with 503.",
    )
    redis_url: str | None = Field(
        default=None,
        description="Redis for the short-lived shared state of several instances: seen jti "
        "(also kept in the database) and rate-limit counters.",
    )
    redis_timeout: Annotated[float, Field(gt=0, le=60)] = 1.0
    rate_limit: RateLimitSettings = Field(default_factory=RateLimitSettings)
    migrate_on_start: bool = Field(
        default=True,
        description="Run the schema migrations at start-up (under a database lock). False: "
        "refuse to start unless the schema is already at this release's head.",
    )
    secret_key: SecretStr = Field(
        description="At least 32 characters; encrypts provider tokens (AES-GCM under an "
        "HKDF-derived key)."
    )
    admin_token: SecretStr | None = Field(
        default=None, description="Bearer token of the admin API; the admin API is off without it."
    )
    forward_auth_secret: SecretStr | None = Field(
        default=None,
        description="Shared secret (at least 32 characters) a forward-auth proxy sends in "
        "X-ATH-Check-Secret; /ath/check is off without it.",
    )
    session_lifetime: Annotated[int, Field(ge=30, le=MAX_SESSION_LIFETIME)] = MAX_SESSION_LIFETIME
    token_lifetime: Annotated[int, Field(ge=30, le=MAX_TOKEN_LIFETIME)] = MAX_TOKEN_LIFETIME
    allow_loopback: bool = Field(
        default=False,
        description="Let the attestation verifier fetch identity documents from "
        "loopback addresses (development only).",
    )
    allow_private_networks: bool = False
    allow_http: bool = Field(
        default=False, description="Let the verifier fetch identity documents over plain http."
    )
    consent_signing_key: str | None = Field(
        default=None,
        description="ES256 private key (PEM text or a path to a PEM file) that "
        "signs the ath_context of agent-aware consent.",
    )
    max_body_bytes: Annotated[int, Field(ge=1024, le=10 * 1024 * 1024)] = 64 * 1024
    providers: list[ProviderSettings] = Field(default_factory=list)

    @field_validator("base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("base_url must be an http(s) URL")
        return value.rstrip("/")

    @field_validator("secret_key")
    @classmethod
    def _long_secret(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 32:
            raise ValueError("secret_key must be at least 32 characters")
        return value

    @field_validator("forward_auth_secret")
    @classmethod
    def _long_check_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("forward_auth_secret must be at least 32 characters")
        return value

    @model_validator(mode="after")
    def _unique_providers(self) -> ServerSettings:
        ids = [p.provider_id for p in self.providers]
        if len(ids) != len(set(ids)):
            raise ValueError("provider_id values must be unique")
        return self

    @property
    def resolved_api_base(self) -> str:
        """``api_base``, or ``{base_url}/api``."""
        return (self.api_base or f"{self.base_url}/api").rstrip("/")

    @property
    def token_endpoint(self) -> str:
        """``{base}/ath/token``: the audience of token-exchange attestations (ATH §2)."""
        return self.base_url + TOKEN_PATH

    @property
    def callback_url(self) -> str:
        """``{base}/ath/callback``: the redirect_uri registered with every provider."""
        return self.base_url + CALLBACK_PATH

    def database_options(self) -> dict[str, Any]:
        """Keyword arguments of ``athkit.storage.create_database`` for ``database_url``."""
        return {
            "pool_size": self.database_pool_size,
            "max_overflow": self.database_max_overflow,
            "timeout": self.database_timeout,
        }

    @property
    def only_provider_id(self) -> str | None:
        """The provider_id when there is exactly one provider (a native service's own), else
        ``None``: what API calls default to when they name no provider."""
        return self.providers[0].provider_id if len(self.providers) == 1 else None

    def provider(self, provider_id: str) -> ProviderSettings | None:
        """The provider with this id."""
        for provider in self.providers:
            if provider.provider_id == provider_id:
                return provider
        return None

    def load_consent_signing_key(self) -> PrivateKey | None:
        """The consent-context signing key, loaded from PEM text or a file."""
        if self.consent_signing_key is None:
            return None
        source = self.consent_signing_key
        if "-----BEGIN" in source:
            return load_private_key(source)
        return load_private_key(Path(source))
