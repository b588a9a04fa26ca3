"""ATH scopes for the Model Context Protocol: which scope allows which tool, prompt or resource,
and how an ATH refusal travels inside a JSON-RPC error. Pure: no network, no MCP SDK.

Used by the native MCP integration (``athkit.integrations.mcp``) and by the gateway in front of
an MCP upstream, so both decide alike.

Our decisions (the ATH text predates MCP):

- A scope map lists, per scope, the MCP names it allows: a bare name is a *tool*;
  ``prompt:NAME`` a prompt; ``resource:URI`` a resource, where ``*`` in the URI matches any run
  of characters. A name that no scope lists is refused, like a proxied path that matches no
  route (ATH §4.6 step 4).
- Requests that act on a named tool, prompt or resource (``tools/call``, ``prompts/get``,
  ``resources/read``, ``resources/subscribe``, ``resources/unsubscribe``) are checked; listings
  (``tools/list``, ``prompts/list``, ``resources/list``) are answered with only what the token
  allows; everything else (``initialize``, ``ping``, notifications, …) needs a valid token only.
- A refusal is the JSON-RPC error ``code`` :data:`JSONRPC_ATH_ERROR` whose ``message`` starts
  with the ATH code and whose ``data`` is the ATH §7 body (``code``, ``message``, ``details``)
  plus the HTTP ``status`` it stands for.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from athkit.protocol._errors import ATHError
from athkit.protocol._scopes import ScopeRules

Kind = Literal["tool", "prompt", "resource"]

JSONRPC_ATH_ERROR = -32003
"""JSON-RPC error code (server-defined range) of an ATH refusal carried over MCP."""

#: request method → (kind of target, the params field that names it)
TARGETED_METHODS: dict[str, tuple[Kind, str]] = {
    "tools/call": ("tool", "name"),
    "prompts/get": ("prompt", "name"),
    "resources/read": ("resource", "uri"),
    "resources/subscribe": ("resource", "uri"),
    "resources/unsubscribe": ("resource", "uri"),
}
#: listing method → (kind of its entries, result field holding them, entry field naming one)
LISTING_METHODS: dict[str, tuple[Kind, str, str]] = {
    "tools/list": ("tool", "tools", "name"),
    "prompts/list": ("prompt", "prompts", "name"),
    "resources/list": ("resource", "resources", "uri"),
}
_PREFIXES: dict[str, Kind] = {"prompt:": "prompt", "resource:": "resource"}


@dataclass(frozen=True, slots=True)
class McpTarget:
    """What one MCP request acts on: a tool, prompt or resource, by name (or URI)."""

    kind: Kind
    name: str

    def __str__(self) -> str:
        return self.name if self.kind == "tool" else f"{self.kind}:{self.name}"


def target_of(method: str, params: Any) -> McpTarget | None:
    """The tool, prompt or resource a request acts on; ``None`` for other methods.

    Raises :class:`ValueError` when a targeted method lacks its name (the request is malformed).
    """
    spec = TARGETED_METHODS.get(method)
    if spec is None:
        return None
    kind, field = spec
    name = params.get(field) if isinstance(params, Mapping) else None
    if not isinstance(name, str) or not name:
        raise ValueError(f"{method} needs a string {field!r}")
    return McpTarget(kind, name)


class McpScopeMap(ScopeRules[McpTarget]):
    """Which scope allows which MCP tools, prompts and resources, from
    ``{"scope": ["tool_name", "prompt:name", "resource:shop://items/*"]}``. No match means deny."""

    __slots__ = ("_patterns",)
    _entries = "MCP names"

    def __init__(self, rules: Mapping[str, Iterable[McpTarget]]) -> None:
        self._rules = {s: frozenset(t) for s, t in rules.items()}
        self._patterns: dict[str, tuple[re.Pattern[str], ...]] = {
            scope: tuple(
                re.compile(".*".join(re.escape(part) for part in t.name.split("*")))
                for t in targets
                if t.kind == "resource" and "*" in t.name
            )
            for scope, targets in self._rules.items()
        }

    @classmethod
    def _parse_entry(cls, entry: str) -> McpTarget:
        return parse_target(entry)

    def to_config(self) -> dict[str, list[str]]:
        """The map in the shape :meth:`from_config` reads."""
        return {s: sorted(str(t) for t in targets) for s, targets in self._rules.items()}

    def _matches(self, scope: str, target: McpTarget) -> bool:
        if target in self._rules.get(scope, ()):
            return True
        return target.kind == "resource" and any(
            p.fullmatch(target.name) for p in self._patterns.get(scope, ())
        )

    def scopes_allowing(self, target: McpTarget) -> list[str]:
        """Every scope that allows ``target`` (empty when none does)."""
        return [s for s in self._rules if self._matches(s, target)]

    def allowed(self, target: McpTarget, granted: Iterable[str]) -> bool:
        """Whether one of ``granted`` allows ``target``."""
        return any(self._matches(s, target) for s in granted)

    def filter_listing(self, method: str, result: Any, granted: Iterable[str]) -> Any:
        """A listing result (``tools/list`` …) with only the entries ``granted`` allows.

        Other methods' results, and results without the expected list, come back unchanged.
        """
        spec = LISTING_METHODS.get(method)
        if spec is None or not isinstance(result, dict):
            return result
        kind, field, key = spec
        entries = result.get(field)
        if not isinstance(entries, list):
            return result
        scopes = list(granted)
        kept = [
            entry
            for entry in entries
            if isinstance(entry, dict)
            and isinstance(entry.get(key), str)
            and self.allowed(McpTarget(kind, entry[key]), scopes)
        ]
        return {**result, field: kept}


def parse_target(entry: str) -> McpTarget:
    """``"name"`` (a tool), ``"prompt:name"`` or ``"resource:uri"``."""
    text = entry.strip()
    kind: Kind = "tool"
    name = text
    prefix = next((p for p in _PREFIXES if text.startswith(p)), None)
    if prefix is not None:
        kind, name = _PREFIXES[prefix], text[len(prefix) :].strip()
    if not name or any(c.isspace() for c in name):
        raise ValueError(f"MCP name {entry!r} must be non-empty and without spaces")
    return McpTarget(kind, name)


def jsonrpc_ath_error(exc: ATHError, request_id: Any = None) -> dict[str, Any]:
    """The JSON-RPC error message carrying ``exc`` (see the module docstring)."""
    data = exc.to_dict()
    data["status"] = exc.status
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "error": {
            "code": JSONRPC_ATH_ERROR,
            "message": f"{exc.code.value}: {exc.message}",
            "data": data,
        },
    }
