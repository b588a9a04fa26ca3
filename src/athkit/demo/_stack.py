"""Start the demo's servers on free 127.0.0.1 ports, in threads of this process, with their
state in a temporary directory: the shop and its OAuth server (native mode), or Example Mail
behind the ATH gateway (gateway mode), and the agents' identity hosts."""

from __future__ import annotations

import contextlib
import secrets
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from athkit.agent import serve_identity
from athkit.demo._mail import MAIL_ROUTES, MAIL_SCOPE_DESCRIPTIONS, create_mail_app
from athkit.demo.shop import (
    SHOP_SCOPE_DESCRIPTIONS,
    ShopConfig,
    ShopPolicy,
    create_shop_app,
)
from athkit.gateway import config_from_mapping, create_gateway_app
from athkit.oauthserver import ClientConfig, OAuthServerConfig, UserConfig, create_oauth_app
from athkit.oauthserver import hash_password as hash_user_password
from athkit.protocol import (
    CALLBACK_PATH,
    PrivateKey,
    generate_private_key,
    private_key_to_pem,
    public_key_to_jwk,
)
from athkit.testing import free_port, serve_in_thread

DEMO_USERNAME = "alice"
DEMO_USER_NAME = "Alice Example"
SHOPBOT_NAME = "ShopBot"
SHOPBOT_DEVELOPER = {"name": "ShopBot Labs", "id": "shopbot-labs"}
SKETCHY_NAME = "FreeCouponsBot"
SKETCHY_DEVELOPER = {"name": "Totally Legit Ltd", "id": "legit"}


@dataclass(frozen=True)
class _Parts:
    """What each stack makes fresh before it starts anything: the person's password, the
    operator's token, two free ports (the implementer's, the OAuth server's), two client
    secrets, the consent-signing key and the two agents' keys."""

    password: str
    admin_token: str
    app_port: int
    oauth_port: int
    secrets: tuple[str, str]
    consent_key: PrivateKey
    agent_key: PrivateKey
    sketchy_key: PrivateKey

    @classmethod
    def new(cls, password: str | None) -> _Parts:
        """Fresh parts; ``password`` is kept when given."""
        return cls(
            password=password or secrets.token_urlsafe(12),
            admin_token=secrets.token_urlsafe(32),
            app_port=free_port(),
            oauth_port=free_port(),
            secrets=(secrets.token_urlsafe(32), secrets.token_urlsafe(32)),
            consent_key=generate_private_key(),
            agent_key=generate_private_key(),
            sketchy_key=generate_private_key(),
        )

    @property
    def app_url(self) -> str:
        """The implementer's (shop's or gateway's) loopback URL."""
        return f"http://127.0.0.1:{self.app_port}"

    @property
    def oauth_url(self) -> str:
        """The OAuth server's loopback URL."""
        return f"http://127.0.0.1:{self.oauth_port}"

    def stack_fields(self, sketchy_id: str, workdir: Path) -> dict[str, Any]:
        """The :class:`Stack` fields both stacks fill alike."""
        return {
            "oauth_url": self.oauth_url,
            "sketchy_id": sketchy_id,
            "sketchy_key": self.sketchy_key,
            "username": DEMO_USERNAME,
            "password": self.password,
            "admin_token": self.admin_token,
            "workdir": workdir,
        }

    def ath_client(
        self, client_id: str, name: str, scopes: Iterable[str], secret: str
    ) -> ClientConfig:
        """The implementer's (shop's or gateway's) ATH client at the OAuth server: it comes back
        to ``/ath/callback``, and the consent page trusts the agent context it signs."""
        return ClientConfig(
            client_id=client_id,
            name=name,
            redirect_uris=[self.app_url + CALLBACK_PATH],
            scopes=list(scopes),
            client_secret=secret,
            ath_context_key=public_key_to_jwk(self.consent_key),
        )

    def oauth_config(
        self, workdir: Path, db: str, scopes: dict[str, str], clients: list[ClientConfig]
    ) -> OAuthServerConfig:
        """The OAuth server's configuration: Alice, ``scopes`` and ``clients``, state in
        ``workdir / db``."""
        return OAuthServerConfig(
            issuer=self.oauth_url,
            database_url=f"sqlite:///{workdir / db}",
            secret_key=secrets.token_urlsafe(32),
            scopes=scopes,
            users=[_alice(self.password)],
            clients=clients,
        )


