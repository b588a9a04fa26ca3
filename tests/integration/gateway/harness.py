"""A gateway world on 127.0.0.1: two providers, each our OAuth server plus an upstream API that
checks the provider's tokens through the OAuth server's ``/introspect`` (RFC 7662), an agent
identity host, and the gateway in front, configured the way an operator would (a config mapping
validated like gateway.toml, secrets in files)."""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from athkit.gateway import GatewayApp, config_from_mapping, create_gateway_app
from athkit.oauthserver import ClientConfig, OAuthServerConfig, UserConfig, create_oauth_app
from athkit.protocol import PrivateKey, generate_private_key, private_key_to_pem, public_key_to_jwk
from athkit.server import TokenCipher, open_sql_stores
from athkit.testing import ServerHandle, drive_consent, free_port, serve_in_thread
from tests.integration.gateway.upstream import create_upstream_app
from tests.integration.native.harness import (
    PASSWORD,
    PASSWORD_HASH,
    REDIRECT,
    IdentityHost,
    LocalAgent,
)

ADMIN_TOKEN = "gateway-admin-token-0123456789abcdef-xyz"
SECRET_KEY = "gateway-secret-key-0123456789abcdef-xyz"
GATEWAY_CLIENT_ID = "ath-gateway"
USERS = {"alice": "alice-sub-1", "bob": "bob-sub-2"}
SCOPES = {
    "mail": ["mail:read", "mail:send", "mail:delete"],
    "cal": ["cal:read", "cal:write"],
}
ROUTES = {
    "mail": {
        "mail:read": [
            "GET /messages",
            "GET /messages/{id}",
            "GET /slow",
            "GET /big",
            "GET /drip",
            "GET /always-401",
        ],
        "mail:send": ["POST /messages"],
        "mail:delete": ["DELETE /messages/{id}"],
    },
    "cal": {"cal:read": ["GET /messages", "GET /messages/{id}"], "cal:write": ["POST /messages"]},
}
LIMITED_AGENT = "limited"  # an agent name whose agent_id gets a per-agent rate limit of 3


class OffsetClock:
    """Real time plus an offset a test can move forward (shared by every server)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    def __call__(self) -> float:
        return self.now()

    def advance(self, seconds: float) -> None:
        self.offset += seconds


def oauth_config(
    pid: str, port: int, gateway_base: str, context_key: PrivateKey, access_lifetime: int
) -> OAuthServerConfig:
    """Provider ``pid``'s authorization server: the gateway and its upstream API as clients."""
    return OAuthServerConfig(
        issuer=f"http://127.0.0.1:{port}",
        database_url="sqlite:///:memory:",
        secret_key=secrets.token_urlsafe(32),
        cookie_name=f"oauth_{pid}",
        access_token_lifetime=access_lifetime,
        # "profile": what the gateway asks for when a user signs in to see connected agents.
        scopes={"profile": "Know who you are", **{s: f"Allow {s}" for s in SCOPES[pid]}},
        users=[
            UserConfig(username=u, password_hash=PASSWORD_HASH, sub=sub, name=u.title())
            for u, sub in USERS.items()
        ],
        clients=[
            ClientConfig(
                client_id=GATEWAY_CLIENT_ID,
                name="ATH Gateway",
                client_secret=f"{pid}-gateway-client-secret",
                redirect_uris=[f"{gateway_base}/ath/callback", f"{gateway_base}/account/callback"],
                scopes=["profile", *SCOPES[pid]],
                ath_context_key=public_key_to_jwk(context_key.public_key()),
            ),
            ClientConfig(
                client_id=f"{pid}-api",
                name=f"{pid} API",
                client_secret=f"{pid}-api-introspection-secret",
                redirect_uris=["http://127.0.0.1:9/unused"],
                scopes=[],
                introspection=True,
            ),
        ],
    )


def introspecting_check(pid: str, oauth_url: str) -> Any:
    """The upstream's token check: RFC 7662 introspection at the provider's OAuth server."""

    async def check(token: str) -> str | None:
        async with httpx.AsyncClient(timeout=5) as client:
            response = await client.post(
                f"{oauth_url}/introspect",
                data={"token": token},
                auth=(f"{pid}-api", f"{pid}-api-introspection-secret"),
            )
        body = response.json()
        return str(body["sub"]) if response.status_code == 200 and body.get("active") else None

    return check


