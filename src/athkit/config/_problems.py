"""Problems found in a configuration, each at its key path, and how they are printed.

``ath gateway check`` and ``ath oauth check`` print one problem per line in the same format:
``error: providers.mail.client_id: required but missing (set by ATH_GATEWAY__...)``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from athkit.config._suggest import suggest_key


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


class ConfigError(ValueError):
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


def under(path: str, prefix: str) -> bool:
    """True when ``path`` is ``prefix`` or a key inside it."""
    return path == prefix or path.startswith((prefix + ".", prefix + "["))


def describe(err: Any, root: type[BaseModel] | None = None) -> str:
    """A pydantic error (one item of ``ValidationError.errors()``) in plain words; for an
    unknown key under ``root``, the known key it is closest to."""
    if err["type"] == "missing":
        return "required but missing"
    if err["type"] == "extra_forbidden":
        close = suggest_key(root, err["loc"]) if root is not None else None
        return f"unknown key; did you mean {close!r}?" if close else "unknown key (misspelt?)"
    message = str(err["msg"])
    return message.removeprefix("Value error, ")


def dedupe(problems: list[Problem]) -> list[Problem]:
    """``problems`` without repeats (same path and message), in order."""
    seen: set[tuple[str, str]] = set()
    out = []
    for p in problems:
        if (p.path, p.message) not in seen:
            seen.add((p.path, p.message))
            out.append(p)
    return out


def noted(problems: list[Problem], applied: Mapping[str, tuple[str | int, ...]]) -> list[Problem]:
    """``problems`` as a check prints them, each once: one at or under a key an environment
    variable set (``applied``: variable → key path) ends with ``(set by VARIABLE)``."""
    by_path = {format_path(loc): name for name, loc in applied.items()}
    out = []
    for p in problems:
        name = next((n for k, n in by_path.items() if p.path and under(p.path, k)), None)
        out.append(Problem(p.path, p.message + (f" (set by {name})" if name else ""), p.warning))
    return dedupe(out)