def _workdir(stack: contextlib.ExitStack) -> Path:
    """A temporary directory for the stack's state, removed when ``stack`` closes."""
    return Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ath-demo-")))


def _alice(password: str) -> UserConfig:
    """The demo's one person, as both OAuth servers know her."""
    return UserConfig(
        username=DEMO_USERNAME,
        password_hash=hash_user_password(password),
        sub="user-alice",
        name=DEMO_USER_NAME,
        email="alice@example.com",
    )


def _serve_agents(
    stack: contextlib.ExitStack, p: _Parts, name: str, developer: dict[str, str]
) -> tuple[str, str]:
    """Serve the story's agent (``name``, with ``p``'s agent key) and the sketchy one on identity
    hosts; their agent ids."""
    agent_id = stack.enter_context(serve_identity(p.agent_key, name=name, developer=developer))
    sketchy_id = stack.enter_context(
        serve_identity(p.sketchy_key, name=SKETCHY_NAME, developer=SKETCHY_DEVELOPER)
    )
    return agent_id, sketchy_id


@dataclass(kw_only=True)
class Stack:
    """What both stacks share: the OAuth server where Alice logs in, the sketchy agent, Alice's
    credentials, the operator's token and the state directory."""

    oauth_url: str
    sketchy_id: str
    sketchy_key: PrivateKey
    username: str
    password: str
    admin_token: str
    workdir: Path


@dataclass(kw_only=True)
class NativeStack(Stack):
    """Everything ``ath demo`` runs in native mode, and how to reach it."""

    shop_url: str
    shopbot_id: str
    shopbot_key: PrivateKey


@contextlib.contextmanager
def native_stack(*, password: str | None = None, mcp: bool = False) -> Iterator[NativeStack]:
    """Start the ATH Shop, its OAuth server and two agents' identity hosts (with ``mcp``, the
    shop also serves its tools as an MCP server at ``/mcp``)."""
    # The shop signs the agent context shown on its consent page; the OAuth server trusts
    # that key for the shop's ATH client only.
    p = _Parts.new(password)
    web_secret, ath_secret = p.secrets
    with contextlib.ExitStack() as stack:
        workdir = _workdir(stack)
        oauth_config = p.oauth_config(
            workdir,
            "oauth.db",
            {"profile": "See your name", **SHOP_SCOPE_DESCRIPTIONS},
            [
                ClientConfig(
                    client_id="athshop-web",
                    name="ATH Shop",
                    redirect_uris=[f"{p.app_url}/login/callback"],
                    scopes=["profile"],
                    client_secret=web_secret,
                ),
                p.ath_client(
                    "athshop-ath", "ATH Shop (agent access)", SHOP_SCOPE_DESCRIPTIONS, ath_secret
                ),
            ],
        )
        shop_config = ShopConfig(
            base_url=p.app_url,
            database_url=f"sqlite:///{workdir / 'shop.db'}",
            secret_key=secrets.token_urlsafe(32),
            oauth_issuer=p.oauth_url,
            web_client_secret=web_secret,
            agent_client_secret=ath_secret,
            consent_signing_key=private_key_to_pem(p.consent_key).decode(),
            admin_token=p.admin_token,
            # Development only, and said so: the agents' identity documents live on loopback
            # over plain http. Attestations are still verified for real.
            allow_loopback=True,
            allow_http=True,
            policy=ShopPolicy(),
            mcp_endpoint=mcp,
        )
        stack.enter_context(serve_in_thread(create_oauth_app(oauth_config), port=p.oauth_port))
        stack.enter_context(serve_in_thread(create_shop_app(shop_config), port=p.app_port))
        shopbot_id, sketchy_id = _serve_agents(stack, p, SHOPBOT_NAME, SHOPBOT_DEVELOPER)
        yield NativeStack(
            shop_url=p.app_url,
            shopbot_id=shopbot_id,
            shopbot_key=p.agent_key,
            **p.stack_fields(sketchy_id, workdir),
        )