def gateway_mapping(
    base: str, tmp: Path, oauth: dict[str, str], apis: dict[str, str], limited_agent_id: str
) -> dict[str, Any]:
    """The gateway configuration, as its TOML file would hold it."""
    files = {
        "secret_key": SECRET_KEY,
        "admin_token": ADMIN_TOKEN,
        "mail_secret": "mail-gateway-client-secret",
        "cal_secret": "cal-gateway-client-secret",
    }
    for name, value in files.items():
        (tmp / name).write_text(value)
    return {
        "mode": "production",
        "public_base_url": base,
        "gateway_id": "test-gateway",
        "listen": base.removeprefix("http://"),
        "database_url": f"sqlite:///{tmp}/gateway.db",
        "secret_key_file": str(tmp / "secret_key"),
        "admin_token_file": str(tmp / "admin_token"),
        "consent_signing_key_file": str(tmp / "consent_key.pem"),
        # The agents' identity documents live on 127.0.0.1 over http in these tests.
        "verifier": {"allow_loopback": True, "allow_http": True},
        "rate_limit": {"requests": 1000, "window_seconds": 60, "agents": {limited_agent_id: 3}},
        "providers": {
            "mail": {
                "display_name": "Test Mail",
                "categories": ["email"],
                "issuer": oauth["mail"],  # endpoints from its RFC 8414 metadata
                "client_id": GATEWAY_CLIENT_ID,
                "client_secret_file": str(tmp / "mail_secret"),
                "scopes": SCOPES["mail"],
                "api_base": apis["mail"],
                "routes": ROUTES["mail"],
                "timeout_seconds": 1,
                "approval": {"auto_approve": ["mail:read"], "review": ["mail:send"]},
                "user_login_scopes": ["profile"],
            },
            "cal": {
                "display_name": "Test Calendar",
                "authorization_endpoint": f"{oauth['cal']}/authorize",
                "token_endpoint": f"{oauth['cal']}/token",
                "userinfo_endpoint": f"{oauth['cal']}/userinfo",
                "client_id": GATEWAY_CLIENT_ID,
                "client_secret_file": str(tmp / "cal_secret"),
                "scopes": SCOPES["cal"],
                "api_base": apis["cal"],
                "routes": ROUTES["cal"],
                "approval": {"auto_approve": ["cal:read", "cal:write"]},
                "user_login_scopes": ["profile"],
            },
        },
    }


