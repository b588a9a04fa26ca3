"""The storefront for people: products, login, cart, orders.

Every state-changing form is a POST carrying the session's CSRF token; the session cookie is
HttpOnly and SameSite=Lax (Secure on https).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from athkit.demo.shop._errors import ShopError
from athkit.demo.shop._login import LoginClient, LoginError
from athkit.demo.shop._service import ShopService, format_price
from athkit.demo.shop._sessions import LoginSessionStore, WebSession
from athkit.protocol import ATHError, generate_code_verifier
from athkit.server import ATHEngine, read_form

_NOTICES = {
    "added": ("Added to your cart.", "ok"),
    "removed": ("Removed from your cart.", "ok"),
    "ordered": ("Order placed. Thank you!", "ok"),
    "revoked": ("Access revoked. That agent can no longer act for you.", "ok"),
    "loggedout": ("You are logged out.", "ok"),
}


@dataclass
class ShopWeb:
    """What the storefront's handlers share."""

    service: ShopService
    sessions: LoginSessionStore
    login: LoginClient
    templates: Jinja2Templates
    http: httpx.AsyncClient
    cookie_name: str
    secure_cookies: bool
    session_max_age: int

    async def session(self, request: Request) -> WebSession | None:
        """The browser's session, if it has a live one."""
        return await self.sessions.load(request.cookies.get(self.cookie_name))

    def set_cookie(self, response: Response, value: str) -> None:
        """Attach the session cookie."""
        response.set_cookie(
            self.cookie_name,
            value,
            max_age=self.session_max_age,
            path="/",
            httponly=True,
            samesite="lax",
            secure=self.secure_cookies,
        )

    def render(
        self,
        request: Request,
        template: str,
        session: WebSession | None,
        status_code: int = 200,
        **context: Any,
    ) -> Response:
        """A page, with the header's login state and any notice named in ``?n=``."""
        notice = _NOTICES.get(request.query_params.get("n", ""))
        user = None
        if session is not None and session.user_id is not None:
            user = {"id": session.user_id, "name": session.user_name or session.user_id}
        return self.templates.TemplateResponse(
            request,
            template,
            {
                "base": "",
                "user": user,
                "csrf": session.csrf_token if session else "",
                "price": format_price,
                "notice": notice[0] if notice else context.pop("notice", None),
                "notice_kind": notice[1] if notice else context.pop("notice_kind", "bad"),
                **context,
            },
            status_code=status_code,
            headers={"Cache-Control": "no-store"},
        )

    def message(
        self,
        request: Request,
        session: WebSession | None,
        heading: str,
        text: str,
        status_code: int,
    ) -> Response:
        """A page that explains a refusal."""
        return self.render(
            request, "message.html", session, status_code, heading=heading, text=text
        )

    async def user_session(self, request: Request, path: str) -> tuple[WebSession, str] | Response:
        """For a page that needs a logged-in person: (session, user id), or the redirect to
        the login page that comes back to ``path``."""
        session = await self.session(request)
        if session is None or session.user_id is None:
            return RedirectResponse(f"/login?next={path}", status_code=303)
        return session, session.user_id

    async def form_action(
        self,
        request: Request,
        action: Callable[[str, FormData], Awaitable[object]],
        *,
        refused: str,
        done: str,
    ) -> Response:
        """A logged-in form POST: run ``action(user_id, form)``, then redirect to ``done``; a
        :class:`ShopError` becomes a page titled ``refused``."""
        checked = await self.logged_in_form(request)
        if isinstance(checked, Response):
            return checked
        session, user_id, form = checked
        try:
            await action(user_id, form)
        except ShopError as exc:
            return self.message(request, session, refused, exc.message, exc.status)
        return RedirectResponse(done, status_code=303)

    async def logged_in_form(self, request: Request) -> tuple[WebSession, str, FormData] | Response:
        """For a POST from a logged-in page: (session, user id, form) or the refusal page."""
        session = await self.session(request)
        if session is None or session.user_id is None:
            return RedirectResponse("/login", status_code=303)
        form = await read_form(request, max_fields=50)
        presented = form.get("csrf")
        if not isinstance(presented, str) or not hmac.compare_digest(
            presented.encode(), session.csrf_token.encode()
        ):
            return self.message(
                request,
                session,
                "This form has expired",
                "Reload the page and try again.",
                403,
            )
        return session, session.user_id, form


def _local_path(value: str | None) -> str:
    # Only same-site paths: "//evil.example" and "/\\evil" would leave the shop.
    if value and value.startswith("/") and not value.startswith(("//", "/\\")):
        return value[:512]
    return "/"


def _product_id(form: FormData) -> str:
    return str(form.get("product_id", ""))[:64]


def _engine(request: Request) -> ATHEngine:
    engine = request.app.state.ath_engine
    assert isinstance(engine, ATHEngine)
    return engine


