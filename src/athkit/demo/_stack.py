"""Start the demo's servers on free 127.0.0.1 ports: the shop, its OAuth server, the agents'
identity hosts; everything in threads of this process, state in a temporary directory."""

from __future__ import annotations

import contextlib
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from athkit.agent import serve_identity
from athkit.demo.shop import (
    SHOP_SCOPE_DESCRIPTIONS,
    ShopConfig,
    ShopPolicy,
    create_shop_app,
)
from athkit.oauthserver import ClientConfig, OAuthServerConfig, UserConfig, create_oauth_app
from athkit.oauthserver import hash_password as hash_user_password
from athkit.protocol import PrivateKey, generate_private_key, private_key_to_pem, public_key_to_jwk
from athkit.testing import free_port, serve_in_thread

DEMO_USERNAME = "alice"
DEMO_USER_NAME = "Alice Example"
SHOPBOT_NAME = "ShopBot"
SHOPBOT_DEVELOPER = {"name": "ShopBot Labs", "id": "shopbot-labs"}
SKETCHY_NAME = "FreeCouponsBot"
SKETCHY_DEVELOPER = {"name": "Totally Legit Ltd", "id": "legit"}


@dataclass
class NativeStack:
    """Everything ``ath demo`` runs in native mode, and how to reach it."""

    shop_url: str
    oauth_url: str
    shopbot_id: str
    shopbot_key: PrivateKey
    sketchy_id: str
    sketchy_key: PrivateKey
    username: str
    password: str
    admin_token: str
    workdir: Path


@contextlib.contextmanager
def native_stack(*, password: str | None = None) -> Iterator[NativeStack]:
    """Start the ATH Shop, its OAuth server and two agents' identity hosts."""
    password = password or secrets.token_urlsafe(12)
    admin_token = secrets.token_urlsafe(32)
    shop_port, oauth_port = free_port(), free_port()
    shop_url, oauth_url = f"http://127.0.0.1:{shop_port}", f"http://127.0.0.1:{oauth_port}"
    web_secret, ath_secret = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    # The shop signs the agent context shown on its consent page; the OAuth server trusts
    # that key for the shop's ATH client only.
    consent_key = generate_private_key()
    shopbot_key, sketchy_key = generate_private_key(), generate_private_key()
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ath-demo-")))
        oauth_config = OAuthServerConfig(
            issuer=oauth_url,
            database_url=f"sqlite:///{workdir / 'oauth.db'}",
            secret_key=secrets.token_urlsafe(32),
            scopes={"profile": "See your name", **SHOP_SCOPE_DESCRIPTIONS},
            users=[
                UserConfig(
                    username=DEMO_USERNAME,
                    password_hash=hash_user_password(password),
                    sub="user-alice",
                    name=DEMO_USER_NAME,
                    email="alice@example.com",
                )
            ],
            clients=[
                ClientConfig(
                    client_id="athshop-web",
                    name="ATH Shop",
                    redirect_uris=[f"{shop_url}/login/callback"],
                    scopes=["profile"],
                    client_secret=web_secret,
                ),
                ClientConfig(
                    client_id="athshop-ath",
                    name="ATH Shop (agent access)",
                    redirect_uris=[f"{shop_url}/ath/callback"],
                    scopes=list(SHOP_SCOPE_DESCRIPTIONS),
                    client_secret=ath_secret,
                    ath_context_key=public_key_to_jwk(consent_key),
                ),
            ],
        )
        shop_config = ShopConfig(
            base_url=shop_url,
            database_url=f"sqlite:///{workdir / 'shop.db'}",
            secret_key=secrets.token_urlsafe(32),
            oauth_issuer=oauth_url,
            web_client_secret=web_secret,
            agent_client_secret=ath_secret,
            consent_signing_key=private_key_to_pem(consent_key).decode(),
            admin_token=admin_token,
            # Development only, and said so: the agents' identity documents live on loopback
            # over plain http. Attestations are still verified for real.
            allow_loopback=True,
            allow_http=True,
            policy=ShopPolicy(),
        )
        stack.enter_context(serve_in_thread(create_oauth_app(oauth_config), port=oauth_port))
        stack.enter_context(serve_in_thread(create_shop_app(shop_config), port=shop_port))
        shopbot_id = stack.enter_context(
            serve_identity(shopbot_key, name=SHOPBOT_NAME, developer=SHOPBOT_DEVELOPER)
        )
        sketchy_id = stack.enter_context(
            serve_identity(sketchy_key, name=SKETCHY_NAME, developer=SKETCHY_DEVELOPER)
        )
        yield NativeStack(
            shop_url=shop_url,
            oauth_url=oauth_url,
            shopbot_id=shopbot_id,
            shopbot_key=shopbot_key,
            sketchy_id=sketchy_id,
            sketchy_key=sketchy_key,
            username=DEMO_USERNAME,
            password=password,
            admin_token=admin_token,
            workdir=workdir,
        )
