"""The OAuth server's configuration: built in Python, or read from a TOML file.

Secrets never sit in a config file as plain text: users carry scrypt password hashes, clients a
SHA-256 secret hash, or the name of an environment variable or file holding the secret. Python
callers (tests, the demo) may pass a client's plain ``client_secret``; it is hashed
on validation and the plain text is dropped.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from athkit.config import (
    ConfigError,
    Problem,
    apply_env_overrides,
    describe,
    format_path,
    read_secret,
    read_toml,
    resolve_path,
    secret_problems,
)
from athkit.config._problems import noted
from athkit.oauthserver._passwords import check_password_hash_format
from athkit.protocol import ATHError, PublicKey, hash_secret, load_public_key

logger = logging.getLogger("athkit.oauthserver")

ENV_PREFIX = "ATH_OAUTH__"
_SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]{1,128}$")  # RFC 6749 §3.3 scope-token
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class UserConfig(_Model):
    """A person who can log in."""

    username: str = Field(min_length=1, max_length=128)
    password_hash: str
    sub: str = Field(min_length=1, max_length=255, description="stable user id")
    name: str = Field(min_length=1, max_length=255)
    email: str | None = Field(default=None, max_length=320)

    @field_validator("password_hash")
    @classmethod
    def _well_formed(cls, value: str) -> str:
        check_password_hash_format(value)
        return value


class ClientConfig(_Model):
    """A registered OAuth client (confidential: it authenticates with a secret)."""

    client_id: str = Field(min_length=1, max_length=255)
    name: str = Field(min_length=1, max_length=255)
    redirect_uris: list[str] = Field(min_length=1)
    scopes: list[str] = Field(description="scopes this client may request")
    client_secret_hash: str | None = Field(default=None, description="SHA-256 hex of the secret")
    client_secret_env: str | None = None
    client_secret_file: Path | None = None
    client_secret: str | None = Field(default=None, exclude=True, repr=False)
    ath_context_key: dict[str, Any] | str | None = Field(
        default=None, description="public key (JWK or PEM) that signs this client's ath_context"
    )
    introspection: bool = Field(default=False, description="may call POST /introspect")

    _secret_hash: str = PrivateAttr(default="")
    _context_key: PublicKey | None = PrivateAttr(default=None)

    @field_validator("redirect_uris")
    @classmethod
    def _absolute_uris(cls, uris: list[str]) -> list[str]:
        for uri in uris:
            parts = urlsplit(uri)
            # RFC 6749 §3.1.2: absolute URI, no fragment.
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment:
                raise ValueError(f"redirect URI {uri!r} must be an absolute http(s) URI")
        return uris

    @model_validator(mode="after")
    def _resolve(self) -> ClientConfig:
        sources = [
            s
            for s in (
                self.client_secret_hash,
                self.client_secret_env,
                self.client_secret_file,
                self.client_secret,
            )
            if s is not None
        ]
        if len(sources) != 1:
            raise ValueError(
                f"client {self.client_id!r}: give exactly one of client_secret_hash, "
                "client_secret_env, client_secret_file or (from Python) client_secret"
            )
        if self.client_secret_hash is not None:
            if not _SHA256_HEX.fullmatch(self.client_secret_hash):
                raise ValueError("client_secret_hash must be a lower-case SHA-256 hex digest")
            self._secret_hash = self.client_secret_hash
        elif self.client_secret_env is not None or self.client_secret_file is not None:
            self._secret_hash = hash_secret(self._read_secret())
        else:
            assert self.client_secret is not None
            if len(self.client_secret) < 16:
                raise ValueError("client_secret must be at least 16 characters")
            self._secret_hash = hash_secret(self.client_secret)
        if self.ath_context_key is not None:
            try:
                self._context_key = load_public_key(self.ath_context_key)
            except ATHError as exc:
                raise ValueError(f"ath_context_key: {exc.message}") from None
        return self

    def _read_secret(self) -> str:
        # The *_env / *_file pair, read the way every athkit configuration reads secrets.
        for problem in secret_problems(
            "client_secret", self.client_secret_env, self.client_secret_file, os.environ, Path()
        ):
            raise ValueError(problem.message)
        value = read_secret(self.client_secret_env, self.client_secret_file, os.environ, Path())
        assert value is not None  # secret_problems reported unset and empty values
        return value

    @property
    def secret_hash(self) -> str:
        """SHA-256 hex of the client secret."""
        return self._secret_hash

    @property
    def context_key(self) -> PublicKey | None:
        """The parsed ``ath_context_key``, if any."""
        return self._context_key


class OAuthServerConfig(_Model):
    """Everything the OAuth server needs; see the README section "The OAuth server"."""

    issuer: str = Field(description="public base URL, e.g. http://127.0.0.1:8400")
    database_url: str = "sqlite:///ath-oauth.db"
    secret_key: str | None = Field(default=None, repr=False, description="cookie signing key")
    secret_key_env: str | None = None
    secret_key_file: Path | None = None
    cookie_name: str = Field(default="athoauth_session", pattern=r"^[A-Za-z0-9_\-]{1,64}$")
    code_lifetime: int = Field(default=60, ge=1, le=600)
    access_token_lifetime: int = Field(default=3600, ge=1, le=86400)
    refresh_token_lifetime: int = Field(default=14 * 86400, ge=60)
    session_lifetime: int = Field(default=8 * 3600, ge=60, description="login session, seconds")
    request_lifetime: int = Field(default=600, ge=10, le=3600, description="login+consent time")
    login_max_failures: int = Field(default=5, ge=1, description="failed sign-ins per window")
    login_failure_window: int = Field(default=300, ge=1, description="seconds")
    scopes: dict[str, str] = Field(description="scope name → description shown to users")
    users: list[UserConfig] = Field(default_factory=list)
    clients: list[ClientConfig] = Field(default_factory=list)

    _signing_key: bytes = PrivateAttr(default=b"")

    @field_validator("issuer")
    @classmethod
    def _issuer_url(cls, value: str) -> str:
        parts = urlsplit(value)
        # RFC 8414 §2: https URL without query or fragment (http allowed for loopback/dev).
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("issuer must be an absolute http(s) URL")
        if parts.query or parts.fragment:
            raise ValueError("issuer must not have a query or fragment")
        return value.rstrip("/")

    @field_validator("scopes")
    @classmethod
    def _scope_names(cls, scopes: dict[str, str]) -> dict[str, str]:
        for name in scopes:
            if not _SCOPE_TOKEN.fullmatch(name):
                raise ValueError(f"scope {name!r} is not a valid RFC 6749 scope token")
        return scopes

    @model_validator(mode="after")
    def _consistent(self) -> OAuthServerConfig:
        seen_users: set[str] = set()
        seen_subs: set[str] = set()
        for user in self.users:
            if user.username in seen_users or user.sub in seen_subs:
                raise ValueError(f"user {user.username!r}: username and sub must be unique")
            seen_users.add(user.username)
            seen_subs.add(user.sub)
        seen_clients: set[str] = set()
        for client in self.clients:
            if client.client_id in seen_clients:
                raise ValueError(f"client_id {client.client_id!r} appears twice")
            seen_clients.add(client.client_id)
            unknown = [s for s in client.scopes if s not in self.scopes]
            if unknown:
                raise ValueError(f"client {client.client_id!r} lists unknown scopes {unknown}")
        given = [self.secret_key, self.secret_key_env, self.secret_key_file]
        if sum(value is not None for value in given) > 1:
            raise ValueError("give one of secret_key, secret_key_env or secret_key_file")
        key = self.secret_key
        if self.secret_key_env is not None or self.secret_key_file is not None:
            for problem in secret_problems(
                "secret_key", self.secret_key_env, self.secret_key_file, os.environ, Path()
            ):
                raise ValueError(f"{problem.path}: {problem.message}")
            key = read_secret(self.secret_key_env, self.secret_key_file, os.environ, Path())
        if key is None:
            logger.warning(
                "oauth server: no secret_key configured; generated a random one, so login "
                "sessions end when the server restarts"
            )
            self._signing_key = secrets.token_bytes(32)
        else:
            if len(key) < 32:
                raise ValueError("secret_key must be at least 32 characters")
            self._signing_key = key.encode("utf-8")
        return self

    @classmethod
    def from_toml(
        cls, path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None
    ) -> OAuthServerConfig:
        """Load a TOML config file; relative ``client_secret_file`` paths are from its folder.

        Any key can be overridden from the environment as ``ATH_OAUTH__`` plus its path in
        upper case (``ATH_OAUTH__ISSUER``, ``ATH_OAUTH__ACCESS_TOKEN_LIFETIME=600``), as for the
        gateway (``athkit.config``).

        Plain ``client_secret`` values are refused in files: use a hash, an env var or a file.
        """
        source = Path(path)
        data = read_toml(source)
        apply_env_overrides(data, os.environ if environ is None else environ, ENV_PREFIX)
        problems = _file_rules(data, source.parent)
        if problems:
            raise ConfigError(problems)
        return cls.model_validate(data)

    @property
    def signing_key(self) -> bytes:
        """The key that signs session cookies."""
        return self._signing_key

    @property
    def secure_cookies(self) -> bool:
        """Cookies get ``Secure`` when the issuer is https."""
        return self.issuer.startswith("https://")

    def client(self, client_id: str) -> ClientConfig | None:
        """The client registered under ``client_id``."""
        for client in self.clients:
            if client.client_id == client_id:
                return client
        return None

    def user_by_name(self, username: str) -> UserConfig | None:
        """The user who logs in as ``username``."""
        for user in self.users:
            if user.username == username:
                return user
        return None

    def user_by_sub(self, sub: str) -> UserConfig | None:
        """The user whose stable id is ``sub``."""
        for user in self.users:
            if user.sub == sub:
                return user
        return None


def _file_rules(data: dict[str, Any], base_dir: Path) -> list[Problem]:
    """What a config file may not hold (plain secrets), and its relative paths made absolute."""
    problems: list[Problem] = []
    for i, client in enumerate(data.get("clients", [])):
        if not isinstance(client, dict):
            continue
        if "client_secret" in client:
            problems.append(
                Problem(
                    f"clients[{i}].client_secret",
                    "a config file must not hold a plain client_secret; use "
                    "client_secret_hash, client_secret_env or client_secret_file",
                )
            )
        file = client.get("client_secret_file")
        if isinstance(file, str):
            client["client_secret_file"] = str(resolve_path(file, base_dir))
    if "secret_key" in data:
        problems.append(
            Problem("secret_key", "a config file must not hold secret_key; use secret_key_file")
        )
    if isinstance(data.get("secret_key_file"), str):
        data["secret_key_file"] = str(resolve_path(data["secret_key_file"], base_dir))
    return problems


def check_oauth_config(
    path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None
) -> tuple[OAuthServerConfig | None, list[Problem]]:
    """Everything wrong with an OAuth server config file, in the format of ``ath gateway
    check``: ``(config or None, problems and warnings)``."""
    env = os.environ if environ is None else environ
    source = Path(path)
    try:
        data = read_toml(source)
    except ConfigError as exc:
        return None, exc.problems
    applied = apply_env_overrides(data, env, ENV_PREFIX)
    problems = _file_rules(data, source.parent)
    config: OAuthServerConfig | None = None
    try:
        config = OAuthServerConfig.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            where = format_path(err["loc"])
            message = describe(err, OAuthServerConfig)
            if not where and ": " in message and message.split(": ", 1)[0].isidentifier():
                where, message = message.split(": ", 1)  # a model rule naming its key
            problems.append(Problem(where, message))
    if config is not None:
        if config.secret_key_env is None and config.secret_key_file is None:
            problems.append(
                Problem(
                    "secret_key_file",
                    "not set: a random key signs sign-in sessions, so they end whenever the "
                    "server restarts",
                    warning=True,
                )
            )
        if not config.users:
            problems.append(Problem("users", "no [[users]]: nobody can sign in", warning=True))
        for i, client in enumerate(config.clients):
            if client.ath_context_key is None:
                problems.append(
                    Problem(
                        f"clients[{i}].ath_context_key",
                        f"not set: the consent page for {client.client_id!r} cannot name the "
                        "agent (an ATH gateway prints it: ath gateway consent-key)",
                        warning=True,
                    )
                )
    printed = noted(problems, applied)
    return (config if not [p for p in printed if not p.warning] else None), printed
