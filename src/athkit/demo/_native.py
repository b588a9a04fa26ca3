"""The native-mode story: ShopBot and Alice at the ATH Shop, step by step, all over real HTTP."""

from __future__ import annotations

import re
import webbrowser
from collections.abc import Callable
from urllib.parse import urljoin

import httpx

from athkit.agent import ATHClient, ATHClientError, LoopbackListener, new_state
from athkit.demo._report import Row, Step
from athkit.demo._stack import SHOPBOT_DEVELOPER, NativeStack
from athkit.demo._story import (
    Story,
    StoryError,
    error_code,
    error_message,
    find_form,
    query_of,
    scopes_text,
)
from athkit.demo.shop import SHOP_PROVIDER_ID, SHOP_SCOPES, format_price
from athkit.oauthserver import drive_consent
from athkit.protocol import AppDiscovery, TokenResponse, create_attestation

ORDER_SCOPE = "orders:write"
UNTICKED = "cart:read"
PRODUCT = "hand-grinder"
BROWSER_TIMEOUT = 300.0


class NativeStory:
    """Runs the native story against a started :class:`NativeStack`."""

    def __init__(self, stack: NativeStack, story: Story, *, browser: bool = False) -> None:
        self.stack = stack
        self.story = story
        self.browser = browser
        self.http = httpx.Client(timeout=10.0)
        # Alice's browser: keeps the cookies of the shop and of its OAuth server.
        self.alice = httpx.Client(timeout=10.0)
        self.agent = ATHClient(
            stack.shop_url, agent_id=stack.shopbot_id, private_key=stack.shopbot_key, mode="native"
        )
        # Where ShopBot catches the user's browser coming back (RFC 8252 loopback redirect).
        self.redirect_uri = f"{urljoin(stack.shopbot_id, '/')}callback"
        self.client_id = ""

    def close(self) -> None:
        """Close the HTTP clients."""
        self.agent.close()
        self.http.close()
        self.alice.close()

    # --- the story -------------------------------------------------------------------------

    def run(self) -> None:
        """Every step, in order; each records what it measured."""
        self.discovery()
        approved = self.registration()
        first = self.handshake(
            [s for s in approved if s != ORDER_SCOPE],
            title="Authorization: ShopBot asks Alice for access",
            consent_title="Consent: Alice logs in and unticks cart:read",
            step_suffix="",
        )
        if first is not None:
            self.story.row(
                Row(
                    scenario="Known agent, user approves",
                    user_consents=True,
                    service_approved=True,
                    result="access",
                    code=None,
                    effective_scopes=list(first.effective_scopes),
                    step="token",
                )
            )
        self.browse_and_add()
        self.read_cart_refused()
        self.order_refused()
        self.operator_approves()
        again = self.handshake(
            [*[s for s in approved if s != ORDER_SCOPE], ORDER_SCOPE],
            title="Authorization again, now with orders:write",
            consent_title="Consent again: Alice allows orders:write (still not cart:read)",
            step_suffix="_again",
        )
        if again is not None:
            self.order_placed()
        self.user_revokes()
        self.call_after_revocation()
        self.unregistered_agent()
        self.impostor_agent()
        self.user_declines()

    # --- steps -----------------------------------------------------------------------------

    def discovery(self) -> None:
        document = self.agent.discover()
        assert isinstance(document, AppDiscovery)
        self.story.record(
            Step(
                step="discovery",
                title="Discovery: what does the shop offer agents?",
                ok=document.app_id == SHOP_PROVIDER_ID
                and set(document.auth.scopes_supported) == set(SHOP_SCOPES),
                outcome="found",
                scopes=list(document.auth.scopes_supported),
                details={"app_id": document.app_id, "api_base": document.api_base},
                sent=[f"GET {self.stack.shop_url}/.well-known/ath-app.json"],
                received=[
                    f"200 {document.name!r}: API at {document.api_base}",
                    f"scopes: {scopes_text(document.auth.scopes_supported)}",
                ],
                why="Native mode: the shop itself speaks ATH; nothing sits in between.",
            )
        )

    def registration(self) -> list[str]:
        response = self.agent.register(
            {SHOP_PROVIDER_ID: list(SHOP_SCOPES)},
            developer=SHOPBOT_DEVELOPER,
            purpose="Keeps your pantry stocked",
            redirect_uris=[self.redirect_uri],
        )
        self.client_id = response.client_id
        provider = next(p for p in response.approved_providers if p.provider_id == SHOP_PROVIDER_ID)
        approved = list(provider.approved_scopes)
        waiting = [s for s in SHOP_SCOPES if s not in approved and s not in provider.denied_scopes]
        self.story.record(
            Step(
                step="registration",
                title="Registration: the shop decides what ShopBot may ever ask for",
                ok=ORDER_SCOPE not in approved and "products:read" in approved,
                outcome=response.agent_status,
                scopes=approved,
                details={
                    "agent_status": response.agent_status,
                    "approved_scopes": approved,
                    "denied_scopes": list(provider.denied_scopes),
                    "review_scopes": waiting,
                    "denial_reason": provider.denial_reason,
                },
                sent=[
                    "POST /ath/agents/register  agent_id="
                    f"{self.stack.shopbot_id}, signed ES256 attestation (aud = shop)",
                    f"requested: {scopes_text(SHOP_SCOPES)}",
                ],
                received=[
                    f"agent_status {response.agent_status!r}; approved: {scopes_text(approved)}",
                    f"sent to review: {scopes_text(waiting)}"
                    + (f" ({provider.denial_reason})" if provider.denial_reason else ""),
                ],
                why="The shop fetched ShopBot's identity document and checked the signature "
                "with its published key; its policy auto-approves browsing and the cart, but "
                "a person must review placing orders.",
            )
        )
        return approved

    def handshake(
        self, scopes: list[str], *, title: str, consent_title: str, step_suffix: str
    ) -> TokenResponse | None:
        state = new_state()
        listener: LoopbackListener | None = None
        redirect_uri = self.redirect_uri
        if self.browser:
            listener = LoopbackListener(state)
            redirect_uri = listener.redirect_uri
        try:
            pending = self.agent.authorize(
                SHOP_PROVIDER_ID, scopes, user_redirect_uri=redirect_uri, state=state
            )
            self.story.record(
                Step(
                    step="authorize" + step_suffix,
                    title=title,
                    ok=True,
                    outcome="consent_url",
                    scopes=scopes,
                    details={"ath_session_id": pending.ath_session_id},
                    sent=[f"POST /ath/authorize  scopes: {scopes_text(scopes)}, state"],
                    received=[f"consent URL {pending.authorization_url}"],
                    why="The shop checked ShopBot's attestation again and that every scope asked "
                    "for is approved; the URL carries PKCE S256 and a signed agent context.",
                )
            )
            wanted = [s for s in scopes if s != UNTICKED]
            if listener is not None:
                code = self._consent_in_browser(pending.authorization_url, listener)
                consent_detail = ["you completed the consent page in your browser"]
            else:
                target = drive_consent(
                    self.alice,
                    pending.authorization_url,
                    username=self.stack.username,
                    password=self.stack.password,
                    scopes=wanted,
                    allow=True,
                    stop_at=redirect_uri,
                )
                if not isinstance(target, str):
                    raise StoryError(
                        f"consent ended on {target.url} ({target.status_code}), not at ShopBot"
                    )
                params = query_of(target)
                if params.get("state") != state:
                    raise StoryError("the redirect came back with another state")
                code = params.get("code", "")
                consent_detail = [
                    f"Alice logs in as {self.stack.username!r} at the shop's OAuth server; its "
                    "consent page shows ShopBot from the signed ath_context",
                    f"ticked: {scopes_text(wanted)}; unticked: {UNTICKED}; pressed Allow",
                ]
            self.story.record(
                Step(
                    step="consent" + step_suffix,
                    title=consent_title,
                    ok=bool(code),
                    outcome="allowed",
                    scopes=wanted,
                    sent=consent_detail,
                    received=["redirect to ShopBot with a one-time ATH code and the same state"],
                    why="The shop exchanged the OAuth code with its OAuth server server-side, "
                    "so ShopBot never sees a provider token.",
                )
            )
            token = self.agent.exchange_token(code, pending.ath_session_id)
        except ATHClientError as exc:
            self.story.record(
                Step(
                    step="authorize" + step_suffix,
                    title=title,
                    ok=False,
                    outcome="refused",
                    code=exc.code,
                    sent=[f"POST /ath/authorize  scopes: {scopes_text(scopes)}"],
                    received=[str(exc)],
                )
            )
            return None
        finally:
            if listener is not None:
                listener.close()
        breakdown = token.scope_intersection
        self.story.record(
            Step(
                step="token" + step_suffix,
                title="Token exchange: effective = approved ∩ consented ∩ requested",
                ok=UNTICKED not in token.effective_scopes
                and set(token.effective_scopes) == set(scopes) - {UNTICKED},
                outcome="issued",
                scopes=list(token.effective_scopes),
                details={
                    "agent_approved": breakdown.agent_approved,
                    "user_consented": breakdown.user_consented,
                    "requested": scopes,
                    "effective": breakdown.effective,
                    "expires_in": token.expires_in,
                },
                sent=[
                    "POST /ath/token  code, ath_session_id, client secret, fresh attestation "
                    "(aud = token endpoint)"
                ],
                received=[
                    f"agent approved : {scopes_text(breakdown.agent_approved)}",
                    f"user consented : {scopes_text(breakdown.user_consented)}",
                    f"requested      : {scopes_text(scopes)}",
                    f"effective      : {scopes_text(breakdown.effective)}  "
                    f"(Bearer token, {token.expires_in} s)",
                ],
                why="Only what BOTH the shop approved AND Alice consented to ends up in the token.",
            )
        )
        return token

    def _consent_in_browser(self, url: str, listener: LoopbackListener) -> str:
        opened = webbrowser.open(url)
        where = "in your browser" if opened else f"by opening {url}"
        self.story.reporter.banner(
            f"Log in as {self.stack.username!r} with password {self.stack.password!r} {where}; "
            f"untick {UNTICKED} and press Allow. Waiting up to {int(BROWSER_TIMEOUT)} s.",
            {"consent page": url},
            kind="waiting",
        )
        return listener.wait(BROWSER_TIMEOUT)

    def _api(
        self, method: str, path: str, json: object | None = None
    ) -> tuple[httpx.Response | None, ATHClientError | None]:
        try:
            return (
                self.agent.request(method, path, json=json, raise_for_ath_error=False),
                None,
            )
        except ATHClientError as exc:
            return None, exc

    def browse_and_add(self) -> None:
        products, _ = self._api("GET", "/products")
        listed = products.json().get("products", []) if products is not None else []
        self.story.record(
            Step(
                step="browse",
                title="ShopBot browses the catalogue (products:read)",
                ok=products is not None and products.status_code == 200 and len(listed) > 0,
                outcome="ok" if products is not None and products.status_code == 200 else "refused",
                code=error_code(products) if products is not None else None,
                details={"products": len(listed)},
                sent=["GET /api/products  Authorization: Bearer <ATH token>"],
                received=[
                    f"200: {len(listed)} products, e.g. "
                    + ", ".join(f"{p['name']} {format_price(p['price_cents'])}" for p in listed[:3])
                ],
            )
        )
        added, _ = self._api("POST", "/cart/items", {"product_id": PRODUCT, "quantity": 1})
        self.story.record(
            Step(
                step="add_to_cart",
                title="ShopBot adds a hand grinder to Alice's cart (cart:write)",
                ok=added is not None and added.status_code == 201,
                outcome="ok" if added is not None and added.status_code == 201 else "refused",
                code=error_code(added) if added is not None else None,
                sent=[f'POST /api/cart/items  {{"product_id": "{PRODUCT}", "quantity": 1}}'],
                received=[f"{added.status_code if added is not None else '-'}: item in the cart"],
            )
        )

    def read_cart_refused(self) -> None:
        response, exc = self._api("GET", "/cart")
        code = error_code(response) if response is not None else exc.code if exc else None
        self.story.record(
            Step(
                step="read_cart",
                title="ShopBot tries to read the cart: Alice unticked cart:read",
                ok=response is not None and response.status_code == 403,
                outcome="refused",
                code=code,
                sent=["GET /api/cart"],
                received=[
                    f"{response.status_code if response else '-'} {code}: "
                    + (error_message(response) if response is not None else str(exc))
                ],
                why="The shop approved cart:read, but Alice did not consent: not in the token.",
            )
        )

    def order_refused(self) -> None:
        response, exc = self._api("POST", "/orders")
        code = error_code(response) if response is not None else exc.code if exc else None
        status = self.agent.status()
        provider = next(p for p in status.approved_providers if p.provider_id == SHOP_PROVIDER_ID)
        self.story.record(
            Step(
                step="order_refused",
                title="ShopBot tries to place the order: refused",
                ok=response is not None and response.status_code == 403,
                outcome="refused",
                code=code,
                details={"agent_status": status.agent_status, "reason": provider.denial_reason},
                sent=["POST /api/orders"],
                received=[
                    f"{response.status_code if response else '-'} {code}: "
                    + (error_message(response) if response is not None else str(exc)),
                    f"GET /ath/agents/{{client_id}}: {ORDER_SCOPE} — "
                    f"{provider.denial_reason or 'not approved'}",
                ],
                why="Placing orders spends Alice's money, so the shop's operator must review "
                "it first; until then no consent can grant it.",
            )
        )

    def operator_approves(self) -> None:
        response = self.http.post(
            f"{self.stack.shop_url}/ath/admin/agents/{self.client_id}/approve",
            headers={"Authorization": f"Bearer {self.stack.admin_token}"},
        )
        status = self.agent.status()
        provider = next(p for p in status.approved_providers if p.provider_id == SHOP_PROVIDER_ID)
        self.story.record(
            Step(
                step="operator_approves",
                title="The shop's operator reviews ShopBot and approves orders:write",
                ok=response.status_code == 200 and ORDER_SCOPE in provider.approved_scopes,
                outcome="approved" if response.status_code == 200 else "failed",
                code=error_code(response),
                scopes=list(provider.approved_scopes),
                sent=[f"POST /ath/admin/agents/{self.client_id}/approve  (admin bearer token)"],
                received=[
                    f"{response.status_code}: ShopBot now approved for "
                    f"{scopes_text(provider.approved_scopes)}"
                ],
                why="Approval alone gives ShopBot nothing: it must ask Alice again.",
            )
        )

    def order_placed(self) -> None:
        before = self._stock()
        response, exc = self._api("POST", "/orders")
        after = self._stock()
        body = response.json() if response is not None and response.status_code == 201 else {}
        self.story.record(
            Step(
                step="order_placed",
                title="ShopBot places the order",
                ok=response is not None
                and response.status_code == 201
                and before is not None
                and after == before - 1,
                outcome="placed" if body else "refused",
                code=error_code(response) if response is not None else exc.code if exc else None,
                details={"order_id": body.get("id"), "stock_before": before, "stock_after": after},
                sent=["POST /api/orders"],
                received=[
                    f"{response.status_code if response else '-'}: order {body.get('id')}, "
                    f"total {format_price(int(body.get('total_cents', 0)))}",
                    f"hand grinder stock {before} → {after}",
                ],
            )
        )

    def _stock(self) -> int | None:
        response, _ = self._api("GET", f"/products/{PRODUCT}")
        if response is None or response.status_code != 200:
            return None
        stock = response.json().get("stock")
        return stock if isinstance(stock, int) else None

    def user_revokes(self) -> None:
        page = drive_consent(
            self.alice,
            f"{self.stack.shop_url}/login?next=/account/agents",
            username=self.stack.username,
            password=self.stack.password,
        )
        if isinstance(page, str) or page.status_code != 200:
            raise StoryError("Alice could not reach her Connected agents page")
        listed = "ShopBot" in page.text
        action, fields = find_form(page.text, "/account/agents/revoke", client_id=self.client_id)
        since = re.search(r"Since</th>", page.text) is not None
        response = self.alice.post(urljoin(str(page.url), action), data=fields)
        after = self.alice.get(f"{self.stack.shop_url}/account/agents")
        self.story.record(
            Step(
                step="user_revokes",
                title="Alice revokes ShopBot on the shop's Connected agents page",
                ok=listed and since and response.status_code == 303 and "ShopBot" not in after.text,
                outcome="revoked" if response.status_code == 303 else "failed",
                sent=[
                    "Alice logs in to the shop (its own OAuth login) and opens Connected agents",
                    "POST /account/agents/revoke  (session cookie + CSRF token)",
                ],
                received=[
                    "the page listed ShopBot with its scopes and since when",
                    f"{response.status_code}: ShopBot no longer listed",
                ],
            )
        )

    def call_after_revocation(self) -> None:
        response, exc = self._api("GET", "/products")
        code = error_code(response) if response is not None else exc.code if exc else None
        self.story.record(
            Step(
                step="after_revocation",
                title="ShopBot's next call",
                ok=code == "TOKEN_REVOKED",
                outcome="refused",
                code=code,
                sent=["GET /api/products  (the token that worked a moment ago)"],
                received=[f"{response.status_code if response else '-'} {code}"],
                why="Revocation is checked on every call; nothing caches the token's validity.",
            )
        )

    def _attacker_authorize(
        self, *, agent_id: str, client_id: str, sign: Callable[[], str]
    ) -> httpx.Response:
        return self.http.post(
            f"{self.stack.shop_url}/ath/authorize",
            json={
                "client_id": client_id,
                "agent_attestation": sign(),
                "provider_id": SHOP_PROVIDER_ID,
                "scopes": ["products:read", "orders:write"],
                "state": new_state(),
            },
        )

    def unregistered_agent(self) -> None:
        agent_id = self.stack.sketchy_id
        response = self._attacker_authorize(
            agent_id=agent_id,
            client_id="ath_ci_" + "made-up-client",
            sign=lambda: create_attestation(
                self.stack.sketchy_key, agent_id=agent_id, audience=self.stack.shop_url
            ),
        )
        code = error_code(response)
        self.story.record(
            Step(
                step="unregistered_agent",
                title="An unregistered agent tries to get a consent link for Alice",
                ok=response.status_code >= 400 and code == "AGENT_NOT_REGISTERED",
                outcome="blocked",
                code=code,
                sent=[f"POST /ath/authorize  from {agent_id} (valid signature, never registered)"],
                received=[f"{response.status_code} {code}: {error_message(response)}"],
                why="Alice would have clicked Allow, but there is no link for her to click.",
            )
        )
        self.story.row(
            Row(
                scenario="Unknown agent tricks user (unregistered)",
                user_consents=True,
                service_approved=False,
                result="blocked",
                code=code,
                effective_scopes=[],
                step="unregistered_agent",
            )
        )

    def impostor_agent(self) -> None:
        from athkit.protocol import generate_private_key

        forged_key = generate_private_key()
        response = self._attacker_authorize(
            agent_id=self.stack.shopbot_id,
            client_id=self.client_id,
            sign=lambda: create_attestation(
                forged_key, agent_id=self.stack.shopbot_id, audience=self.stack.shop_url
            ),
        )
        code = error_code(response)
        self.story.record(
            Step(
                step="impostor_agent",
                title="An impostor claims to be ShopBot, signing with its own key",
                ok=response.status_code >= 400 and code == "INVALID_ATTESTATION",
                outcome="blocked",
                code=code,
                sent=[
                    f"POST /ath/authorize  client_id of ShopBot, sub={self.stack.shopbot_id}, "
                    "attestation signed with another P-256 key"
                ],
                received=[f"{response.status_code} {code}: {error_message(response)}"],
                why="The signature does not verify with the key ShopBot publishes.",
            )
        )
        self.story.row(
            Row(
                scenario="Unknown agent tricks user (forged key)",
                user_consents=True,
                service_approved=False,
                result="blocked",
                code=code,
                effective_scopes=[],
                step="impostor_agent",
            )
        )

    def user_declines(self) -> None:
        state = new_state()
        code: str | None = None
        try:
            pending = self.agent.authorize(
                SHOP_PROVIDER_ID,
                ["products:read"],
                user_redirect_uri=self.redirect_uri,
                state=state,
            )
            target = drive_consent(
                self.alice,
                pending.authorization_url,
                username=self.stack.username,
                password=self.stack.password,
                allow=False,
                stop_at=self.redirect_uri,
            )
            redirect_error = query_of(target).get("error") if isinstance(target, str) else None
            try:
                # The redirect carried no code; the agent learns the outcome from /ath/token.
                self.agent.exchange_token("none", pending.ath_session_id)
            except ATHClientError as exc:
                code = exc.code
        except ATHClientError as exc:
            redirect_error, code = None, exc.code
        self.story.record(
            Step(
                step="user_declines",
                title="ShopBot asks again; this time Alice presses Deny",
                ok=redirect_error == "access_denied" and code == "USER_DENIED",
                outcome="denied",
                code=code,
                sent=[
                    "POST /ath/authorize, then Alice presses Deny on the consent page",
                    "POST /ath/token",
                ],
                received=[f"redirect with error={redirect_error}", f"{code}: no token"],
            )
        )
        self.story.row(
            Row(
                scenario="Known agent, user declines",
                user_consents=False,
                service_approved=True,
                result="no access",
                code=code,
                effective_scopes=[],
                step="user_declines",
            )
        )
