"""The ATH Shop's configuration."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from athkit.protocol._settings_checks import http_base_url, require_long_secret
from athkit.server import RateLimitSettings

SHOP_APP_ID = "athshop"
SHOP_PROVIDER_ID = "athshop"
# Scope → what the consent page tells the person.
SHOP_SCOPE_DESCRIPTIONS: dict[str, str] = {
    "products:read": "Browse products and prices",
    "cart:read": "See what is in your cart",
    "cart:write": "Add and remove items in your cart",
    "orders:read": "See your orders",
    "orders:write": "Place orders that you pay for",
}
SHOP_SCOPES = tuple(SHOP_SCOPE_DESCRIPTIONS)


class ShopPolicy(BaseModel):
    """Which agent scopes the shop approves by itself, which an operator reviews, which never."""

    model_config = ConfigDict(extra="forbid")

    auto_approve: list[str] = Field(
        default_factory=lambda: ["products:read", "cart:read", "cart:write", "orders:read"]
    )
    review: list[str] = Field(default_factory=lambda: ["orders:write"])
    never: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _known_scopes(self) -> ShopPolicy:
        for name in ("auto_approve", "review", "never"):
            unknown = [s for s in getattr(self, name) if s not in SHOP_SCOPES]
            if unknown:
                raise ValueError(f"{name}: unknown shop scopes {unknown}")
        return self


class ShopConfig(BaseModel):
    """Where the shop lives, its database, its secrets and its OAuth server."""

    model_config = ConfigDict(extra="forbid")

    base_url: str = Field(description="public base URL, e.g. http://127.0.0.1:8500")
    database_url: str = "sqlite:///athshop.db"
    secret_key: SecretStr = Field(description="at least 32 characters")
    oauth_issuer: str = Field(description="base URL of the shop's OAuth server")
    web_client_id: str = "athshop-web"
    web_client_secret: SecretStr = Field(description="the storefront's OAuth client secret")
    cookie_name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-]{1,64}$")] = "athshop_session"
    session_lifetime: Annotated[int, Field(ge=60, le=30 * 86400)] = 8 * 3600
    seed_catalogue: bool = True
    agent_client_id: str = Field(
        default="athshop-ath", description="the shop's OAuth client for agents' consent"
    )
    agent_client_secret: SecretStr
    consent_signing_key: str | None = Field(
        default=None, description="ES256 private key (PEM) that signs the agent consent context"
    )
    admin_token: SecretStr | None = Field(
        default=None, description="bearer token of /ath/admin; the admin API is off without it"
    )
    allow_loopback: bool = Field(
        default=False, description="development: fetch agent identity documents from loopback"
    )
    allow_http: bool = Field(
        default=False, description="development: fetch agent identity documents over http"
    )
    policy: ShopPolicy = Field(default_factory=ShopPolicy)
    rate_limit: RateLimitSettings = Field(
        default_factory=RateLimitSettings,
        description="requests per agent through /api (ATH §6); default 600 per minute",
    )
    mcp_endpoint: bool = Field(
        default=False,
        description="also serve the shop's tools as an MCP server at /mcp (needs athkit[mcp])",
    )

    @field_validator("base_url", "oauth_issuer")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return http_base_url(value)

    @field_validator("secret_key")
    @classmethod
    def _long_secret(cls, value: SecretStr) -> SecretStr:
        require_long_secret(value.get_secret_value(), "secret_key")
        return value

    @property
    def login_redirect_uri(self) -> str:
        """The storefront's OAuth redirect URI."""
        return f"{self.base_url}/login/callback"

    @property
    def secure_cookies(self) -> bool:
        """Cookies get ``Secure`` when the shop is served over https."""
        return self.base_url.startswith("https://")
