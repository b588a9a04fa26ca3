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

import copy
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from athkit.config import (
    ConfigError,
    Problem,
    apply_env_overrides,
    describe,
    format_path,
    read_toml,
    under,
)
from athkit.config._problems import noted
from athkit.gateway._checks import gateway_problems, provider_problems
from athkit.gateway._schema import GatewayConfig, ProviderConfig

ENV_PREFIX = "ATH_GATEWAY__"


def read_config_data(
    path: str | Path | None, environ: Mapping[str, str] | None = None
) -> tuple[dict[str, Any], dict[str, tuple[str | int, ...]]]:
    """The raw TOML of ``path`` (empty without a file) with environment overrides applied."""
    env = os.environ if environ is None else environ
    data: dict[str, Any] = read_toml(path) if path is not None else {}
    applied = apply_env_overrides(data, env, ENV_PREFIX)
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
    problems: list[Problem] = []
    config: GatewayConfig | None = None
    try:
        config = GatewayConfig.model_validate(data)
    except ValidationError as exc:
        bad_paths = []
        for err in exc.errors(include_url=False):
            bad_paths.append(format_path(err["loc"]))
            problems.append(Problem(bad_paths[-1], describe(err, GatewayConfig)))
        # Check the rest too, so that one run shows everything: drop the bad keys (defaults
        # apply) and validate again, keeping only problems elsewhere.
        raw_providers = data.get("providers")
        if isinstance(raw_providers, dict):
            for pid, raw in raw_providers.items():
                try:
                    provider = ProviderConfig.model_validate(raw)
                except ValidationError:
                    continue
                problems.extend(provider_problems(str(pid), provider, env, base_dir))
        partial = _without_bad_keys(data, exc)
        if partial is not None:
            for p in gateway_problems(partial, env, base_dir):
                # A problem at or around a bad key is its cascade: the bad key says it all.
                if not any(under(p.path, bad) or under(bad, p.path) for bad in bad_paths):
                    problems.append(p)
    else:
        config._base_dir = base_dir
        problems.extend(gateway_problems(config, env, base_dir))
    return config, noted(problems, applied)


def _without_bad_keys(data: dict[str, Any], exc: ValidationError) -> GatewayConfig | None:
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
