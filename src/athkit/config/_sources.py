"""Where configuration values come from: a TOML file, environment overrides, secret files.

Environment overrides: a variable named ``PREFIX`` + the key path in upper case, segments
joined by ``__`` (``ATH_GATEWAY__RATE_LIMIT__REQUESTS``). Segments match existing keys
case-insensitively, with ``_`` also matching ``-``. A value that starts with ``[``, ``{`` or
``"`` is read as JSON; anything else is a string that the schema converts.

Secrets never sit in a file as plain text: a ``*_env`` key names an environment variable holding
the value, a ``*_file`` key a file holding it (relative paths start at the config file's folder).
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from athkit.config._problems import ConfigError, Problem


def read_toml(path: str | Path) -> dict[str, Any]:
    """The TOML document at ``path``; :class:`ConfigError` when it cannot be read or parsed."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([Problem("", f"cannot read {file}: {exc.strerror or exc}")]) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([Problem("", f"{file} is not valid TOML: {exc}")]) from None


def _norm(key: str) -> str:
    return key.lower().replace("-", "_")


def apply_env_overrides(
    data: dict[str, Any], environ: Mapping[str, str], prefix: str
) -> dict[str, tuple[str | int, ...]]:
    """Apply ``prefix``-named variables onto ``data`` in place.

    Returns which variable set which key path, so problems can name the variable.
    """
    applied: dict[str, tuple[str | int, ...]] = {}
    for name in sorted(environ):
        if not name.upper().startswith(prefix):
            continue
        segments = name[len(prefix) :].split("__")
        if not segments or any(not s for s in segments):
            continue
        node: dict[str, Any] = data
        path: list[str | int] = []
        for i, seg in enumerate(segments):
            key = next((k for k in node if _norm(k) == _norm(seg)), seg.lower())
            path.append(key)
            if i == len(segments) - 1:
                node[key] = env_value(environ[name])
            else:
                child = node.get(key)
                if not isinstance(child, dict):
                    child = {}
                    node[key] = child
                node = child
        applied[name] = tuple(path)
    return applied


def env_value(raw: str) -> Any:
    """An override's value: JSON when it looks like JSON, else the string itself."""
    stripped = raw.strip()
    if stripped[:1] in ("[", "{", '"'):
        try:
            return json.loads(stripped)
        except ValueError:
            return raw
    return raw


def resolve_path(name: str | Path, base_dir: Path) -> Path:
    """A path from the configuration; relative ones are relative to the config file."""
    path = Path(name).expanduser()
    return path if path.is_absolute() else base_dir / path


def read_secret(
    env_name: str | None, file_name: str | Path | None, env: Mapping[str, str], base_dir: Path
) -> str | None:
    """The value named by a ``*_env`` / ``*_file`` pair, or ``None`` when neither is set (or
    the variable is empty). A file that cannot be read raises ``OSError``."""
    if env_name is not None:
        return env.get(env_name) or None
    if file_name is not None:
        return resolve_path(file_name, base_dir).read_text(encoding="utf-8").strip() or None
    return None


def safe_read_secret(
    env_name: str | None, file_name: str | Path | None, env: Mapping[str, str], base_dir: Path
) -> str | None:
    """:func:`read_secret`, with an unreadable file read as ``None`` (reported elsewhere)."""
    try:
        return read_secret(env_name, file_name, env, base_dir)
    except OSError:
        return None


def secret_problems(
    path: str,
    env_name: str | None,
    file_name: str | Path | None,
    env: Mapping[str, str],
    base_dir: Path,
) -> Iterator[Problem]:
    """What is wrong with the ``{path}_env`` / ``{path}_file`` pair (both given, an unset
    variable, a missing or empty file)."""
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
