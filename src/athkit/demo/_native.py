"""The native-mode story: ShopBot and Alice at the ATH Shop, step by step, all over real HTTP."""

from __future__ import annotations

from urllib.parse import urljoin

from athkit.demo._cast import Cast, Role
from athkit.demo._handshake import HandshakeStory
from athkit.demo._report import Step
from athkit.demo._stack import SHOPBOT_DEVELOPER, SHOPBOT_NAME, NativeStack
from athkit.demo._story import Story, StoryError, error_code, find_form, scopes_text
from athkit.demo.shop import SHOP_PROVIDER_ID, SHOP_SCOPES, format_price
from athkit.protocol import APP_DISCOVERY_PATH, AppDiscovery

PRODUCT = "hand-grinder"
SHOP_ROLE = Role(
    SHOP_PROVIDER_ID, "the shop", "the shop's OAuth server", SHOPBOT_NAME, SHOPBOT_DEVELOPER
)


class NativeStory(HandshakeStory):
    """Runs the native story against a started :class:`NativeStack`."""

    untick = "cart:read"
    review_scope = "orders:write"
    connected_scope = "products:read"

    def __init__(self, stack: NativeStack, story: Story, *, browser: bool = False) -> None:
        cast = Cast(SHOP_ROLE, stack, stack.shop_url, stack.shopbot_id, stack.shopbot_key)
        super().__init__(cast, story, mode="native", browser=browser)
        self.stack = stack

    def run(self) -> None:
        """Every step, in order; each records what it measured."""
        first_scopes, _ = self.first_handshake(
            list(SHOP_SCOPES),
            purpose="Keeps your pantry stocked",
            why="The shop fetched ShopBot's identity document and checked the signature with "
            "its published key; its policy approves browsing and the cart at once, but a person "
            "must review placing orders.",
            title="Authorization: ShopBot asks Alice for access",
            consent_title=f"Consent: Alice logs in and unticks {self.untick}",
        )
        self.browse_and_add()
        self.refused_call(
            "read_cart",
            f"ShopBot tries to read the cart: Alice unticked {self.untick}",
            "GET",
            "/cart",
            why="The shop approved cart:read, but Alice did not consent: not in the token.",
        )
        self.review_refused_call(
            "order_refused",
            "ShopBot tries to place the order: refused",
            "POST",
            "/orders",
            why="Placing orders spends Alice's money, so the shop's operator must review it "
            "first; until then no consent can grant it.",
        )
        self.operator_approves()
        if self.handshake_again(first_scopes) is not None:
            self.order_placed()
        self.user_revokes()
        self.call_after_revocation("/products")
        self.attacks("products:read")

    def discovery(self) -> None:
        """GET /.well-known/ath-app.json."""
        document = self.agent.discover()
        if not isinstance(document, AppDiscovery):
            raise StoryError("the shop did not answer a native-mode service document")
        self.story.record(
            Step(
                step="discovery",
                title="Discovery: what does the shop offer agents?",
                ok=document.app_id == SHOP_PROVIDER_ID
                and set(document.auth.scopes_supported) == set(SHOP_SCOPES),
                outcome="found",
                scopes=list(document.auth.scopes_supported),
                details={"app_id": document.app_id, "api_base": document.api_base},
                sent=[f"GET {self.stack.shop_url}{APP_DISCOVERY_PATH}"],
                received=[
                    f"200 {document.name!r}: API at {document.api_base}",
                    f"scopes: {scopes_text(document.auth.scopes_supported)}",
                ],
                why="Native mode: the shop itself speaks ATH; nothing sits in between.",
            )
        )

    def browse_and_add(self) -> None:
        """products:read and cart:write, both in the token."""
        products, exc = self.api("GET", "/products")
        listed = products.json().get("products", []) if products is not None else []
        status, code, message = self.outcome_of(products, exc)
        self.story.record(
            Step(
                step="browse",
                title="ShopBot browses the catalogue (products:read)",
                ok=status == 200 and len(listed) > 0,
                outcome="ok" if status == 200 else "refused",
                code=code,
                details={"products": len(listed)},
                sent=["GET /api/products  Authorization: Bearer <ATH token>"],
                received=[
                    f"{status}: {len(listed)} products, e.g. "
                    + ", ".join(f"{p['name']} {format_price(p['price_cents'])}" for p in listed[:3])
                    if status == 200
                    else f"{status} {code}: {message}"
                ],
            )
        )
        added, exc = self.api("POST", "/cart/items", {"product_id": PRODUCT, "quantity": 1})
        status, code, message = self.outcome_of(added, exc)
        self.story.record(
            Step(
                step="add_to_cart",
                title="ShopBot adds a hand grinder to Alice's cart (cart:write)",
                ok=status == 201,
                outcome="ok" if status == 201 else "refused",
                code=code,
                sent=[f'POST /api/cart/items  {{"product_id": "{PRODUCT}", "quantity": 1}}'],
                received=[f"{status}: item in the cart" if status == 201 else f"{status} {code}"],
            )
        )

    def order_placed(self) -> None:
        """orders:write now in the token: the order goes through and stock goes down."""
        before = self._stock()
        response, exc = self.api("POST", "/orders")
        after = self._stock()
        status, code, message = self.outcome_of(response, exc)
        body = response.json() if response is not None and status == 201 else {}
        self.story.record(
            Step(
                step="order_placed",
                title="ShopBot places the order",
                ok=status == 201 and before is not None and after == before - 1,
                outcome="placed" if body else "refused",
                code=code,
                details={"order_id": body.get("id"), "stock_before": before, "stock_after": after},
                sent=["POST /api/orders"],
                received=[
                    f"{status}: order {body.get('id')}, "
                    f"total {format_price(int(body.get('total_cents', 0)))}"
                    if body
                    else f"{status} {code}: {message}",
                    f"hand grinder stock {before} → {after}",
                ],
            )
        )

    def _stock(self) -> int | None:
        response, _ = self.api("GET", f"/products/{PRODUCT}")
        if response is None or response.status_code != 200:
            return None
        stock = response.json().get("stock")
        return stock if isinstance(stock, int) else None

    def user_revokes(self, held: tuple[str, ...] | None = None) -> None:
        """Alice logs in to the shop and revokes ShopBot on Connected agents (where the scopes
        ``held`` — by default products:read and the reviewed scope — are listed)."""
        page = self.alice_walks(f"{self.stack.shop_url}/login?next=/account/agents")
        if isinstance(page, str) or page.status_code != 200:
            raise StoryError("Alice could not reach her Connected agents page")
        action, fields = find_form(page.text, "/account/agents/revoke", client_id=self.client_id)
        # Name, scopes and "since when" (a UTC timestamp) are on the page.
        shown = held if held is not None else ("products:read", self.review_scope)
        listed = SHOPBOT_NAME in page.text and all(s in page.text for s in (*shown, " UTC"))
        response = self.alice.post(urljoin(str(page.url), action), data=fields)
        after = self.alice.get(f"{self.stack.shop_url}/account/agents")
        gone = response.status_code == 303 and SHOPBOT_NAME not in after.text
        self.story.record(
            Step(
                step="user_revokes",
                title="Alice revokes ShopBot on the shop's Connected agents page",
                ok=listed and gone,
                outcome="revoked" if gone else "failed",
                code=error_code(response) if response.status_code >= 400 else None,
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
