"""The operator's pages: sign-in, overview, review queue, agents, tokens, providers, audit.

Every decision goes through the same ``ATHEngine`` methods as the admin API (``approve_agent``,
``set_approved_scopes``, ``deny_agent``, ``suspend_agent``, ``reinstate_agent``,
``revoke_token_admin``, ``query_audit``); the console adds no rule of its own. Pages need a
signed-in operator session (else: 303 to the sign-in page); every form carries the session's
CSRF token (else: 403, audited).
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, get_args
from urllib.parse import quote, urlencode

import httpx
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from athkit.console._chart import bar_chart, hourly_counts
from athkit.console._readonly_pages import audit_export, audit_page, providers_page
from athkit.console._store import ConsoleSession, Throttle
from athkit.console._web import (
    ConsoleSite,
    CookieSpec,
    FormRefused,
    csrf_ok,
    form_text,
    local_path,
    read_form,
)
from athkit.protocol import ATHError
from athkit.server import (
    AgentRecord,
    AgentState,
    AuditEventName,
    AuditQuery,
    TokenRecord,
)

_log = logging.getLogger("athkit.console")

PAGE_SIZE = 50
REVIEW_PAGE = 20  # registrations shown at once in the review queue (the oldest first)
_DAY = 86_400
# What the agent itself did (its "last seen"): every audit event but revocations and the
# operator's own decisions.
_AGENT_EVENTS = frozenset(get_args(AuditEventName)) - {"token_revoked", "agent_updated"}
_DENIALS = ("access_denied", "scope_violation", "attestation_failed", "agent_registration_denied")
_STATES: tuple[str, ...] = get_args(AgentState)

Page = Callable[[Request, ConsoleSession], Awaitable[Response]]
Action = Callable[[Request, ConsoleSession, FormData], Awaitable[Response]]


@dataclass
class OperatorConsole(
    ConsoleSite, kind="operator", home="/", failure_title="The console could not complete this"
):
    """The operator pages of one deployment, mounted under ``root`` (e.g. ``/admin``)."""

    login_cookie: CookieSpec
    session_lifetime: int = 8 * 3600
    throttle: Throttle = field(default_factory=Throttle)
    page_size: int = PAGE_SIZE
    http: httpx.AsyncClient | None = None

    # --- plumbing -------------------------------------------------------------------------

    def _nav(self) -> list[tuple[str, str, str]]:
        r = self.root
        return [
            (f"{r}/", "Overview", "overview"),
            (f"{r}/review", "Review queue", "review"),
            (f"{r}/agents", "Agents", "agents"),
            (f"{r}/tokens", "Tokens", "tokens"),
            (f"{r}/providers", "Providers", "providers"),
            (f"{r}/audit", "Audit", "audit"),
        ]

    def _page(
        self,
        request: Request,
        session: ConsoleSession,
        template: str,
        current: str,
        status_code: int = 200,
        **context: Any,
    ) -> Response:
        return self._show(
            request,
            template,
            status_code,
            {
                **self._frame(session),
                "current": current,
                "title": context.pop("title", current.title()),
                **context,
            },
        )

    def _frame(self, session: ConsoleSession | None) -> dict[str, Any]:
        if session is None:
            return {}
        return {
            "nav": self._nav(),
            "current": "",
            "operator": session.subject,
            "csrf": session.csrf_token,
        }

    def _to_login(self, request: Request) -> Response:
        target = request.url.path
        if request.method == "GET" and request.url.query:
            target += "?" + request.url.query
        query = urlencode({"next": local_path(target, self.root)})
        return RedirectResponse(f"{self.root}/login?{query}", status_code=303)

    def page(self, handler: Page) -> Callable[[Request], Awaitable[Response]]:
        """A page that needs a signed-in operator (else: 303 to the sign-in page)."""

        async def endpoint(request: Request) -> Response:
            session = None
            try:
                session = await self._session(request)
                if session is None:
                    return self._to_login(request)
                return await handler(request, session)
            except Exception as exc:
                return self._refused(request, session, exc)

        return endpoint

    def action(self, handler: Action) -> Callable[[Request], Awaitable[Response]]:
        """A POST that needs a signed-in operator and the session's CSRF token (else: 403,
        audited)."""

        async def checked(request: Request, session: ConsoleSession) -> Response:
            form = await read_form(request)
            if csrf_ok(form, session.csrf_token):
                return await handler(request, session, form)
            await self.engine.audit(
                "access_denied",
                reason="console form without its CSRF token",
                details={"operator": session.subject, "path": request.url.path},
            )
            return self._message(
                request,
                session,
                "This form has expired",
                "The form did not carry this session's token. Reload the page and try again.",
                403,
            )

        return self.page(checked)

    async def _record(self, session: ConsoleSession, action: str, **fields: Any) -> None:
        details = {"operator": session.subject, "action": action}
        details.update(fields.pop("details", {}))
        await self.engine.audit("operator_action", details=details, **fields)

    # --- sign-in --------------------------------------------------------------------------

    async def login_form(self, request: Request) -> Response:
        """GET sign-in: a form whose CSRF value is also in a short-lived cookie."""
        return self._login_page(request, "", None, 200)

    def _login_page(
        self, request: Request, username: str, error: str | None, status_code: int
    ) -> Response:
        token = secrets.token_urlsafe(24)
        response = self._show(
            request,
            "login.html",
            status_code,
            {
                "title": "Sign in",
                "narrow": True,
                "login_csrf": token,
                "next": local_path(request.query_params.get("next"), self.root),
                "username": username,
                "error": error,
            },
        )
        self.login_cookie.set(response, token, 1800)
        return response

    async def login(self, request: Request) -> Response:
        """POST sign-in: CSRF (double submit), throttle, password check, new session."""
        try:
            return await self._login(request)
        except FormRefused as exc:
            return self._refused(request, None, exc)
        except Exception:
            # Fail closed: a store that is down signs nobody in.
            return self._failure(request, None)

    async def _login(self, request: Request) -> Response:
        form = await read_form(request)
        username = form_text(form, "username", 64)
        password = form.get("password")
        presented = self.login_cookie.read(request) or ""
        if not presented or not csrf_ok(form, presented):
            await self.engine.audit(
                "operator_sign_in_failed",
                reason="sign-in form without its CSRF token",
                details={"operator": username},
            )
            return self._login_page(request, username, "The form expired; sign in again.", 403)
        if not isinstance(password, str) or not username:
            return self._login_page(request, username, "Enter your name and password.", 400)
        window = self.throttle.window
        if await self.store.recent_failures(self.deployment, username, window) >= (
            self.throttle.max_failures
        ):
            await self.engine.audit(
                "operator_sign_in_failed",
                reason="too many failed sign-ins; throttled",
                details={"operator": username},
            )
            minutes = int(window // 60)
            return self._login_page(
                request,
                username,
                f"Too many failed sign-ins for this name. Try again in {minutes} minutes.",
                429,
            )
        if not await self.store.check_password(self.deployment, username, password[:1024]):
            await self.store.record_failure(self.deployment, username, window)
            await self.engine.audit(
                "operator_sign_in_failed",
                reason="wrong name or password",
                details={"operator": username},
            )
            return self._login_page(request, username, "Wrong name or password.", 401)
        await self.store.clear_failures(self.deployment, username)
        cookie, _ = await self.store.start_session(
            self.deployment, "operator", username, self.session_lifetime
        )
        await self.engine.audit(
            "operator_signed_in", reason="operator signed in", details={"operator": username}
        )
        target = local_path(form_text(form, "next"), self.root)
        response = RedirectResponse(target, status_code=303)
        self.cookie.set(response, cookie, self.session_lifetime)
        self.login_cookie.clear(response)
        return response

    async def logout(self, request: Request, session: ConsoleSession, form: FormData) -> Response:
        """POST sign-out: the session row is deleted."""
        await self.store.end_session(session)
        response = RedirectResponse(f"{self.root}/login?n=signedout", status_code=303)
        self.cookie.clear(response)
        return response

    # --- overview -------------------------------------------------------------------------

    async def overview(self, request: Request, session: ConsoleSession) -> Response:
        """Counts by status, live tokens, 24-hour handshakes and denials with a chart."""
        engine = self.engine
        now = engine.clock.now()
        agents = await engine.list_agents()
        by_status = [(s, sum(1 for a in agents if a.status == s)) for s in _STATES]
        live = await engine.stores.tokens.list(active_at=now, limit=1_000_000)
        start = (now // 3600 + 1) * 3600 - _DAY  # 24 whole hours, the current one last
        limit = 50_000
        granted = await engine.stores.audit.query(
            AuditQuery(event="access_granted", since=start, limit=limit)
        )
        denied: list[float] = []
        capped = len(granted) >= limit
        for name in _DENIALS:
            found = await engine.stores.audit.query(
                AuditQuery(event=name, since=start, limit=limit)
            )
            capped = capped or len(found) >= limit
            denied.extend(e.timestamp for e in found)
        handshakes = hourly_counts([e.timestamp for e in granted], start)
        denials = hourly_counts(denied, start)
        chart = bar_chart(
            start, [("handshakes", "#2251d1", handshakes), ("denials", "#c0392b", denials)]
        )
        return self._page(
            request,
            session,
            "overview.html",
            "overview",
            by_status=by_status,
            live_tokens=len(live),
            handshakes=sum(handshakes),
            denials=sum(denials),
            pending=sum(1 for a in agents if _awaiting(a)),
            chart=chart,
            capped=limit if capped else None,
        )

    # --- review ---------------------------------------------------------------------------

    async def review(self, request: Request, session: ConsoleSession) -> Response:
        """Registrations awaiting a decision, with their identity documents."""
        waiting = [a for a in await self.engine.list_agents() if _awaiting(a)]
        shown = waiting[:REVIEW_PAGE]  # oldest first; each needs an identity-document fetch
        documents = await asyncio.gather(*(self._identity_document(a) for a in shown))
        rows = [
            {"agent": a, "document": doc, "document_error": err}
            for a, (doc, err) in zip(shown, documents, strict=True)
        ]
        return self._page(
            request, session, "review.html", "review", agents=rows, waiting=len(waiting)
        )

    async def _identity_document(self, agent: AgentRecord) -> tuple[str | None, str | None]:
        # Through the verifier's own fetcher: the same SSRF policy and limits as attestation.
        fetcher = getattr(self.engine.verifier, "fetcher", None)
        fetch = getattr(fetcher, "fetch", None)
        if fetch is None:
            return None, "this verifier does not fetch identity documents"
        try:
            async with asyncio.timeout(5):
                fetched = await fetch(agent.agent_id)
        except ATHError as exc:
            return None, exc.message
        except Exception as exc:
            return None, type(exc).__name__
        return json.dumps(fetched.data, indent=2, ensure_ascii=False)[:20_000], None

    async def approve(self, request: Request, session: ConsoleSession, form: FormData) -> Response:
        """Approve everything requested (``ATHEngine.approve_agent``)."""
        client_id = request.path_params["client_id"]
        agent = await self.engine.approve_agent(client_id)
        await self._record(session, "approve", client_id=client_id, agent_id=agent.agent_id)
        return self._back(form, "approved")

    async def set_scopes(
        self, request: Request, session: ConsoleSession, form: FormData
    ) -> Response:
        """Approve the ticked scopes, provider by provider (``set_approved_scopes``)."""
        client_id = request.path_params["client_id"]
        agent = await self.engine.get_agent(client_id)
        ticked: dict[str, list[str]] = {p.provider_id: [] for p in agent.providers}
        for value in form.getlist("scope"):
            if not isinstance(value, str):
                continue
            provider_id, _, scope = value.partition(" ")
            if provider_id in ticked and scope:
                ticked[provider_id].append(scope)
        for provider_id, scopes in ticked.items():
            agent = await self.engine.set_approved_scopes(client_id, provider_id, scopes)
        await self._record(
            session,
            "set_scopes",
            client_id=client_id,
            agent_id=agent.agent_id,
            effective_scopes=[s for v in ticked.values() for s in v],
        )
        return self._back(form, "scopes")

    async def deny(self, request: Request, session: ConsoleSession, form: FormData) -> Response:
        """Deny, with the reason the agent will see (``deny_agent``)."""
        await self._stop(request, session, form, "deny", "denied", self.engine.deny_agent)
        return self._back(form, "denied")

    async def suspend(self, request: Request, session: ConsoleSession, form: FormData) -> Response:
        """Suspend; every live token dies (``suspend_agent``)."""
        client_id = await self._stop(
            request, session, form, "suspend", "suspended", self.engine.suspend_agent
        )
        return self._back(form, "suspended", client_id)

    async def _stop(
        self,
        request: Request,
        session: ConsoleSession,
        form: FormData,
        action: str,
        done: str,
        change: Callable[[str, str], Awaitable[AgentRecord]],
    ) -> str:
        """``change(client_id, reason)`` with the form's reason (else "{done} by operator"),
        recorded as the operator's ``action``; returns the agent's client_id."""
        client_id: str = request.path_params["client_id"]
        reason = form_text(form, "reason") or f"{done} by operator"
        agent = await change(client_id, reason)
        await self._record(
            session, action, client_id=client_id, agent_id=agent.agent_id, reason=reason
        )
        return client_id

    async def reinstate(
        self, request: Request, session: ConsoleSession, form: FormData
    ) -> Response:
        """Lift a suspension or denial (``reinstate_agent``)."""
        client_id = request.path_params["client_id"]
        agent = await self.engine.reinstate_agent(client_id)
        await self._record(session, "reinstate", client_id=client_id, agent_id=agent.agent_id)
        return self._back(form, "reinstated", client_id)

    def _back(self, form: FormData, notice: str, client_id: str | None = None) -> Response:
        back = form_text(form, "back", 32)
        if back == "agents":
            target = f"{self.root}/agents"
        elif client_id is not None:
            target = f"{self.root}/agents/{quote(client_id, safe='')}"
        else:
            target = f"{self.root}/review"
        return RedirectResponse(f"{target}?n={notice}", status_code=303)

    # --- agents ---------------------------------------------------------------------------

    async def agents(self, request: Request, session: ConsoleSession) -> Response:
        """Every registration with status, scopes, last seen and live token count."""
        status = request.query_params.get("status") or None
        if status is not None and status not in _STATES:
            status = None
        agents = await self.engine.list_agents(status)  # type: ignore[arg-type]
        rows = await asyncio.gather(*(self._agent_row(a) for a in reversed(agents)))
        return self._page(
            request,
            session,
            "agents.html",
            "agents",
            rows=rows,
            statuses=_STATES,
            status=status or "",
        )

    async def _agent_row(self, agent: AgentRecord) -> dict[str, Any]:
        # Last seen: the newest event the agent itself caused (not an operator's decision).
        recent = await self.engine.query_audit(agent_id=agent.agent_id, limit=50)
        seen = next((e.timestamp for e in recent if e.event in _AGENT_EVENTS), None)
        tokens = await self.engine.list_tokens(client_id=agent.client_id, limit=1000)
        return {"agent": agent, "last_seen": seen, "tokens": len(tokens)}

    async def agent(self, request: Request, session: ConsoleSession) -> Response:
        """One registration in full."""
        agent = await self.engine.get_agent(request.path_params["client_id"])
        row = await self._agent_row(agent)
        return self._page(
            request,
            session,
            "agent.html",
            "agents",
            title=agent.agent_name,
            agent=agent,
            last_seen=row["last_seen"],
            tokens=row["tokens"],
        )

    # --- tokens ---------------------------------------------------------------------------

    def _token_filters(self, source: Any) -> dict[str, str]:
        return {
            name: (str(source.get(name) or "")).strip()[:256]
            for name in ("client_id", "user_id", "provider_id")
        }

    async def _list_tokens(self, filters: dict[str, str], limit: int) -> list[TokenRecord]:
        return await self.engine.list_tokens(
            client_id=filters["client_id"] or None,
            user_id=filters["user_id"] or None,
            provider_id=filters["provider_id"] or None,
            limit=limit,
        )

    async def tokens(self, request: Request, session: ConsoleSession) -> Response:
        """Live tokens, filtered by agent, user and provider."""
        filters = self._token_filters(request.query_params)
        limit = 500
        tokens = await self._list_tokens(filters, limit)
        names = {a.client_id: a.agent_name for a in await self.engine.list_agents()}
        back = f"{self.root}/tokens"
        if any(filters.values()):
            back += "?" + urlencode({k: v for k, v in filters.items() if v})
        return self._page(
            request,
            session,
            "tokens.html",
            "tokens",
            tokens=tokens,
            names=names,
            filters=filters,
            back=back,
            capped=limit if len(tokens) >= limit else None,
        )

    async def revoke_token(
        self, request: Request, session: ConsoleSession, form: FormData
    ) -> Response:
        """Revoke one token (``revoke_token_admin``)."""
        token_id = request.path_params["token_id"]
        revoked = await self.engine.revoke_token_admin(token_id)
        await self._record(session, "revoke_token", details={"token_id": token_id})
        back = local_path(form_text(form, "back"), self.root)
        joiner = "&" if "?" in back else "?"
        return RedirectResponse(
            f"{back}{joiner}n={'revoked' if revoked else 'unrevoked'}", status_code=303
        )

    async def revoke_all(
        self, request: Request, session: ConsoleSession, form: FormData
    ) -> Response:
        """Revoke every live token the filters select, one by one (``revoke_token_admin``)."""
        filters = self._token_filters(form)
        tokens = await self._list_tokens(filters, 1000)
        count = 0
        for token in tokens:
            count += await self.engine.revoke_token_admin(token.token_id)
        await self._record(session, "revoke_tokens", details={"filters": filters, "tokens": count})
        query = urlencode({**{k: v for k, v in filters.items() if v}, "n": "revoked"})
        return RedirectResponse(f"{self.root}/tokens?{query}", status_code=303)

    # --- providers ------------------------------------------------------------------------

    # --- routes ---------------------------------------------------------------------------

    def routes(self) -> list[Route]:
        """The operator routes, relative to the mount point."""
        p, a = self.page, self.action
        return [
            Route("/login", self.login_form, methods=["GET"]),
            Route("/login", self.login, methods=["POST"]),
            Route("/logout", a(self.logout), methods=["POST"]),
            Route("/", p(self.overview), methods=["GET"]),
            Route("/review", p(self.review), methods=["GET"]),
            Route("/agents", p(self.agents), methods=["GET"]),
            Route("/agents/{client_id}", p(self.agent), methods=["GET"]),
            Route("/agents/{client_id}/approve", a(self.approve), methods=["POST"]),
            Route("/agents/{client_id}/scopes", a(self.set_scopes), methods=["POST"]),
            Route("/agents/{client_id}/deny", a(self.deny), methods=["POST"]),
            Route("/agents/{client_id}/suspend", a(self.suspend), methods=["POST"]),
            Route("/agents/{client_id}/reinstate", a(self.reinstate), methods=["POST"]),
            Route("/tokens", p(self.tokens), methods=["GET"]),
            Route("/tokens/revoke-all", a(self.revoke_all), methods=["POST"]),
            Route("/tokens/{token_id}/revoke", a(self.revoke_token), methods=["POST"]),
            Route("/providers", p(partial(providers_page, self)), methods=["GET"]),
            Route("/audit", p(partial(audit_page, self)), methods=["GET"]),
            Route("/audit.jsonl", p(partial(audit_export, self)), methods=["GET"]),
        ]


def _awaiting(agent: AgentRecord) -> bool:
    return agent.status == "pending" or any(p.pending_scopes for p in agent.providers)
