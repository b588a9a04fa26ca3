"""The gateway's configuration file (``gateway.toml``), environment overrides, and validation.

The file is TOML. Every key can be overridden by an environment variable named
``ATH_GATEWAY__`` followed by the key path in upper case, segments joined by ``__``::

    database_url                     ATH_GATEWAY__DATABASE_URL
    rate_limit.requests              ATH_GATEWAY__RATE_LIMIT__REQUESTS
    providers.mail.client_id         ATH_GATEWAY__PROVIDERS__MAIL__CLIENT_ID

Segments match existing keys case-insensitively, with ``_`` also matching ``-`` (so
``PROVIDERS__GOOGLE_MAIL`` reaches ``[providers.google-mail]``). A value that starts with ``[``,
``{`` or ``"`` is read as JSON (lists, tables, quoted strings); anything else is a string that the
schema converts (``"30"`` → 30, ``"true"`` → True).

Secrets never sit in the file: the secret key, the admin token and each provider's client secret
are named by ``*_env`` (an environment variable holding the value) or ``*_file`` (a file holding
it). :func:`load_config` reads and checks everything and raises :class:`ConfigError` listing every
problem with its key path, so ``ath gateway check`` can print them line by line.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from athkit.gateway._mcp import McpUpstreamConfig
from athkit.protocol import RouteRule
from athkit.server import RateLimitSettings

ENV_PREFIX = "ATH_GATEWAY__"

PositiveSeconds = Annotated[float, Field(gt=0, le=3600)]
ProviderId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.\-]+$")]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _empty_means_unset(cls, value: Any, info: ValidationInfo) -> Any:
        # ATH_GATEWAY__SECRET_KEY_ENV="" switches a secret reference off.
        name = info.field_name or ""
        if value == "" and name.endswith(("_env", "_file")):
            return None
        return value


class ApprovalConfig(_Section):
    """``[providers.<id>.approval]``: the app-side approval policy of one provider (ATH §4.1)."""

    auto_approve: list[str] = Field(
        default_factory=list, description="Scopes approved at registration, without review."
    )
    review: list[str] = Field(
        default_factory=list,
        description="Scopes an operator approves or denies through the admin API ('pending').",
    )
    never: list[str] = Field(default_factory=list, description="Scopes never granted to agents.")
    allowed_agent_domains: list[str] | None = Field(
        default=None, description="When set, only agents whose agent_id host is listed."
    )
    denied_agent_domains: list[str] = Field(default_factory=list)
    lifetime_days: Annotated[float, Field(gt=0, le=3650)] = 90
    approve_while_reviewing: bool = Field(
        default=False,
        description="Let an agent use its auto-approved scopes while its review scopes wait "
        "for the operator (otherwise any review scope keeps it 'pending').",
    )


class ProviderConfig(_Section):
    """``[providers.<id>]``: one upstream service behind the gateway."""

    display_name: Annotated[str, Field(min_length=1, max_length=256)]
    categories: list[str] = Field(default_factory=list)
    issuer: str | None = Field(
        default=None,
        description="OAuth issuer; endpoints not given here are read from its RFC 8414 metadata.",
    )
    authorization_endpoint: str | None = None
    token_endpoint: str | None = None
    userinfo_endpoint: str | None = None
    user_id_field: str = "sub"
    client_id: Annotated[str, Field(min_length=1)]
    client_secret_env: str | None = None
    client_secret_file: str | None = None
    scopes: list[str] = Field(description="Every scope the provider offers to agents.")
    resource: str | None = None
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
        return _split_listen(self.listen)[0]

    @property
    def listen_port(self) -> int:
        """Port part of ``listen``."""
        return _split_listen(self.listen)[1]

    @property
    def base_url(self) -> str:
        """``public_base_url`` without a trailing slash."""
        return self.public_base_url.rstrip("/")


# --- problems ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a configuration, at a key path (``providers.mail.client_id``)."""

    path: str
    message: str
    warning: bool = False

    def __str__(self) -> str:
        kind = "warning" if self.warning else "error"
        where = f"{self.path}: " if self.path else ""
        return f"{kind}: {where}{self.message}"