def page_routes(web: ShopWeb) -> list[Route]:
    """The storefront's routes."""

    async def index(request: Request) -> Response:
        session = await web.session(request)
        products = await web.service.list_products()
        return web.render(request, "index.html", session, products=products)

    async def login(request: Request) -> Response:
        session = await web.session(request)
        state = secrets.token_urlsafe(32)
        verifier = generate_code_verifier()
        next_path = _local_path(request.query_params.get("next"))
        response = RedirectResponse(
            web.login.authorization_url(state=state, code_verifier=verifier), status_code=303
        )
        fields = {"login_state": state, "login_verifier": verifier, "login_next": next_path}
        if session is None:
            cookie, _ = await web.sessions.create(**fields)
            web.set_cookie(response, cookie)
        else:
            await web.sessions.update(session, **fields)
        return response

    async def login_callback(request: Request) -> Response:
        session = await web.session(request)
        params = request.query_params
        if session is None or session.login_state is None or session.login_verifier is None:
            return web.message(
                request, session, "Login expired", "Start again from the Log in button.", 400
            )
        state = params.get("state", "")
        if not hmac.compare_digest(state.encode(), session.login_state.encode()):
            return web.message(
                request, session, "Login refused", "This login did not start here.", 400
            )
        await web.sessions.update(session, login_state=None, login_verifier=None)
        code = params.get("code")
        if params.get("error") or not code:
            return web.message(request, session, "Not logged in", "The login was cancelled.", 400)
        try:
            user = await web.login.finish(web.http, code=code, code_verifier=session.login_verifier)
        except LoginError as exc:
            return web.message(request, session, "Login failed", str(exc), 502)
        # A fresh cookie value at login: a session id planted before login is worthless.
        await web.sessions.end(session)
        cookie, _ = await web.sessions.create(user_id=user.user_id, user_name=user.name)
        response = RedirectResponse(session.login_next or "/", status_code=303)
        web.set_cookie(response, cookie)
        return response

    async def logout(request: Request) -> Response:
        checked = await web.logged_in_form(request)
        if isinstance(checked, Response):
            return checked
        session, _, _ = checked
        await web.sessions.end(session)
        response = RedirectResponse("/?n=loggedout", status_code=303)
        response.delete_cookie(web.cookie_name, path="/")
        return response

    async def cart(request: Request) -> Response:
        signed_in = await web.user_session(request, "/cart")
        if isinstance(signed_in, Response):
            return signed_in
        session, user_id = signed_in
        return web.render(request, "cart.html", session, cart=await web.service.get_cart(user_id))

    async def cart_add(request: Request) -> Response:
        async def add(user_id: str, form: FormData) -> None:
            await web.service.add_to_cart(user_id, _product_id(form), 1)

        return await web.form_action(request, add, refused="Not added", done="/cart?n=added")

    async def cart_remove(request: Request) -> Response:
        async def remove(user_id: str, form: FormData) -> None:
            await web.service.remove_from_cart(user_id, _product_id(form))

        return await web.form_action(request, remove, refused="Not removed", done="/cart?n=removed")

    async def orders(request: Request) -> Response:
        signed_in = await web.user_session(request, "/orders")
        if isinstance(signed_in, Response):
            return signed_in
        session, user_id = signed_in
        listed = await web.service.list_orders(user_id)
        return web.render(request, "orders.html", session, orders=listed)

    async def place_order(request: Request) -> Response:
        async def place(user_id: str, _: FormData) -> None:
            await web.service.place_order(user_id, placed_by="web")

        return await web.form_action(
            request, place, refused="Order not placed", done="/orders?n=ordered"
        )

    async def connected_agents(request: Request) -> Response:
        signed_in = await web.user_session(request, "/account/agents")
        if isinstance(signed_in, Response):
            return signed_in
        session, user_id = signed_in
        grants = await _engine(request).list_user_grants(user_id)
        return web.render(request, "agents.html", session, grants=grants)

    async def revoke_agent(request: Request) -> Response:
        checked = await web.logged_in_form(request)
        if isinstance(checked, Response):
            return checked
        session, user_id, form = checked
        client_id = form.get("client_id")
        if not isinstance(client_id, str) or not client_id:
            return web.message(request, session, "Nothing revoked", "No agent was named.", 400)
        try:
            # ATH §4.7: the user revokes through the service's own authenticated interface;
            # every token of this agent for this user dies at once.
            await _engine(request).revoke_for_user(user_id, client_id=client_id[:255])
        except ATHError as exc:
            return web.message(request, session, "Nothing revoked", exc.message, exc.status)
        return RedirectResponse("/account/agents?n=revoked", status_code=303)

    return [
        Route("/", index),
        Route("/account/agents", connected_agents),
        Route("/account/agents/revoke", revoke_agent, methods=["POST"]),
        Route("/login", login),
        Route("/login/callback", login_callback),
        Route("/logout", logout, methods=["POST"]),
        Route("/cart", cart),
        Route("/cart/add", cart_add, methods=["POST"]),
        Route("/cart/remove", cart_remove, methods=["POST"]),
        Route("/orders", orders),
        Route("/orders", place_order, methods=["POST"]),
    ]
