"""The browser side: ``GET /authorize``, the login form and the consent form.

``/authorize`` checks the request, stores it bound to this browser and sends the browser on to
``/login`` or ``/consent`` (``?request=<id>``); the forms post back to the same paths.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from athkit.oauthserver._common import (
    OAuthError,
    ServerState,
    audit,
    duplicated,
    read_form,
    redirect_with,
)
from athkit.oauthserver._config import ClientConfig
from athkit.oauthserver._passwords import verify_password
from athkit.oauthserver._sessions import BrowserSession
from athkit.oauthserver._store import PendingRequest
from athkit.protocol import ATHError, redirect_matches, verify_consent_context

# RFC 7636 §4.2: an S256 challenge is 43 base64url characters (32 bytes of SHA-256).
_S256_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")
_MAX_STATE = 2048
_MAX_FORM_FIELDS = 100


class _RedirectError(Exception):
    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


async def authorize(srv: ServerState, request: Request) -> Response:
    """``GET /authorize``: RFC 6749 §4.1.1 with PKCE S256 (RFC 7636) and ``ath_context``."""
    q = request.query_params
    dupes = duplicated(q)
    client = srv.config.client(q.get("client_id", ""))
    if client is None or "client_id" in dupes:
        audit("authorize_rejected", reason="unknown_client", client_id=q.get("client_id"))
        return srv.error_page("Unknown application", "The client_id is missing or unknown.")
    redirect_uri = q.get("redirect_uri")
    if (
        redirect_uri is None
        or "redirect_uri" in dupes
        or not any(redirect_matches(r, redirect_uri) for r in client.redirect_uris)
    ):
        audit("authorize_rejected", reason="bad_redirect_uri", client_id=client.client_id)
        return srv.error_page(
            "Invalid redirect", "The redirect_uri is missing or not registered for this client."
        )
    state = q.get("state")
    try:
        if state is not None and len(state) > _MAX_STATE:
            state = None  # not echoed: the request is refused
            raise _RedirectError("invalid_request", f"state is longer than {_MAX_STATE} characters")
        pending = _check_request(srv, client, q, dupes, redirect_uri, state)
    except _RedirectError as exc:
        audit("authorize_rejected", reason=exc.error, client_id=client.client_id)
        return _redirect_error(srv, redirect_uri, exc.error, exc.description, state, 302)
    now = srv.now()
    await srv.store.purge_expired(now)
    session = srv.session(request) or BrowserSession.new(now)
    request_id = await srv.store.save_request(session.browser_id, pending, now=now)
    audit(
        "authorization_started",
        client_id=client.client_id,
        scopes=" ".join(pending.scopes),
        agent_id=(pending.context or {}).get("agent_id"),
    )
    step = "/consent" if session.user(now, srv.config.session_lifetime) else "/login"
    response = _to_step(step, request_id, 302)
    srv.set_session(response, session)
    return response


def _to_step(step: str, request_id: str, status: int) -> RedirectResponse:
    """Redirect the browser to the login or consent page of ``request_id`` (not cached)."""
    return RedirectResponse(
        f"{step}?{urlencode({'request': request_id})}",
        status_code=status,
        headers={"Cache-Control": "no-store"},
    )


def _check_request(
    srv: ServerState,
    client: ClientConfig,
    q: Any,
    dupes: list[str],
    redirect_uri: str,
    state: str | None,
) -> PendingRequest:
    if dupes:
        raise _RedirectError("invalid_request", f"parameters given twice: {', '.join(dupes)}")
    if q.get("response_type") != "code":
        raise _RedirectError("unsupported_response_type", "only response_type=code is supported")
    challenge = q.get("code_challenge")
    if not challenge:
        raise _RedirectError("invalid_request", "code_challenge is required (PKCE, RFC 7636)")
    if q.get("code_challenge_method") != "S256":
        raise _RedirectError("invalid_request", "code_challenge_method must be S256")
    if not _S256_CHALLENGE.fullmatch(challenge):
        raise _RedirectError("invalid_request", "code_challenge is not an S256 challenge")
    scopes = [s for s in dict.fromkeys(q.get("scope", "").split(" ")) if s]
    if not scopes:
        raise _RedirectError("invalid_scope", "scope is required")
    refused = [s for s in scopes if s not in client.scopes]
    if refused:
        raise _RedirectError("invalid_scope", f"scope not allowed: {' '.join(refused)}")
    resource = q.get("resource")
    if resource is not None:
        parts = urlsplit(resource)
        # RFC 8707 §2: an absolute URI without a fragment.
        if not parts.scheme or not parts.netloc or parts.fragment or len(resource) > 2048:
            raise _RedirectError("invalid_target", "resource must be an absolute URI")
    context: dict[str, Any] | None = None
    token = q.get("ath_context")
    if token is not None:
        if client.context_key is None:
            raise _RedirectError("invalid_request", "this client has no ath_context_key")
        try:
            verified = verify_consent_context(
                token,
                client.context_key,
                client_id=client.client_id,
                audience=srv.config.issuer,
                code_challenge=challenge,
                now=srv.now(),
            )
        except ATHError as exc:
            raise _RedirectError("invalid_request", exc.message) from None
        context = asdict(verified)
        context["approved_scopes"] = list(verified.approved_scopes)
    return PendingRequest(
        client_id=client.client_id,
        redirect_uri=redirect_uri,
        scopes=tuple(scopes),
        state=state,
        code_challenge=challenge,
        resource=resource,
        context=context,
        expires_at=srv.now() + srv.config.request_lifetime,
    )


def _redirect_error(
    srv: ServerState,
    redirect_uri: str,
    error: str,
    description: str,
    state: str | None,
    status: int = 303,
) -> Response:
    # RFC 6749 §4.1.2.1 error response; RFC 9207 adds iss.
    return redirect_with(
        redirect_uri,
        {
            "error": error,
            "error_description": description,
            "state": state,
            "iss": srv.config.issuer,
        },
        status,
    )


def _expired_page(srv: ServerState) -> Response:
    return srv.error_page(
        "Sign-in expired",
        "This sign-in request has expired, was already used, or was started in another browser.",
    )


async def login_page(srv: ServerState, request: Request) -> Response:
    """``GET /login?request=…``: the username and password form."""
    now = srv.now()
    session = srv.session(request)
    request_id = request.query_params.get("request", "")
    pending = None
    if session is not None and request_id:
        pending = await srv.store.load_request(request_id, session.browser_id, now=now)
    if session is None or pending is None:
        return _expired_page(srv)
    return _render_login(srv, session, request_id, pending)


def _render_login(
    srv: ServerState,
    session: BrowserSession,
    request_id: str,
    pending: PendingRequest,
    *,
    error: str | None = None,
    username: str = "",
    status: int = 200,
) -> Response:
    client = srv.config.client(pending.client_id)
    response = srv.render(
        "login.html",
        status=status,
        title="Sign in",
        client_name=client.name if client else pending.client_id,
        csrf_token=session.csrf,
        request_id=request_id,
        action="/login",
        error=error,
        username=username,
    )
    return response


async def _read_form(srv: ServerState, request: Request) -> dict[str, Any] | None:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return None
    try:
        form = await read_form(request, max_fields=_MAX_FORM_FIELDS)
    except OAuthError:
        return None
    if any(k != "scope" for k in duplicated(form)):
        return None
    return {
        "single": {k: v for k, v in form.items() if isinstance(v, str)},
        "scopes": [v for v in form.getlist("scope") if isinstance(v, str)],
    }


def _csrf_failure(srv: ServerState, where: str) -> Response:
    audit("csrf_rejected", form=where)
    return srv.error_page(
        "Form expired",
        "The form could not be verified (missing or wrong CSRF token, or no session cookie).",
    )


@dataclass(frozen=True)
class _Posted:
    """A login or consent form that passed its checks: its fields, the browser's session, and
    the pending request it names."""

    form: dict[str, Any]
    fields: dict[str, str]
    session: BrowserSession
    request_id: str
    pending: PendingRequest


async def _posted(srv: ServerState, request: Request, where: str, now: float) -> _Posted | Response:
    """The posted form with its session and pending request, or the page refusing it (not a
    web form; no session or a wrong CSRF token, audited as from ``where``; the request expired,
    was used, or is another browser's)."""
    form = await _read_form(srv, request)
    if form is None:
        return srv.error_page("Bad form", "The form was not sent as a web form.")
    fields: dict[str, str] = form["single"]
    session = srv.session(request)
    if session is None or not session.csrf_ok(fields.get("csrf_token")):
        return _csrf_failure(srv, where)
    request_id = fields.get("request", "")
    pending = await srv.store.load_request(request_id, session.browser_id, now=now)
    if pending is None:
        return _expired_page(srv)
    return _Posted(form, fields, session, request_id, pending)


async def login_submit(srv: ServerState, request: Request) -> Response:
    """``POST /login``: check CSRF, then the password; on success go on to consent."""
    now = srv.now()
    posted = await _posted(srv, request, "login", now)
    if isinstance(posted, Response):
        return posted
    fields, session = posted.fields, posted.session
    request_id, pending = posted.request_id, posted.pending
    username = fields.get("username", "")[:128]
    password = fields.get("password", "")[:1024]
    window = srv.config.login_failure_window

    def refused(error: str, status: int) -> Response:
        """The login form again, with ``error`` and the name that was tried."""
        return _render_login(
            srv, session, request_id, pending, error=error, username=username, status=status
        )

    failures = await srv.store.login_failures(username, now=now, window=window)
    if failures >= srv.config.login_max_failures:
        # A brake on password guessing: this name waits out the window, password unchecked.
        audit("login_throttled", username=username, client_id=pending.client_id)
        return refused("Too many failed sign-ins for this name. Try again in a few minutes.", 429)
    user = srv.config.user_by_name(username)
    ok = await anyio.to_thread.run_sync(
        verify_password, password, user.password_hash if user else None
    )
    if not ok or user is None:
        await srv.store.record_login_failure(username, now=now, window=window)
        audit("login_failed", username=username, client_id=pending.client_id)
        return refused("Wrong username or password.", 401)
    await srv.store.clear_login_failures(username)
    audit("login", sub=user.sub, client_id=pending.client_id)
    logged_in = session.logged_in(user.sub, now)
    response = _to_step("/consent", request_id, 303)
    srv.set_session(response, logged_in)
    return response


def _scope_rows(srv: ServerState, pending: PendingRequest) -> list[dict[str, Any]]:
    approved = None if pending.context is None else set(pending.context["approved_scopes"])
    return [
        {
            "name": scope,
            "description": srv.config.scopes.get(scope, scope),
            "available": approved is None or scope in approved,
        }
        for scope in pending.scopes
    ]


async def consent_page(srv: ServerState, request: Request) -> Response:
    """``GET /consent?request=…``: who asks, for which scopes; Allow or Deny."""
    now = srv.now()
    session = srv.session(request)
    request_id = request.query_params.get("request", "")
    if session is None or not request_id:
        return _expired_page(srv)
    pending = await srv.store.load_request(request_id, session.browser_id, now=now)
    if pending is None:
        return _expired_page(srv)
    sub = session.user(now, srv.config.session_lifetime)
    user = srv.config.user_by_sub(sub) if sub else None
    if user is None:
        return _to_step("/login", request_id, 303)
    client = srv.config.client(pending.client_id)
    return srv.render(
        "consent.html",
        title="Allow access?",
        client_name=client.name if client else pending.client_id,
        user_name=user.name,
        agent=pending.context,
        scopes=_scope_rows(srv, pending),
        csrf_token=session.csrf,
        request_id=request_id,
        action="/consent",
    )


async def consent_submit(srv: ServerState, request: Request) -> Response:
    """``POST /consent``: granted = ticked ∩ requested ∩ approved-for-the-agent."""
    now = srv.now()
    posted = await _posted(srv, request, "consent", now)
    if isinstance(posted, Response):
        return posted
    form, fields, session = posted.form, posted.fields, posted.session
    request_id, pending = posted.request_id, posted.pending
    sub = session.user(now, srv.config.session_lifetime)
    user = srv.config.user_by_sub(sub) if sub else None
    if user is None:
        return _to_step("/login", request_id, 303)
    action = fields.get("action")
    if action not in ("allow", "deny"):
        return srv.error_page("Bad form", "Choose Allow or Deny.")
    # Single use: a second submission of the same form finds nothing.
    if not await srv.store.take_request(request_id, session.browser_id):
        return _expired_page(srv)
    agent_id = (pending.context or {}).get("agent_id")
    if action == "deny":
        audit("consent_denied", sub=user.sub, client_id=pending.client_id, agent_id=agent_id)
        return _redirect_error(
            srv, pending.redirect_uri, "access_denied", "the user denied access", pending.state
        )
    ticked = set(form["scopes"])
    approved = None if pending.context is None else set(pending.context["approved_scopes"])
    # ATH §1: effective = agent_approved ∩ user_consented ∩ requested; the form cannot add any.
    granted = [s for s in pending.scopes if s in ticked and (approved is None or s in approved)]
    if not granted:
        audit("consent_denied", sub=user.sub, client_id=pending.client_id, reason="no_scope")
        return _redirect_error(
            srv, pending.redirect_uri, "access_denied", "no scope was granted", pending.state
        )
    client = srv.config.client(pending.client_id)
    if client is None:
        return _expired_page(srv)
    code = await srv.store.save_code(
        client_id=pending.client_id,
        sub=user.sub,
        redirect_uri=pending.redirect_uri,
        scopes=granted,
        code_challenge=pending.code_challenge,
        resource=pending.resource,
        agent_id=agent_id,
        now=now,
        lifetime=srv.config.code_lifetime,
    )
    audit(
        "consent_granted",
        sub=user.sub,
        client_id=pending.client_id,
        agent_id=agent_id,
        requested=" ".join(pending.scopes),
        granted=" ".join(granted),
    )
    return redirect_with(
        pending.redirect_uri,
        {"code": code, "state": pending.state, "iss": srv.config.issuer},
    )