class ConfigError(Exception):
    """A configuration that cannot be used; ``problems`` lists every reason."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


_BARE_KEY = re.compile(r"^[A-Za-z0-9_\-]+$")


def format_path(loc: tuple[str | int, ...] | list[str | int]) -> str:
    """A key path as TOML spells it: ``providers.mail.routes."mail:read"[1]``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        key = part if _BARE_KEY.match(part) else '"' + part.replace('"', '\\"') + '"'
        out = f"{out}.{key}" if out else key
    return out


# --- loading ----------------------------------------------------------------------------------


def _norm(key: str) -> str:
    return key.lower().replace("-", "_")


def apply_env_overrides(
    data: dict[str, Any], environ: Mapping[str, str]
) -> dict[str, tuple[str | int, ...]]:
    """Apply ``ATH_GATEWAY__...`` variables onto ``data`` in place.

    Returns which variable set which key path, so problems can name the variable.
    """
    applied: dict[str, tuple[str | int, ...]] = {}
    for name in sorted(environ):
        if not name.upper().startswith(ENV_PREFIX):
            continue
        segments = [s for s in name[len(ENV_PREFIX) :].split("__")]
        if not segments or any(not s for s in segments):
            continue
        node: dict[str, Any] = data
        path: list[str | int] = []
        for i, seg in enumerate(segments):
            key = next((k for k in node if _norm(k) == _norm(seg)), seg.lower())
            path.append(key)
            if i == len(segments) - 1:
                node[key] = _env_value(environ[name])
            else:
                child = node.get(key)
                if not isinstance(child, dict):
                    child = {}
                    node[key] = child
                node = child
        applied[name] = tuple(path)
    return applied


def _env_value(raw: str) -> Any:
    import json

    stripped = raw.strip()
    if stripped[:1] in ("[", "{", '"'):
        try:
            return json.loads(stripped)
        except ValueError:
            return raw
    return raw


def read_config_data(
    path: str | Path | None, environ: Mapping[str, str] | None = None
) -> tuple[dict[str, Any], dict[str, tuple[str | int, ...]]]:
    """The raw TOML of ``path`` (empty without a file) with environment overrides applied."""
    env = os.environ if environ is None else environ
    data: dict[str, Any] = {}
    if path is not None:
        file = Path(path)
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError([Problem("", f"cannot read {file}: {exc.strerror or exc}")]) from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError([Problem("", f"{file} is not valid TOML: {exc}")]) from None
    applied = apply_env_overrides(data, env)
    return data, applied


def load_config(
    path: str | Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    mode: Literal["production", "development"] | None = None,
) -> GatewayConfig:
    """Read, override from the environment and validate a configuration.

    ``mode`` (the CLI's ``--dev``) wins over the file. Raises :class:`ConfigError` with every
    problem found; warnings alone do not raise (see :func:`check_config`).
    """
    config, problems = check_config(path, environ=environ, mode=mode)
    errors = [p for p in problems if not p.warning]
    if errors or config is None:
        raise ConfigError(errors or problems)
    return config


def config_from_mapping(
    data: Mapping[str, Any], *, environ: Mapping[str, str] | None = None
) -> GatewayConfig:
    """Validate an in-memory configuration (same rules as a file; for embedding and tests)."""
    config, problems = _validate(
        dict(data), {}, os.environ if environ is None else environ, base_dir=Path.cwd()
    )
    errors = [p for p in problems if not p.warning]
    if errors or config is None:
        raise ConfigError(errors or problems)
    return config


