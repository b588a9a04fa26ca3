"""From ``gateway.toml`` to the engine's settings: secrets read, issuer metadata fetched.

``GatewaySettings`` *is* the engine's ``ServerSettings`` (the engine runs on it unchanged) plus
what only a gateway needs; ``GatewayProviderSettings`` is ``ProviderSettings`` plus the upstream
``api_base``, the scope → route map and timeouts.

Development mode (``--dev``) without a configured secret key generates one and keeps it in a
file next to the SQLite database (``<database>.secret-key``, mode 0600), so provider tokens
encrypted before a restart still decrypt after it. It logs a loud warning at every start.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

import httpx
from pydantic import Field, SecretStr
from sqlalchemy.engine import make_url

from athkit.config import ConfigError, Problem, format_path, read_secret, resolve_path
from athkit.gateway._mcp import McpUpstreamConfig
from athkit.gateway._schema import (
    ConsoleConfig,
    GatewayConfig,
    ProviderConfig,
    ProxyConfig,
)
from athkit.protocol import ScopeRouteMap
from athkit.server import ApprovalRules, ProviderDescription, ProviderSettings, ServerSettings

_log = logging.getLogger("athkit.gateway")


class GatewayProviderSettings(ProviderSettings):
    """A provider of the gateway: the engine's provider settings plus the upstream API."""

    api_base: str
    routes: dict[str, list[str]]
    timeout: float = 30.0
    connect_timeout: float = 5.0
    max_connections: int = 100
    user_login_scopes: list[str] = Field(default_factory=lambda: ["openid"])
    mcp: McpUpstreamConfig | None = Field(
        default=None, description="The provider is an MCP server: its endpoint and tool scopes."
    )

    def route_map(self) -> ScopeRouteMap:
        """The parsed scope → route map (parse once, at start-up)."""
        return ScopeRouteMap.from_config(self.routes)


class GatewaySettings(ServerSettings):
    """The engine's settings plus the gateway's own."""

    mode: Literal["production", "development"] = "production"
    gateway_id: str = "ath-gateway"
    listen_host: str = "127.0.0.1"
    listen_port: int = 8080
    proxy: ProxyConfig = Field(default_factory=ProxyConfig)
    console: ConsoleConfig = Field(default_factory=ConsoleConfig)
    providers: list[GatewayProviderSettings] = Field(default_factory=list)  # type: ignore[assignment]


def metadata_url(issuer: str) -> str:
    """RFC 8414 §3: ``/.well-known/oauth-authorization-server`` inserted before the path."""
    parts = urlsplit(issuer.rstrip("/"))
    path = "/.well-known/oauth-authorization-server" + parts.path
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def fetch_issuer_metadata(issuer: str, *, timeout: float = 10.0) -> dict[str, object]:
    """Read and check an issuer's RFC 8414 metadata (a one-time call at start-up)."""
    url = metadata_url(issuer)
    try:
        response = httpx.get(url, timeout=timeout, follow_redirects=False)
    except httpx.HTTPError as exc:
        raise ValueError(f"cannot fetch {url}: {type(exc).__name__}: {exc}") from None
    if response.status_code != 200:
        raise ValueError(f"{url} answered HTTP {response.status_code}")
    try:
        data = response.json()
    except ValueError:
        raise ValueError(f"{url} did not answer JSON") from None
    if not isinstance(data, dict):
        raise ValueError(f"{url} did not answer a JSON object")
    # RFC 8414 §3.3: the issuer in the metadata must be the one asked for.
    if str(data.get("issuer", "")).rstrip("/") != issuer.rstrip("/"):
        raise ValueError(f"{url} names issuer {data.get('issuer')!r}, not {issuer!r}")
    return data


def probe_issuers(
    config: GatewayConfig, *, timeout: float = 5.0
) -> tuple[list[tuple[str, str]], list[Problem]]:
    """Fetch each provider issuer's RFC 8414 metadata as ``serve`` would at start-up.

    Returns ``(path, what was read)`` for each success, and a problem for each failure: an
    error when the provider's endpoints come from that metadata, else a warning.
    """
    read: list[tuple[str, str]] = []
    problems: list[Problem] = []
    for pid, provider in config.providers.items():
        if provider.issuer is None:
            continue
        at = f"{format_path(('providers', pid))}.issuer"
        try:
            metadata = fetch_issuer_metadata(provider.issuer, timeout=timeout)
        except ValueError as exc:
            needed = provider.authorization_endpoint is None or provider.token_endpoint is None
            problems.append(
                Problem(
                    at,
                    f"{exc}"
                    + (
                        " (the endpoints come from it: start the OAuth server or fix the URL)"
                        if needed
                        else " (the configured endpoints are used; the issuer is the consent "
                        "context's audience)"
                    ),
                    warning=not needed,
                )
            )
            continue
        endpoints = [k for k in ("authorization_endpoint", "token_endpoint") if k in metadata]
        read.append(
            (at, f"metadata read from {metadata_url(provider.issuer)} ({', '.join(endpoints)})")
        )
    return read, problems


def dev_secret_path(config: GatewayConfig) -> Path:
    """Where development mode keeps its generated secret key: next to the SQLite database."""
    try:
        url = make_url(config.database_url)
        database = url.database if url.get_backend_name() == "sqlite" else None
    except Exception:  # an unparsable URL is reported elsewhere
        database = None
    if database and database != ":memory:":
        db = resolve_path(database, config.base_dir)
        return db.with_name(db.name + ".secret-key")
    return config.base_dir / "ath-gateway.secret-key"


def database_url(config: GatewayConfig) -> str:
    """``database_url`` with a relative SQLite path made relative to the config file."""
    try:
        url = make_url(config.database_url)
    except Exception:
        return config.database_url
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        path = resolve_path(url.database, config.base_dir)
        return url.set(database=str(path)).render_as_string(hide_password=False)
    return config.database_url