@dataclass
class GatewayWorld:
    """The running servers, and an agent's and a browser's view of them."""

    base: str
    app: GatewayApp
    clock: OffsetClock
    identities: IdentityHost
    agents_url: str
    upstreams: dict[str, ServerHandle]
    http: httpx.Client
    seen: list[httpx.Response] = field(default_factory=list)

    # --- agents ---------------------------------------------------------------------------

    def new_agent(self, name: str | None = None) -> LocalAgent:
        name = name or f"agent-{secrets.token_hex(4)}"
        key = generate_private_key()
        agent_id = f"{self.agents_url}/agents/{name}/agent.json"
        self.identities.documents[name] = {
            "ath_version": "0.1",
            "agent_id": agent_id,
            "name": f"{name} agent",
            "developer": {"name": "Test Dev", "id": "dev-test"},
            "public_key": public_key_to_jwk(key.public_key()),
        }
        return LocalAgent(name, agent_id, key)

    def register(self, agent: LocalAgent, requested: dict[str, list[str]]) -> dict[str, Any]:
        response = self.http.post(
            f"{self.base}/ath/agents/register",
            json={
                "agent_id": agent.agent_id,
                "agent_attestation": agent.attest(self.base, self.clock),
                "developer": {"name": "Test Dev", "id": "dev-test"},
                "requested_providers": [
                    {"provider_id": pid, "scopes": scopes} for pid, scopes in requested.items()
                ],
                "redirect_uris": [REDIRECT],
            },
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    def authorize(
        self, agent: LocalAgent, client_id: str, provider_id: str, scopes: list[str]
    ) -> httpx.Response:
        return self.http.post(
            f"{self.base}/ath/authorize",
            json={
                "client_id": client_id,
                "agent_attestation": agent.attest(self.base, self.clock),
                "provider_id": provider_id,
                "scopes": scopes,
                "state": secrets.token_urlsafe(24),
                "user_redirect_uri": REDIRECT,
            },
        )

    def connect(
        self,
        agent: LocalAgent,
        registration: dict[str, Any],
        provider_id: str,
        scopes: list[str],
        *,
        user: str = "alice",
    ) -> dict[str, Any]:
        """authorize → the user's browser consents at the provider → token."""
        started = self.authorize(agent, registration["client_id"], provider_id, scopes)
        assert started.status_code == 200, started.text
        session = started.json()
        with httpx.Client(timeout=10, event_hooks={"response": [self._record]}) as browser:
            landed = drive_consent(
                browser,
                session["authorization_url"],
                username=user,
                password=PASSWORD,
                stop_at=REDIRECT,
            )
        assert isinstance(landed, str), f"consent did not redirect: {landed.text}"
        query = {k: v[0] for k, v in parse_qs(urlsplit(landed).query).items()}
        token_endpoint = f"{self.base}/ath/token"
        response = self.http.post(
            token_endpoint,
            json={
                "grant_type": "authorization_code",
                "client_id": registration["client_id"],
                "client_secret": registration["client_secret"],
                "agent_attestation": agent.attest(token_endpoint, self.clock),
                "code": query["code"],
                "ath_session_id": session["ath_session_id"],
            },
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def call(
        self,
        token: str,
        agent: LocalAgent | None,
        method: str,
        path: str,
        *,
        agent_id: str | None = None,
        base: str | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        headers = {**kwargs.pop("headers", {}), "Authorization": f"Bearer {token}"}
        if agent_id is not None or agent is not None:
            headers["X-ATH-Agent-ID"] = agent_id or agent.agent_id
        return self.http.request(
            method, f"{base or self.base}/ath/proxy{path}", headers=headers, **kwargs
        )

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.request(
            method,
            f"{self.base}/ath/admin{path}",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            **kwargs,
        )

    # --- what the gateway holds -----------------------------------------------------------

    def provider_tokens(self) -> set[str]:
        """Every provider access and refresh token the gateway holds, decrypted."""
        import asyncio

        cipher = TokenCipher(SECRET_KEY)

        async def collect() -> set[str]:
            # Its own connection pool: the gateway's belongs to the gateway's event loop.
            stores, db = await open_sql_stores(self.app.settings.database_url)
            found: set[str] = set()
            for sub in USERS.values():
                for grant in await stores.grants.list_for_user(sub):
                    found.add(cipher.decrypt(grant.access_token_enc, bound_to=grant.grant_id))
                    if grant.refresh_token_enc:
                        found.add(cipher.decrypt(grant.refresh_token_enc, bound_to=grant.grant_id))
            await db.dispose()
            return found

        return asyncio.run(collect())

    def _record(self, response: httpx.Response) -> None:
        response.read()
        self.seen.append(response)

    def assert_no_provider_token_leaked(self, known: set[str]) -> None:
        """No response the agent or the user's browser got from the gateway carries one."""
        assert known, "no provider tokens to look for"
        checked = 0
        for response in self.seen:
            if not str(response.url).startswith(self.base):
                continue  # the provider's own pages (the browser at the OAuth server)
            text = response.content.decode("utf-8", "replace") + " ".join(
                f"{k}: {v}" for k, v in response.headers.multi_items()
            )
            text += " " + str(response.headers.get("location", ""))
            for token in known:
                assert token not in text, f"provider token leaked in {response.url}"
            checked += 1
        assert checked > 0


@dataclass
class Backends:
    """Everything but the gateway: providers, identity host, and the gateway's configuration."""

    clock: OffsetClock
    identities: IdentityHost
    agents_url: str
    upstreams: dict[str, ServerHandle]
    mapping: dict[str, Any]


def start_backends(stack: contextlib.ExitStack, tmp: Path, base: str) -> Backends:
    """Start both providers (OAuth server + upstream API) and the identity host on 127.0.0.1;
    the gateway configuration for a gateway whose public URL is ``base``."""
    clock = OffsetClock()
    context_key = generate_private_key()
    (tmp / "consent_key.pem").write_bytes(private_key_to_pem(context_key))
    oauth_ports = {"mail": free_port(), "cal": free_port()}
    oauth_urls = {pid: f"http://127.0.0.1:{port}" for pid, port in oauth_ports.items()}
    identities = IdentityHost()
    for pid, port in oauth_ports.items():
        lifetime = 300 if pid == "mail" else 3600  # mail's tokens expire: refresh test
        config = oauth_config(pid, port, base, context_key, lifetime)
        stack.enter_context(serve_in_thread(create_oauth_app(config, clock=clock), port=port))
    upstreams = {
        pid: stack.enter_context(
            serve_in_thread(create_upstream_app(introspecting_check(pid, url), name=f"{pid}-api"))
        )
        for pid, url in oauth_urls.items()
    }
    agents = stack.enter_context(serve_in_thread(identities.app))
    limited_id = f"{agents.url}/agents/{LIMITED_AGENT}/agent.json"
    mapping = gateway_mapping(
        base, tmp, oauth_urls, {p: u.url for p, u in upstreams.items()}, limited_id
    )
    return Backends(clock, identities, agents.url, upstreams, mapping)


def open_world(
    stack: contextlib.ExitStack, base: str, app: GatewayApp, b: Backends
) -> GatewayWorld:
    """The agent's and browser's view of a running gateway at ``base``."""
    world = GatewayWorld(
        base, app, b.clock, b.identities, b.agents_url, b.upstreams, httpx.Client()
    )
    world.http = stack.enter_context(
        httpx.Client(timeout=10, event_hooks={"response": [world._record]})
    )
    return world


@contextlib.contextmanager
def running_gateway_world(
    tmp: Path, database_url: str | None = None, *, mail_timeout: float = 1
) -> Iterator[GatewayWorld]:
    """Start both providers (OAuth server + upstream API), the identity host and the gateway
    (on a SQLite file in ``tmp``, or on ``database_url``; the mail upstream answers within
    ``mail_timeout`` seconds or times out)."""
    gw_port = free_port()
    base = f"http://127.0.0.1:{gw_port}"
    with contextlib.ExitStack() as stack:
        backends = start_backends(stack, tmp, base)
        if database_url is not None:
            backends.mapping["database_url"] = database_url
        backends.mapping["providers"]["mail"]["timeout_seconds"] = mail_timeout
        app = create_gateway_app(config_from_mapping(backends.mapping), clock=backends.clock)
        stack.enter_context(serve_in_thread(app, port=gw_port))
        yield open_world(stack, base, app, backends)