def check_config(
    path: str | Path | None,
    *,
    environ: Mapping[str, str] | None = None,
    mode: Literal["production", "development"] | None = None,
) -> tuple[GatewayConfig | None, list[Problem]]:
    """Everything wrong with a configuration: ``(config or None, problems and warnings)``."""
    env = os.environ if environ is None else environ
    try:
        data, applied = read_config_data(path, env)
    except ConfigError as exc:
        return None, exc.problems
    if mode is not None:
        data["mode"] = mode
    base_dir = Path(path).resolve().parent if path is not None else Path.cwd()
    return _validate(data, applied, env, base_dir=base_dir)


def _validate(
    data: dict[str, Any],
    applied: dict[str, tuple[str | int, ...]],
    env: Mapping[str, str],
    *,
    base_dir: Path,
) -> tuple[GatewayConfig | None, list[Problem]]:
    by_path = {format_path(loc): name for name, loc in applied.items()}

    def note(path: str) -> str:
        for prefix, name in by_path.items():
            if path == prefix or path.startswith(prefix + ".") or path.startswith(prefix + "["):
                return f" (set by {name})"
        return ""

    problems: list[Problem] = []
    config: GatewayConfig | None = None
    try:
        config = GatewayConfig.model_validate(data)
    except ValidationError as exc:
        bad_paths = []
        for err in exc.errors(include_url=False):
            bad_paths.append(format_path(err["loc"]))
            problems.append(Problem(bad_paths[-1], _describe(err)))
        # Check the rest too, so that one run shows everything: drop the bad keys (defaults
        # apply) and validate again, keeping only problems elsewhere.
        raw_providers = data.get("providers")
        if isinstance(raw_providers, dict):
            for pid, raw in raw_providers.items():
                try:
                    provider = ProviderConfig.model_validate(raw)
                except ValidationError:
                    continue
                problems.extend(_provider_problems(str(pid), provider, env, base_dir))
        partial = _without_bad_keys(data, exc)
        if partial is not None:
            for p in _gateway_problems(partial, env, base_dir):
                if not any(_under(p.path, bad) for bad in bad_paths):
                    problems.append(p)
    else:
        config._base_dir = base_dir
        problems.extend(_gateway_problems(config, env, base_dir))
    problems = [Problem(p.path, p.message + note(p.path), p.warning) for p in problems]
    return config, _dedupe(problems)


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith((prefix + ".", prefix + "["))


def _without_bad_keys(data: dict[str, Any], exc: ValidationError) -> GatewayConfig | None:
    import copy

    trimmed = copy.deepcopy(data)
    dropped: set[tuple[str | int, ...]] = set()
    for _ in range(5):
        for err in exc.errors(include_url=False):
            loc = list(err["loc"])
            # A provider with a bad field is dropped whole: its own checks ran above.
            if len(loc) >= 2 and loc[0] == "providers":
                loc = loc[:2]
            if tuple(loc) in dropped:
                continue
            dropped.add(tuple(loc))
            node: Any = trimmed
            for part in loc[:-1]:
                node = node.get(part) if isinstance(node, dict) else None
            if isinstance(node, dict) and loc and loc[-1] in node:
                del node[loc[-1]]
            elif err["type"] == "missing" and loc == ["public_base_url"]:
                trimmed["public_base_url"] = "https://missing.invalid"
            elif err["type"] == "missing" and loc == ["providers"]:
                trimmed["providers"] = {}
            else:
                return None
        try:
            return GatewayConfig.model_validate(trimmed)
        except ValidationError as again:
            exc = again
    return None


def _dedupe(problems: list[Problem]) -> list[Problem]:
    seen: set[tuple[str, str]] = set()
    out = []
    for p in problems:
        if (p.path, p.message) not in seen:
            seen.add((p.path, p.message))
            out.append(p)
    return out


def _describe(err: Any) -> str:
    if err["type"] == "missing":
        return "required but missing"
    if err["type"] == "extra_forbidden":
        return "unknown key (misspelt?)"
    return str(err["msg"])


# --- semantic checks --------------------------------------------------------------------------


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
        host = _split_listen(listen)[0]
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