MAILBOT_NAME = "MailBot"
MAILBOT_DEVELOPER = {"name": "MailBot Labs", "id": "mailbot-labs"}
MAIL_PROVIDER_ID = "example-mail"


@dataclass(kw_only=True)
class GatewayStack(Stack):
    """Everything ``ath demo --gateway`` runs, and how to reach it."""

    gateway_url: str
    mail_url: str
    mailbot_id: str
    mailbot_key: PrivateKey


@contextlib.contextmanager
def gateway_stack(*, password: str | None = None) -> Iterator[GatewayStack]:
    """Start Example Mail (its OAuth server and its mail API, both unaware of ATH), the ATH
    gateway in front of it, configured as an operator would, and two agents' identity hosts."""
    p = _Parts.new(password)
    gateway_secret, api_secret = p.secrets
    gateway_url, oauth_url = p.app_url, p.oauth_url
    with contextlib.ExitStack() as stack:
        workdir = _workdir(stack)
        oauth_config = p.oauth_config(
            workdir,
            "mail-oauth.db",
            dict(MAIL_SCOPE_DESCRIPTIONS),
            [
                p.ath_client("ath-gateway", "ATH gateway", MAIL_SCOPE_DESCRIPTIONS, gateway_secret),
                ClientConfig(
                    client_id="mail-api",
                    name="Example Mail API",
                    redirect_uris=["http://127.0.0.1:9/unused"],
                    scopes=[],
                    client_secret=api_secret,
                    introspection=True,
                ),
            ],
        )
        stack.enter_context(serve_in_thread(create_oauth_app(oauth_config), port=p.oauth_port))
        mail = stack.enter_context(
            serve_in_thread(
                create_mail_app(issuer=oauth_url, client_id="mail-api", client_secret=api_secret)
            )
        )
        # The operator's configuration, secrets in files as gateway.toml would name them.
        files = {
            "secret_key": secrets.token_urlsafe(32),
            "admin_token": p.admin_token,
            "mail_client_secret": gateway_secret,
            "consent_key.pem": private_key_to_pem(p.consent_key).decode(),
        }
        for name, value in files.items():
            path = workdir / name
            path.write_text(value, encoding="utf-8")
            path.chmod(0o600)
        config = config_from_mapping(
            {
                "public_base_url": gateway_url,
                "gateway_id": "ath-demo-gateway",
                "name": "ATH demo gateway",
                "listen": f"127.0.0.1:{p.app_port}",
                "database_url": f"sqlite:///{workdir / 'gateway.db'}",
                "secret_key_file": str(workdir / "secret_key"),
                "admin_token_file": str(workdir / "admin_token"),
                "consent_signing_key_file": str(workdir / "consent_key.pem"),
                # Development only, and said so: the agents' identity documents live on
                # loopback over plain http. Attestations are still verified for real.
                "verifier": {"allow_loopback": True, "allow_http": True},
                "providers": {
                    MAIL_PROVIDER_ID: {
                        "display_name": "Example Mail",
                        "categories": ["email"],
                        "authorization_endpoint": f"{oauth_url}/authorize",
                        "token_endpoint": f"{oauth_url}/token",
                        "userinfo_endpoint": f"{oauth_url}/userinfo",
                        "client_id": "ath-gateway",
                        "client_secret_file": str(workdir / "mail_client_secret"),
                        "scopes": list(MAIL_SCOPE_DESCRIPTIONS),
                        "api_base": mail.url,
                        "routes": MAIL_ROUTES,
                        "approval": {
                            "auto_approve": ["mail:read", "mail:delete"],
                            "review": ["mail:send"],
                            "approve_while_reviewing": True,
                        },
                    }
                },
            }
        )
        stack.enter_context(serve_in_thread(create_gateway_app(config), port=p.app_port))
        mailbot_id, sketchy_id = _serve_agents(stack, p, MAILBOT_NAME, MAILBOT_DEVELOPER)
        yield GatewayStack(
            gateway_url=gateway_url,
            mail_url=mail.url,
            mailbot_id=mailbot_id,
            mailbot_key=p.agent_key,
            **p.stack_fields(sketchy_id, workdir),
        )