def _dev_secret_key(config: GatewayConfig) -> str:
    path = dev_secret_path(config)
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    key = secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(key + "\n")
    return key


def resolve_settings(
    config: GatewayConfig, *, environ: Mapping[str, str] | None = None
) -> GatewaySettings:
    """Read the secrets, fetch issuer metadata and build the engine-ready settings.

    Raises :class:`ConfigError` listing what could not be resolved.
    """
    env = os.environ if environ is None else environ
    base = config.base_dir
    problems: list[Problem] = []
    secret_key = read_secret(config.secret_key_env, config.secret_key_file, env, base)
    if secret_key is None:
        if config.mode != "development":
            problems.append(Problem("secret_key_env", "production mode needs a secret key"))
        else:
            secret_key = _dev_secret_key(config)
            _log.warning(
                "DEVELOPMENT MODE: using a generated secret key from %s. Never run a "
                "production gateway like this.",
                dev_secret_path(config),
            )
    admin_token = read_secret(config.admin_token_env, config.admin_token_file, env, base)
    forward = config.forward_auth
    check_secret = read_secret(forward.secret_env, forward.secret_file, env, base)
    providers: list[GatewayProviderSettings] = []
    for pid, provider in config.providers.items():
        try:
            providers.append(_provider_settings(pid, provider, config.proxy, env, base))
        except ValueError as exc:
            problems.append(Problem(f"providers.{pid}", str(exc)))
    if problems or secret_key is None:
        raise ConfigError(problems)
    consent_key = (
        str(resolve_path(config.consent_signing_key_file, base))
        if config.consent_signing_key_file
        else None
    )
    return GatewaySettings(
        base_url=config.base_url,
        app_id=config.gateway_id,
        name=config.name,
        database_url=database_url(config),
        database_pool_size=config.database_pool_size,
        database_max_overflow=config.database_max_overflow,
        database_timeout=config.database_timeout_seconds,
        migrate_on_start=config.migrate_on_start,
        secret_key=SecretStr(secret_key),
        admin_token=SecretStr(admin_token) if admin_token else None,
        session_lifetime=config.session_lifetime,
        token_lifetime=config.token_lifetime,
        allow_loopback=config.verifier.allow_loopback,
        allow_private_networks=config.verifier.allow_private_networks,
        allow_http=config.verifier.allow_http,
        consent_signing_key=consent_key,
        max_body_bytes=config.max_body_bytes,
        mode=config.mode,
        gateway_id=config.gateway_id,
        redis_url=config.redis_url,
        redis_timeout=config.redis_timeout_seconds,
        listen_host=config.listen_host,
        listen_port=config.listen_port,
        rate_limit=config.rate_limit,
        forward_auth_secret=SecretStr(check_secret) if check_secret else None,
        proxy=config.proxy,
        console=config.console,
        providers=providers,
    )


def _provider_settings(
    pid: str,
    provider: ProviderConfig,
    proxy: ProxyConfig,
    env: Mapping[str, str],
    base: Path,
) -> GatewayProviderSettings:
    try:
        client_secret = read_secret(
            provider.client_secret_env, provider.client_secret_file, env, base
        )
    except OSError as exc:
        raise ValueError(f"cannot read the client secret: {exc}") from None
    if client_secret is None:
        raise ValueError("the client secret is not set")
    authorization_endpoint = provider.authorization_endpoint
    token_endpoint = provider.token_endpoint
    userinfo_endpoint = provider.userinfo_endpoint
    if provider.issuer is not None and (
        authorization_endpoint is None or token_endpoint is None or userinfo_endpoint is None
    ):
        try:
            metadata = fetch_issuer_metadata(provider.issuer)
        except ValueError as exc:
            if authorization_endpoint is None or token_endpoint is None:
                raise ValueError(f"issuer metadata: {exc}") from None
            metadata = {}
        authorization_endpoint = authorization_endpoint or _str(metadata, "authorization_endpoint")
        token_endpoint = token_endpoint or _str(metadata, "token_endpoint")
        userinfo_endpoint = userinfo_endpoint or _str(metadata, "userinfo_endpoint")
    if authorization_endpoint is None or token_endpoint is None:
        raise ValueError(
            "no authorization_endpoint/token_endpoint (nor issuer metadata naming them)"
        )
    # One description of a provider: the fields the TOML and the engine share are copied by
    # the models that define them, never one by one.
    described = provider.model_dump(include=set(ProviderDescription.model_fields))
    rules = provider.approval.model_dump(include=set(ApprovalRules.model_fields))
    described.update(
        # The issuer is also the audience of the signed ath_context: spelt as RFC 8414 §2
        # issuers are compared, without a trailing slash.
        issuer=provider.issuer.rstrip("/") if provider.issuer else None,
        authorization_endpoint=authorization_endpoint,
        token_endpoint=token_endpoint,
        userinfo_endpoint=userinfo_endpoint,
    )
    return GatewayProviderSettings(
        **described,
        **rules,
        provider_id=pid,
        client_secret=SecretStr(client_secret),
        approval_lifetime=timedelta(days=provider.approval.lifetime_days),
        api_base=provider.api_base.rstrip("/"),
        routes=provider.routes,
        timeout=provider.timeout_seconds or proxy.timeout_seconds,
        connect_timeout=provider.connect_timeout_seconds or proxy.connect_timeout_seconds,
        max_connections=provider.max_connections or proxy.max_connections,
        mcp=provider.mcp,
        user_login_scopes=provider.user_login_scopes,
    )


def _str(data: Mapping[str, object], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) and value else None
