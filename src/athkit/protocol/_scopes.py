"""Scope intersection (ATH §5) and the scope → route map used to police API calls (ATH §4.6).

Route patterns are absolute paths made of segments: a literal segment matches itself, ``*`` or
``{name}`` matches exactly one segment, and a final ``**`` matches any number of remaining
segments (including none). Methods are upper-case HTTP methods, or ``*`` for any.

Request paths are matched as they arrive on the wire (percent-encoded). A path whose decoded
segments would change its meaning — ``.`` or ``..`` segments (also ``..;param``), encoded ``/``
or ``\\``, NUL bytes, bad UTF-8, a ``%`` left after decoding (double encoding), empty segments in
the middle — matches nothing, so it is denied. A trailing ``/`` and the query string are ignored.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, Self, TypeVar
from urllib.parse import unquote

from athkit.protocol._models import ScopeIntersection

R = TypeVar("R")

HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "*"})
"""The methods a route may name (``*`` is any)."""


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def intersect_scopes(
    approved: Iterable[str], consented: Iterable[str], requested: Iterable[str]
) -> ScopeIntersection:
    """``effective = agent_approved ∩ user_consented ∩ requested``, in requested order.

    Each list in the breakdown is de-duplicated and keeps its first-seen order.
    """
    approved_list = _unique(approved)
    consented_list = _unique(consented)
    approved_set, consented_set = set(approved_list), set(consented_list)
    effective = [s for s in _unique(requested) if s in approved_set and s in consented_set]
    return ScopeIntersection(
        agent_approved=approved_list, user_consented=consented_list, effective=effective
    )


_ANY_ONE = "*"
_ANY_REST = "**"


@dataclass(frozen=True, slots=True)
class RouteRule:
    """One allowed shape of request: methods and a path pattern."""

    methods: frozenset[str]
    segments: tuple[str, ...]

    @classmethod
    def parse(cls, methods: Iterable[str], pattern: str) -> RouteRule:
        """Build a rule, refusing patterns that could never be matched safely."""
        if not pattern.startswith("/"):
            raise ValueError(f"route pattern must start with '/': {pattern!r}")
        if any(c in pattern for c in "?#%\\"):
            raise ValueError(f"route pattern must be a plain path: {pattern!r}")
        raw = [s for s in pattern.strip("/").split("/")] if pattern.strip("/") else []
        segments: list[str] = []
        for i, seg in enumerate(raw):
            if seg == "" or seg in (".", ".."):
                raise ValueError(f"route pattern has an empty or dot segment: {pattern!r}")
            if seg == _ANY_REST and i != len(raw) - 1:
                raise ValueError(f"'**' may only end a route pattern: {pattern!r}")
            if seg.startswith("{") and seg.endswith("}"):
                seg = _ANY_ONE
            segments.append(seg)
        method_set = frozenset(m.strip().upper() for m in methods)
        if not method_set:
            raise ValueError(f"route {pattern!r} names no HTTP method")
        for method in sorted(method_set - HTTP_METHODS):
            close = difflib.get_close_matches(method, sorted(HTTP_METHODS), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ValueError(
                f"unknown HTTP method {method!r} in route {pattern!r}{hint}: "
                f"use {', '.join(sorted(HTTP_METHODS - {'*'}))} or *"
            )
        return cls(methods=method_set, segments=tuple(segments))

    def matches(self, method: str, segments: Sequence[str]) -> bool:
        """Whether a method and already-normalised path segments fall under this rule."""
        if "*" not in self.methods and method not in self.methods:
            return False
        pattern = self.segments
        if pattern and pattern[-1] == _ANY_REST:
            head = pattern[:-1]
            if len(segments) < len(head):
                return False
        elif len(segments) != len(pattern):
            return False
        else:
            head = pattern
        return all(p in (_ANY_ONE, s) for p, s in zip(head, segments, strict=False))


def normalize_request_path(path: str) -> tuple[str, ...] | None:
    """Split a raw request path into decoded segments, or ``None`` if it is unsafe to match.

    A query string is cut off first: it does not choose the route.
    """
    if not isinstance(path, str):
        return None
    path = path.partition("?")[0]
    if not path.startswith("/") or "#" in path:
        return None
    trimmed = path[1:]
    if trimmed.endswith("/"):
        trimmed = trimmed[:-1]
    if not trimmed:
        return ()
    out: list[str] = []
    for raw in trimmed.split("/"):
        if raw == "":
            return None
        if "%" in raw:
            try:
                seg = unquote(raw, errors="strict")
            except UnicodeDecodeError:
                return None
        else:
            seg = raw
        # "..;x" is ".." to servers that strip path parameters (Tomcat), so it is as unsafe.
        if (
            seg.partition(";")[0] in (".", "..")
            or "/" in seg
            or "\\" in seg
            or "\x00" in seg
            or "%" in seg
        ):
            return None
        out.append(seg)
    return tuple(out)


def rules_by_scope(
    config: Mapping[str, Iterable[str]], what: str, parse: Callable[[str], R]
) -> dict[str, list[R]]:
    """``{"scope": [entry, ...]}`` with each entry parsed; a scope listing nothing is left out.
    ``what`` names the entries when a scope gives a string instead of a list."""
    rules: dict[str, list[R]] = {}
    for scope, entries in config.items():
        if isinstance(entries, str):
            raise ValueError(f"{what} of scope {scope!r} must be a list of strings")
        for entry in entries:
            rules.setdefault(scope, []).append(parse(entry))
    return rules


class ScopeRules(Generic[R]):
    """A map from each scope to the rules of what it allows, read from ``{"scope": [entry,
    ...]}`` (each subclass says what an entry is). No match means deny."""

    __slots__ = ("_rules",)
    #: what the entries are called in errors
    _entries = "entries"
    _rules: Mapping[str, Collection[R]]

    def __init__(self, rules: Mapping[str, Iterable[R]]) -> None:
        raise NotImplementedError

    @classmethod
    def _parse_entry(cls, entry: str) -> R:
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: Mapping[str, Iterable[str]]) -> Self:
        """Build from ``{"scope": [entry, ...]}``."""
        return cls(rules_by_scope(config, cls._entries, cls._parse_entry))

    @property
    def scopes(self) -> list[str]:
        """Every scope that allows something."""
        return list(self._rules)


_CACHED_ROUTES_MAX = 2048  # decisions a route map remembers (under 1 MB)
_CACHED_PATH_MAX = 256  # longer paths are decided afresh each time


class ScopeRouteMap(ScopeRules[RouteRule]):
    """Which scope allows which requests, from
    ``{"scope": ["GET /orders", "POST,PUT /orders/{id}", "* /files/**"]}``. No match means deny."""

    __slots__ = ("_allowing",)
    _entries = "routes"

    def __init__(self, rules: Mapping[str, Iterable[RouteRule]]) -> None:
        self._rules = {s: tuple(r) for s, r in rules.items()}
        # (method, path) -> the scopes allowing it: the answer on every call of a hot path,
        # which sees the same few routes again and again. Bounded; emptied when full.
        self._allowing: dict[tuple[str, str], frozenset[str]] = {}

    @classmethod
    def _parse_entry(cls, entry: str) -> RouteRule:
        methods, sep, pattern = entry.strip().partition(" ")
        if not sep:
            raise ValueError(f"route {entry!r} must be 'METHODS /path'")
        return RouteRule.parse(methods.split(","), pattern.strip())

    def scopes_allowing(self, method: str, path: str) -> list[str]:
        """All scopes whose routes allow ``method path`` (empty when none does)."""
        segments = normalize_request_path(path)
        if segments is None:
            return []
        verb = method.upper()
        return [
            s for s, rules in self._rules.items() if any(r.matches(verb, segments) for r in rules)
        ]

    def allowing_scope(self, method: str, path: str, granted: Iterable[str]) -> str | None:
        """The first of ``granted`` that allows ``method path``, or ``None`` (deny)."""
        key = (method, path)
        allowing = self._allowing.get(key)
        if allowing is None:
            allowing = frozenset(self.scopes_allowing(method, path))
            if len(path) <= _CACHED_PATH_MAX:
                if len(self._allowing) >= _CACHED_ROUTES_MAX:
                    self._allowing.clear()
                self._allowing[key] = allowing
        for scope in granted:
            if scope in allowing:
                return scope
        return None
