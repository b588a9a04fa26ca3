"""The shape of ``gateway.toml``: one pydantic model per section (secrets still referenced by
``*_env`` / ``*_file``, not read). A provider is described by the same models as the engine's
``ProviderSettings`` (``ProviderDescription`` and ``ApprovalRules``), plus what only a gateway
needs: the upstream ``api_base``, its route map and timeouts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
)

from athkit.gateway._mcp import McpUpstreamConfig
from athkit.server import ApprovalRules, ProviderDescription, RateLimitSettings
from athkit.server._settings import ProviderId, StrictModel

PositiveSeconds = Annotated[float, Field(gt=0, le=3600)]


class _Section(StrictModel):
    @field_validator("*", mode="before")
    @classmethod
    def _empty_means_unset(cls, value: Any, info: ValidationInfo) -> Any:
        # ATH_GATEWAY__SECRET_KEY_ENV="" switches a secret reference off.
        name = info.field_name or ""
        if value == "" and name.endswith(("_env", "_file")):
            return None
        return value


class ApprovalConfig(_Section, ApprovalRules):
    """``[providers.<id>.approval]``: the engine's approval rules (ATH §4.1) and how long an
    approval lasts."""

    lifetime_days: Annotated[float, Field(gt=0, le=3650)] = 90


class ProviderConfig(_Section, ProviderDescription):
    """``[providers.<id>]``: one upstream service behind the gateway. Endpoints left out are
    read from the ``issuer``'s RFC 8414 metadata at start-up."""

    client_secret_env: str | None = None
    client_secret_file: str | None = None
    scopes: list[str] = Field(description="Every scope the provider offers to agents.")
    api_base: str = Field(description="Base URL of the upstream API the proxy forwards to.")
    routes: dict[str, list[str]] = Field(
        description='Scope → allowed requests: {"mail:read" = ["GET /messages/{id}"]}.'
    )
    approval: ApprovalConfig = Field(default_factory=ApprovalConfig)
    timeout_seconds: PositiveSeconds | None = Field(
        default=None, description="Upstream answer timeout; defaults to [proxy] timeout_seconds."
    )
    connect_timeout_seconds: PositiveSeconds | None = None
    max_connections: Annotated[int, Field(ge=1, le=10_000)] | None = None
    user_login_scopes: list[str] = Field(
        default_factory=lambda: ["openid"],
        description="Scopes asked for when a user signs in here to see their connected agents "
        "(the gateway only reads who they are). Register {public_base_url}/account/callback "
        "as a redirect URI of the gateway's client at this provider too.",
    )
    mcp: McpUpstreamConfig | None = Field(
        default=None,
        description="The upstream is an MCP server (streamable HTTP): its endpoint path and "
        'scope → tools map, {path = "/mcp", tools = {"products:read" = ["search_products"]}}.',
    )


class ConsoleConfig(_Section):
    """``[console]``: the operator pages (``/admin``) and users' Connected agents (``/account``)."""

    enabled: bool = True
    user_pages: bool = Field(
        default=True, description="Serve /account: users sign in at a provider, see, revoke."
    )
    session_hours: Annotated[float, Field(gt=0, le=24 * 30)] = 8
    max_failed_sign_ins: Annotated[int, Field(ge=1, le=1000)] = 5
    throttle_minutes: Annotated[float, Field(gt=0, le=24 * 60)] = 15


class RateLimitConfig(RateLimitSettings, _Section):
    """``[rate_limit]``: requests per agent (the engine's own rate-limit settings)."""


class ProxyConfig(_Section):
    """``[proxy]``: upstream connection pools and timeouts (per provider overrides exist)."""

    connect_timeout_seconds: PositiveSeconds = 5
    timeout_seconds: PositiveSeconds = 30
    max_connections: Annotated[int, Field(ge=1, le=10_000)] = 100
    audit_max_pending: Annotated[int, Field(ge=1, le=100_000)] = Field(
        default=1000,
        description="proxy_request audit rows written behind the response, at most this many "
        "at a time: the most a crash can lose (security events are never queued).",
    )


class VerifierConfig(_Section):
    """``[verifier]``: where agent identity documents may be fetched from (ATH §2)."""

    allow_loopback: bool = False
    allow_private_networks: bool = False
    allow_http: bool = False


class ForwardAuthConfig(_Section):
    """``[forward_auth]``: the check endpoint for an existing proxy (nginx, Envoy).

    ``/ath/check`` answers only requests carrying ``X-ATH-Check-Secret`` with this shared
    secret (the proxy adds it; agents never see it); without a secret the endpoint is off.
    """

    secret_env: str | None = None
    secret_file: str | None = None


class GatewayConfig(_Section):
    """The whole ``gateway.toml``, validated (secrets still referenced, not read)."""

    mode: Literal["production", "development"] = "production"
    public_base_url: str
    gateway_id: Annotated[str, Field(min_length=1, max_length=256)] = "ath-gateway"
    name: str = "ATH gateway"
    listen: str = "127.0.0.1:8080"
    database_url: str = "sqlite:///ath-gateway.db"
    redis_url: str | None = Field(
        default=None,
        description="Redis shared by several instances: attestation jti replay records "
        "(also kept in the database) and the rate-limit counters (unless rate_limit.backend "
        "= 'memory').",
    )
    redis_timeout_seconds: PositiveSeconds = Field(
        default=1.0,
        description="Seconds a request waits for Redis before it is refused with 503.",
    )
    database_pool_size: Annotated[int, Field(ge=1, le=1000)] = 10
    database_max_overflow: Annotated[int, Field(ge=0, le=1000)] = 10
    database_timeout_seconds: PositiveSeconds = Field(
        default=5.0,
        description="Seconds a request waits for the database before it is refused with 503.",
    )
    migrate_on_start: bool = Field(
        default=True,
        description="Run schema migrations at start-up (under a database lock); false: refuse "
        "to start unless `ath gateway migrate` has brought the schema to this release.",
    )
    secret_key_env: str | None = None
    secret_key_file: str | None = None
    admin_token_env: str | None = None
    admin_token_file: str | None = None
    consent_signing_key_file: str | None = Field(
        default=None,
        description="ES256 private key (PEM) signing the agent context shown on consent pages.",
    )
    token_lifetime: Annotated[int, Field(ge=30, le=3600)] = 3600
    session_lifetime: Annotated[int, Field(ge=30, le=600)] = 600
    max_body_bytes: Annotated[int, Field(ge=1024, le=10 * 1024 * 1024)] = 64 * 1024
    verifier: VerifierConfig = Field(default_factory=VerifierConfig)
    rate_limit: RateLimitConfig = Field(default_factory=RateLimitConfig)
    proxy: ProxyConfig = Field(default_factory=ProxyConfig)
    forward_auth: ForwardAuthConfig = Field(default_factory=ForwardAuthConfig)
    console: ConsoleConfig = Field(default_factory=ConsoleConfig)
    providers: dict[ProviderId, ProviderConfig]
    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)

    @property
    def base_dir(self) -> Path:
        """Where relative paths in the configuration start: the config file's directory."""
        return self._base_dir

    @property
    def listen_host(self) -> str:
        """Host part of ``listen``."""
        return split_listen(self.listen)[0]

    @property
    def listen_port(self) -> int:
        """Port part of ``listen``."""
        return split_listen(self.listen)[1]

    @property
    def base_url(self) -> str:
        """``public_base_url`` without a trailing slash."""
        return self.public_base_url.rstrip("/")


def split_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        raise ValueError(f"listen must be HOST:PORT, got {listen!r}")
    return host.strip("[]"), int(port)
