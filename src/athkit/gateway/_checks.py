"""What ``gateway.toml`` must satisfy beyond its schema: URLs, secrets that resolve, a database
URL we can open, and per provider its endpoints, scopes, routes and approval rules."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from athkit.config import Problem, format_path, resolve_path, safe_read_secret, secret_problems
from athkit.gateway._schema import GatewayConfig, ProviderConfig, split_listen
from athkit.protocol import RouteRule


def _is_http_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _is_loopback_host(host: str | None) -> bool:
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _internal_listen(listen: str) -> bool:
    try:
        host = split_listen(listen)[0]
    except ValueError:
        return True  # reported as an error elsewhere
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    # 0.0.0.0 and :: listen on every interface (Python counts 0.0.0.0 as "private").
    return not address.is_unspecified and (address.is_loopback or address.is_private)


def gateway_problems(
    config: GatewayConfig, env: Mapping[str, str], base_dir: Path
) -> list[Problem]:
    """Everything wrong with a schema-valid configuration: top level, then each provider."""
    out: list[Problem] = []
    production = config.mode == "production"
    if not _is_http_url(config.public_base_url):
        out.append(Problem("public_base_url", "must be an http(s) URL such as https://gw.example"))
    elif (
        production
        and urlsplit(config.public_base_url).scheme != "https"
        and not _is_loopback_host(urlsplit(config.public_base_url).hostname)
    ):
        out.append(Problem("public_base_url", "must be https in production mode (ATH §6)"))
    try:
        split_listen(config.listen)
    except ValueError as exc:
        out.append(Problem("listen", str(exc)))
    out.extend(
        secret_problems("secret_key", config.secret_key_env, config.secret_key_file, env, base_dir)
    )
    if config.secret_key_env is None and config.secret_key_file is None:
        if production:
            out.append(
                Problem(
                    "secret_key_env",
                    "production mode needs a secret key: set secret_key_env or secret_key_file "
                    "(or run with --dev to generate a development key)",
                )
            )
        else:
            out.append(
                Problem(
                    "secret_key_env",
                    "no secret key configured: development mode generates one next to the database",
                    warning=True,
                )
            )
    else:
        key = safe_read_secret(config.secret_key_env, config.secret_key_file, env, base_dir)
        if key is not None and len(key) < 32:
            out.append(Problem("secret_key", "the secret key must be at least 32 characters"))
    out.extend(
        secret_problems(
            "admin_token", config.admin_token_env, config.admin_token_file, env, base_dir
        )
    )
    if config.admin_token_env is None and config.admin_token_file is None:
        out.append(
            Problem("admin_token_env", "no admin token configured: the admin API is off", True)
        )
    else:
        token = safe_read_secret(config.admin_token_env, config.admin_token_file, env, base_dir)
        if token is not None and len(token) < 32:
            out.append(Problem("admin_token", "the admin token must be at least 32 characters"))
    forward = config.forward_auth
    out.extend(
        secret_problems(
            "forward_auth.secret", forward.secret_env, forward.secret_file, env, base_dir
        )
    )
    check_secret = safe_read_secret(forward.secret_env, forward.secret_file, env, base_dir)
    if check_secret is not None and len(check_secret) < 32:
        out.append(
            Problem("forward_auth.secret", "the forward-auth secret must be at least 32 characters")
        )
    if (forward.secret_env or forward.secret_file) and not _internal_listen(config.listen):
        out.append(
            Problem(
                "listen",
                "with [forward_auth], bind athkit where only your proxy reaches it (loopback or "
                "a private address): agents must go through the proxy",
                warning=True,
            )
        )
    if config.consent_signing_key_file is not None:
        file = resolve_path(config.consent_signing_key_file, base_dir)
        if not file.is_file():
            out.append(
                Problem(
                    "consent_signing_key_file",
                    f"{file} does not exist (create it: ath gateway consent-key --generate)",
                )
            )
    else:
        out.append(
            Problem(
                "consent_signing_key_file",
                "not set: users will consent on a page that does not name the agent or its "
                "developer; create a key with `ath gateway consent-key --generate` and give its "
                "public half to each provider's OAuth server (ath_context_key)",
                warning=True,
            )
        )
    if config.rate_limit.backend == "redis" and not (
        config.rate_limit.redis_url or config.redis_url
    ):
        out.append(
            Problem(
                "rate_limit.redis_url", "redis_url is required when rate_limit.backend = 'redis'"
            )
        )
    if config.rate_limit.backend == "memory" and (config.rate_limit.redis_url or config.redis_url):
        out.append(
            Problem(
                "rate_limit.backend",
                "'memory' counts per instance: N instances allow N times the limit (leave it "
                "unset to count in Redis)",
                True,
            )
        )
    if not (config.database_url.startswith("memory:") or _sql_url_ok(config.database_url)):
        out.append(
            Problem(
                "database_url",
                "use sqlite:///FILE, postgresql://USER@HOST/DB (or memory:// for tests)",
            )
        )
    verifier = config.verifier
    for flag in ("allow_loopback", "allow_private_networks", "allow_http"):
        if getattr(verifier, flag) and production:
            out.append(
                Problem(
                    f"verifier.{flag}",
                    "weakens identity-document fetching (SSRF guard); meant for development",
                    warning=True,
                )
            )
    if not config.providers:
        out.append(Problem("providers", "at least one provider is required"))
    for pid, provider in config.providers.items():
        out.extend(provider_problems(pid, provider, env, base_dir))
    if config.mode == "development":
        out.append(Problem("mode", "development mode: not for production use", warning=True))
    return out


def _sql_url_ok(url: str) -> bool:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        backend = make_url(url).get_backend_name()
    except (ArgumentError, ValueError):
        return False
    return backend in ("sqlite", "postgresql")


def provider_problems(
    pid: str, provider: ProviderConfig, env: Mapping[str, str], base_dir: Path
) -> list[Problem]:
    """Everything wrong with ``[providers.<pid>]`` beyond its schema."""
    at = format_path(("providers", pid))
    out: list[Problem] = []
    if provider.issuer is None and (
        provider.authorization_endpoint is None or provider.token_endpoint is None
    ):
        out.append(
            Problem(
                f"{at}.issuer",
                "give an issuer (RFC 8414 metadata) or both authorization_endpoint and "
                "token_endpoint",
            )
        )
    for field in (
        "issuer",
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "api_base",
    ):
        value = getattr(provider, field)
        if value is not None and not _is_http_url(value):
            out.append(Problem(f"{at}.{field}", f"must be an http(s) URL, got {value!r}"))
    if provider.client_secret_env is None and provider.client_secret_file is None:
        out.append(
            Problem(f"{at}.client_secret_env", "set client_secret_env or client_secret_file")
        )
    out.extend(
        secret_problems(
            f"{at}.client_secret",
            provider.client_secret_env,
            provider.client_secret_file,
            env,
            base_dir,
        )
    )
    offered = set(provider.scopes)
    if not provider.scopes:
        out.append(Problem(f"{at}.scopes", "list at least one scope"))
    for scope, entries in provider.routes.items():
        where = format_path(("providers", pid, "routes", scope))
        if scope not in offered:
            out.append(Problem(where, f"scope {scope!r} is not in {at}.scopes"))
        for i, entry in enumerate(entries):
            methods, sep, pattern = entry.strip().partition(" ")
            if not sep:
                out.append(Problem(f"{where}[{i}]", f"{entry!r} must be 'METHODS /path'"))
                continue
            try:
                RouteRule.parse(methods.split(","), pattern.strip())
            except ValueError as exc:
                out.append(Problem(f"{where}[{i}]", str(exc)))
    mcp_scopes = set(provider.mcp.tools) if provider.mcp is not None else set()
    for scope in mcp_scopes - offered:
        out.append(Problem(f"{at}.mcp.tools", f"scope {scope!r} is not in {at}.scopes"))
    for scope in provider.scopes:
        if scope not in provider.routes and scope not in mcp_scopes:
            out.append(
                Problem(
                    f"{at}.routes",
                    f"scope {scope!r} has no routes, so a token holding it allows no call",
                    warning=True,
                )
            )
    for name, message in provider.approval.rule_problems(provider.scopes, f"{at}.scopes"):
        out.append(Problem(f"{at}.approval.{name}", message))
    return out