def _split_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        raise ValueError(f"listen must be HOST:PORT, got {listen!r}")
    return host.strip("[]"), int(port)


def _secret_problems(
    path: str, env_name: str | None, file_name: str | None, env: Mapping[str, str], base_dir: Path
) -> Iterator[Problem]:
    if env_name is not None and file_name is not None:
        yield Problem(path, f"give only one of {path}_env and {path}_file")
        return
    if env_name is not None:
        if not env.get(env_name):
            yield Problem(f"{path}_env", f"environment variable {env_name} is not set or empty")
    elif file_name is not None:
        file = resolve_path(file_name, base_dir)
        try:
            if not file.read_text(encoding="utf-8").strip():
                yield Problem(f"{path}_file", f"{file} is empty")
        except OSError as exc:
            yield Problem(f"{path}_file", f"cannot read {file}: {exc.strerror or exc}")


def read_secret(
    env_name: str | None, file_name: str | None, env: Mapping[str, str], base_dir: Path
) -> str | None:
    """The value named by a ``*_env`` / ``*_file`` pair, or ``None`` when neither is set."""
    if env_name is not None:
        return env.get(env_name) or None
    if file_name is not None:
        return resolve_path(file_name, base_dir).read_text(encoding="utf-8").strip() or None
    return None


def resolve_path(name: str, base_dir: Path) -> Path:
    """A path from the configuration; relative ones are relative to the config file."""
    path = Path(name).expanduser()
    return path if path.is_absolute() else base_dir / path


def _gateway_problems(
    config: GatewayConfig, env: Mapping[str, str], base_dir: Path
) -> list[Problem]:
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
        _split_listen(config.listen)
    except ValueError as exc:
        out.append(Problem("listen", str(exc)))
    out.extend(
        _secret_problems("secret_key", config.secret_key_env, config.secret_key_file, env, base_dir)
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
        key = _safe_read(config.secret_key_env, config.secret_key_file, env, base_dir)
        if key is not None and len(key) < 32:
            out.append(Problem("secret_key", "the secret key must be at least 32 characters"))
    out.extend(
        _secret_problems(
            "admin_token", config.admin_token_env, config.admin_token_file, env, base_dir
        )
    )
    if config.admin_token_env is None and config.admin_token_file is None:
        out.append(
            Problem("admin_token_env", "no admin token configured: the admin API is off", True)
        )
    else:
        token = _safe_read(config.admin_token_env, config.admin_token_file, env, base_dir)
        if token is not None and len(token) < 32:
            out.append(Problem("admin_token", "the admin token must be at least 32 characters"))
    forward = config.forward_auth
    out.extend(
        _secret_problems(
            "forward_auth.secret", forward.secret_env, forward.secret_file, env, base_dir
        )
    )
    check_secret = _safe_read(forward.secret_env, forward.secret_file, env, base_dir)
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
            out.append(Problem("consent_signing_key_file", f"{file} does not exist"))
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
        out.extend(_provider_problems(pid, provider, env, base_dir))
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


def _safe_read(
    env_name: str | None, file_name: str | None, env: Mapping[str, str], base_dir: Path
) -> str | None:
    try:
        return read_secret(env_name, file_name, env, base_dir)
    except OSError:
        return None


def _provider_problems(
    pid: str, provider: ProviderConfig, env: Mapping[str, str], base_dir: Path
) -> list[Problem]:
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
        _secret_problems(
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
    approval = provider.approval
    for name in ("auto_approve", "review", "never"):
        unknown = [s for s in getattr(approval, name) if s not in offered]
        if unknown:
            out.append(Problem(f"{at}.approval.{name}", f"scopes not in {at}.scopes: {unknown}"))
    both = sorted(set(approval.auto_approve) & set(approval.review))
    if both:
        out.append(
            Problem(f"{at}.approval.review", f"scopes both auto-approved and reviewed: {both}")
        )
    return out
