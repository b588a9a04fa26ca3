"""The operator's admin API (``/ath/admin/...``), behind a bearer admin token from
configuration, and the request models of the admin and user routes."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, get_args

from pydantic import Field, StringConstraints
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from athkit.protocol import ADMIN_PREFIX, ATHError, ErrorCode
from athkit.server._engine import ATHEngine
from athkit.server._isotime import parse_instant, to_iso
from athkit.server._records import AgentRecord, AgentState, AuditEvent, TokenRecord
from athkit.server._settings import StrictModel
from athkit.server._web import (
    NO_STORE,
    error_response,
    fail_closed,
    invalid_request,
    parse_model,
    reject,
)

_Scope = Annotated[str, StringConstraints(min_length=1, max_length=128)]


class ReasonRequest(StrictModel):
    """Body of deny/suspend: why (shown to the agent in its status and in the audit log)."""

    reason: Annotated[str, StringConstraints(min_length=1, max_length=512)] | None = None


class ScopesRequest(StrictModel):
    """Body of ``PUT /ath/admin/agents/{client_id}/providers/{provider_id}/scopes``."""

    scopes: Annotated[list[_Scope], Field(max_length=100)]


class UserRevokeRequest(StrictModel):
    """Body of ``POST /ath/user/revoke``: disconnect an agent, or revoke one token."""

    client_id: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = None
    token_id: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = None


def agent_json(agent: AgentRecord) -> dict[str, Any]:
    """A registration as the admin API shows it (never the secret hash)."""
    return {
        "client_id": agent.client_id,
        "agent_id": agent.agent_id,
        "agent_name": agent.agent_name,
        "developer": {
            "name": agent.developer_name,
            "id": agent.developer_id,
            "contact": agent.developer_contact,
        },
        "status": agent.status,
        "status_reason": agent.status_reason,
        "providers": [
            {
                "provider_id": p.provider_id,
                "requested_scopes": p.requested_scopes,
                "approved_scopes": p.approved_scopes,
                "pending_scopes": p.pending_scopes,
                "denied_scopes": p.denied_scopes,
                "denial_reason": p.denial_reason,
            }
            for p in agent.providers
        ],
        "redirect_uris": agent.redirect_uris,
        "purpose": agent.purpose,
        "created_at": to_iso(agent.created_at),
        "updated_at": to_iso(agent.updated_at),
        "approval_expires": to_iso(agent.approval_expires),
    }


def token_json(token: TokenRecord) -> dict[str, Any]:
    """A token as the admin API shows it (id and binding; never the token or its hash)."""
    return {
        "token_id": token.token_id,
        "client_id": token.client_id,
        "agent_id": token.agent_id,
        "user_id": token.user_id,
        "provider_id": token.provider_id,
        "scopes": token.scopes,
        "created_at": to_iso(token.created_at),
        "expires_at": to_iso(token.expires_at),
        "revoked_at": to_iso(token.revoked_at),
        "revoked_by": token.revoked_by,
    }


def audit_json(event: AuditEvent) -> dict[str, Any]:
    """An audit event as the admin API and the console's export show it (ISO 8601 time)."""
    out = event.to_json()
    out["timestamp"] = to_iso(event.timestamp)
    return out


_STATES = set(get_args(AgentState))


def _instant(request: Request, name: str) -> float | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return parse_instant(raw)
    except ValueError as exc:
        raise invalid_request(f"{name}: {exc}", field=name) from None


def _event_id(request: Request) -> int | None:
    raw = request.query_params.get("before_id")
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or len(raw) > 18:
        raise invalid_request(
            "before_id must be an event_id (a positive integer)", field="before_id"
        )
    return int(raw)


def _filters(request: Request, *names: str) -> dict[str, Any]:
    """The exact-match filters ``names`` from the query string (an absent one matches any)."""
    return {name: request.query_params.get(name) for name in names}


def _limit(request: Request) -> int:
    raw = request.query_params.get("limit", "100")
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= 1000:
        raise invalid_request("limit must be an integer from 1 to 1000", field="limit")
    return int(raw)


_Endpoint = Callable[[Request], Awaitable[Response]]


