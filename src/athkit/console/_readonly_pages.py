"""The operator's read-only pages: the configured providers (secrets masked, upstream
reachability), and the audit trail filtered by agent, user, provider, event and time (ISO 8601),
paged by event id, exported as JSON lines."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, get_args
from urllib.parse import urlencode

import httpx
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from athkit.console._store import ConsoleSession
from athkit.console._web import SECURITY_HEADERS
from athkit.server import AuditEventName, audit_json, parse_instant

if TYPE_CHECKING:
    from athkit.console._operator import OperatorConsole

_MAX_EXPORT = 1000  # events per JSON-lines export (newest first); narrow by time for older
_EVENTS: tuple[str, ...] = (
    *get_args(AuditEventName),
    "operator_signed_in",
    "operator_sign_in_failed",
    "operator_action",
    "user_signed_in",
)

_AUDIT_KEYS = ("agent_id", "user_id", "provider_id", "event", "since", "until")


class _FilterError(ValueError):
    """A time filter that is not ISO 8601."""


def audit_filters(request: Request) -> tuple[dict[str, str], dict[str, Any]]:
    q = request.query_params
    shown = {
        name: (q.get(name) or "").strip()[:256]
        for name in ("agent_id", "user_id", "provider_id", "event", "since", "until")
    }
    query: dict[str, Any] = {
        k: shown[k] or None for k in ("agent_id", "user_id", "provider_id", "event")
    }
    for name in ("since", "until"):
        raw = shown[name]
        query[name] = None
        if raw:
            try:
                query[name] = parse_instant(raw)
            except ValueError as exc:
                raise _FilterError(f"{name}: {exc}") from None
    return shown, query


async def audit_page(
    console: OperatorConsole, request: Request, session: ConsoleSession
) -> Response:
    """Audit events, filtered, newest first, ``page_size`` per page; "Older" continues
    below the last event shown (``before`` = its id), so any depth is reachable."""
    raw_before = request.query_params.get("before", "")
    before = int(raw_before) if raw_before.isdigit() and len(raw_before) <= 18 else None
    error = None
    rows: Sequence[Any] = []
    older: int | None = None
    try:
        shown, query = audit_filters(request)
    except _FilterError as exc:
        shown = {k: (request.query_params.get(k) or "")[:256] for k in _AUDIT_KEYS}
        error = str(exc)
    else:
        events = await console.engine.query_audit(
            **query, limit=console.page_size + 1, before_id=before
        )
        rows = events[: console.page_size]
        if len(events) > console.page_size and rows[-1].event_id is not None:
            older = rows[-1].event_id
    encoded = urlencode({k: v for k, v in shown.items() if v})
    return console._page(
        request,
        session,
        "audit.html",
        "audit",
        status_code=400 if error else 200,
        rows=rows,
        filters=shown,
        events=_EVENTS,
        query=encoded,
        paged=before is not None,
        older=older,
        error=error,
    )


async def audit_export(
    console: OperatorConsole, request: Request, session: ConsoleSession
) -> Response:
    """The filtered events as JSON lines (newest first, up to 1,000)."""
    try:
        _, query = audit_filters(request)
    except _FilterError as exc:
        return console._message(request, session, "Bad filter", str(exc), 400)
    events = await console.engine.query_audit(**query, limit=_MAX_EXPORT)

    async def lines() -> Any:
        for event in events:
            yield json.dumps(audit_json(event), separators=(",", ":"), sort_keys=True) + "\n"

    headers = dict(SECURITY_HEADERS)
    headers["Content-Disposition"] = 'attachment; filename="ath-audit.jsonl"'
    return StreamingResponse(lines(), media_type="application/jsonl", headers=headers)


async def providers_page(
    console: OperatorConsole, request: Request, session: ConsoleSession
) -> Response:
    """Configured providers: scopes, policy, scope → route maps, upstream reachability."""
    providers = list(console.engine.settings.providers)
    reach = await asyncio.gather(*(_reachability(console, p) for p in providers))
    rows = []
    for provider, reachability in zip(providers, reach, strict=True):
        routes: dict[str, list[str]] = getattr(provider, "routes", None) or {}
        rows.append(
            {
                "provider_id": provider.provider_id,
                "display_name": provider.display_name,
                "api_base": getattr(provider, "api_base", None),
                "reachability": reachability,
                "client_id": provider.client_id,
                "secret_mask": "•" * 8,  # never shown, not even in part
                "authorization_endpoint": provider.authorization_endpoint,
                "token_endpoint": provider.token_endpoint,
                "auto_approve": provider.auto_approve,
                "review": provider.review,
                "never": provider.never,
                "routes": [(s, routes.get(s, [])) for s in provider.scopes],
            }
        )
    return console._page(request, session, "providers.html", "providers", providers=rows)


async def _reachability(console: OperatorConsole, provider: Any) -> str:
    api_base = getattr(provider, "api_base", None)
    if not api_base or console.http is None:
        return ""
    try:
        # Operator-configured URL; any HTTP answer means the upstream is up.
        response = await console.http.get(api_base, timeout=3.0)
    except httpx.HTTPError as exc:
        return f"unreachable ({type(exc).__name__})"
    return f"reachable (HTTP {response.status_code})"
