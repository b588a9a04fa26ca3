"""The ATH Shop's configuration."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator


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

    @field_validator("base_url", "oauth_issuer")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/")

    @field_validator("secret_key")
    @classmethod
    def _long_secret(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 32:
            raise ValueError("secret_key must be at least 32 characters")
        return value

    @property
    def login_redirect_uri(self) -> str:
        """The storefront's OAuth redirect URI."""
        return f"{self.base_url}/login/callback"

    @property
    def secure_cookies(self) -> bool:
        """Cookies get ``Secure`` when the shop is served over https."""
        return self.base_url.startswith("https://")
