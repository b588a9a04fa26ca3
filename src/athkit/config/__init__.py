"""Configuration files, shared by the gateway and the OAuth server: one TOML reader, one way to
override any key from the environment, one way to name secrets (``*_env`` / ``*_file``), and
one format for the problems ``ath gateway check`` and ``ath oauth check`` print."""

from athkit.config._problems import ConfigError, Problem, dedupe, describe, format_path, under
from athkit.config._sources import (
    apply_env_overrides,
    env_value,
    read_secret,
    read_toml,
    resolve_path,
    safe_read_secret,
    secret_problems,
)
from athkit.config._suggest import suggest_key

__all__ = [
    "ConfigError",
    "Problem",
    "apply_env_overrides",
    "dedupe",
    "describe",
    "env_value",
    "format_path",
    "read_secret",
    "read_toml",
    "resolve_path",
    "safe_read_secret",
    "secret_problems",
    "suggest_key",
    "under",
]