def create_admin_routes(engine: ATHEngine) -> list[BaseRoute]:
    """The admin API; every route demands ``Authorization: Bearer <settings.admin_token>``."""
    if engine.settings.admin_token is None:
        raise ValueError("the admin API needs settings.admin_token")
    expected = engine.settings.admin_token.get_secret_value().encode("utf-8")
    limit = engine.settings.max_body_bytes

    def guarded(handler: _Endpoint) -> _Endpoint:
        async def endpoint(request: Request) -> Response:
            scheme, _, presented = request.headers.get("authorization", "").partition(" ")
            # Constant-time comparison of the admin token.
            ok = scheme.lower() == "bearer" and hmac.compare_digest(
                presented.strip().encode("utf-8"), expected
            )
            if not ok:
                return await reject(
                    engine,
                    ATHError(
                        ErrorCode.INVALID_CLIENT,
                        "admin API: send Authorization: Bearer <admin token>",
                        details={"reason": "admin_auth"},
                    ),
                    "access_denied",
                )
            try:
                return await handler(request)
            except ATHError as exc:
                return error_response(exc)

        return fail_closed(endpoint)

    async def list_agents(request: Request) -> Response:
        status = request.query_params.get("status")
        if status is not None and status not in _STATES:
            raise invalid_request(f"status must be one of {sorted(_STATES)}", field="status")
        agents = await engine.list_agents(status)  # type: ignore[arg-type]
        return JSONResponse({"agents": [agent_json(a) for a in agents]}, headers=NO_STORE)

    async def get_agent(request: Request) -> Response:
        agent = await engine.get_agent(request.path_params["client_id"])
        return JSONResponse(agent_json(agent), headers=NO_STORE)

    async def approve(request: Request) -> Response:
        agent = await engine.approve_agent(request.path_params["client_id"])
        return JSONResponse(agent_json(agent), headers=NO_STORE)

    async def deny(request: Request) -> Response:
        # An empty body is a deny without a reason (never a 400 that leaves the agent in).
        body = await parse_model(request, ReasonRequest, limit, allow_empty=True)
        agent = await engine.deny_agent(
            request.path_params["client_id"], body.reason or "denied by operator"
        )
        return JSONResponse(agent_json(agent), headers=NO_STORE)

    async def suspend(request: Request) -> Response:
        body = await parse_model(request, ReasonRequest, limit, allow_empty=True)
        agent = await engine.suspend_agent(
            request.path_params["client_id"], body.reason or "suspended by operator"
        )
        return JSONResponse(agent_json(agent), headers=NO_STORE)

    async def reinstate(request: Request) -> Response:
        agent = await engine.reinstate_agent(request.path_params["client_id"])
        return JSONResponse(agent_json(agent), headers=NO_STORE)

    async def set_scopes(request: Request) -> Response:
        body = await parse_model(request, ScopesRequest, limit)
        agent = await engine.set_approved_scopes(
            request.path_params["client_id"], request.path_params["provider_id"], body.scopes
        )
        return JSONResponse(agent_json(agent), headers=NO_STORE)

    async def list_tokens(request: Request) -> Response:
        tokens = await engine.list_tokens(
            **_filters(request, "client_id", "user_id", "provider_id"),
            active_only=request.query_params.get("active", "true").lower() != "false",
            limit=_limit(request),
        )
        return JSONResponse({"tokens": [token_json(t) for t in tokens]}, headers=NO_STORE)

    async def revoke_token(request: Request) -> Response:
        revoked = await engine.revoke_token_admin(request.path_params["token_id"])
        return JSONResponse({"revoked": revoked}, headers=NO_STORE)

    async def audit(request: Request) -> Response:
        events = await engine.query_audit(
            **_filters(request, "agent_id", "user_id", "provider_id", "event"),
            since=_instant(request, "since"),
            until=_instant(request, "until"),
            limit=_limit(request),
            before_id=_event_id(request),
        )
        return JSONResponse({"events": [audit_json(e) for e in events]}, headers=NO_STORE)

    base = ADMIN_PREFIX
    return [
        Route(f"{base}/agents", guarded(list_agents), methods=["GET"]),
        Route(f"{base}/agents/{{client_id}}", guarded(get_agent), methods=["GET"]),
        Route(f"{base}/agents/{{client_id}}/approve", guarded(approve), methods=["POST"]),
        Route(f"{base}/agents/{{client_id}}/deny", guarded(deny), methods=["POST"]),
        Route(f"{base}/agents/{{client_id}}/suspend", guarded(suspend), methods=["POST"]),
        Route(f"{base}/agents/{{client_id}}/reinstate", guarded(reinstate), methods=["POST"]),
        Route(
            f"{base}/agents/{{client_id}}/providers/{{provider_id}}/scopes",
            guarded(set_scopes),
            methods=["PUT"],
        ),
        Route(f"{base}/tokens", guarded(list_tokens), methods=["GET"]),
        Route(f"{base}/tokens/{{token_id}}/revoke", guarded(revoke_token), methods=["POST"]),
        Route(f"{base}/audit", guarded(audit), methods=["GET"]),
    ]
