"""Everything an integration test needs: a real OAuth server, an agent identity host and the
native service, all on 127.0.0.1, plus agents that sign real attestations."""

from __future__ import annotations

import contextlib
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from athkit.oauthserver import (
    ClientConfig,
    OAuthServerConfig,
    UserConfig,
    create_oauth_app,
    hash_password,
)
from athkit.protocol import (
    PrivateKey,
    create_attestation,
    generate_private_key,
    private_key_to_pem,
    public_key_to_jwk,
)
from athkit.testing import drive_consent, free_port, serve_in_thread
from tests.integration.native.service import (
    ADMIN_TOKEN,
    OAUTH_CLIENT_ID,
    OAUTH_CLIENT_SECRET,
    SERVICE_SCOPES,
    OffsetClock,
    ServiceConfig,
)

ROOT = Path(__file__).resolve().parents[3]
PASSWORD = "correct horse battery staple"
PASSWORD_HASH = hash_password(PASSWORD)
USERS = {"alice": "user-alice-1", "bob": "user-bob-2"}
REDIRECT = "http://127.0.0.1:9/agent-callback"  # the agent's loopback catcher (never fetched)


class IdentityHost:
    """Serves agents' identity documents at ``/agents/{name}/agent.json``."""

    def __init__(self) -> None:
        self.documents: dict[str, dict[str, Any]] = {}

        async def document(request: Request) -> Response:
            doc = self.documents.get(request.path_params["name"])
            if doc is None:
                return JSONResponse({"error": "not found"}, status_code=404)
            return JSONResponse(doc, headers={"Cache-Control": "max-age=300"})

        self.app = Starlette(routes=[Route("/agents/{name}/agent.json", document)])


@dataclass
class LocalAgent:
    """An agent with a real P-256 key and a published identity document."""

    name: str
    agent_id: str
    key: PrivateKey

    def attest(self, audience: str, clock: OffsetClock, **kwargs: Any) -> str:
        kwargs.setdefault("now", clock.now())
        return create_attestation(self.key, agent_id=self.agent_id, audience=audience, **kwargs)


def oauth_config(port: int, service_base: str, context_key: PrivateKey) -> OAuthServerConfig:
    """The service's own OAuth server: two users, the service as its client."""
    return OAuthServerConfig(
        issuer=f"http://127.0.0.1:{port}",
        database_url="sqlite:///:memory:",
        secret_key=secrets.token_urlsafe(32),
        cookie_name=f"oauth_{port}",
        scopes={s: f"Allow {s}" for s in SERVICE_SCOPES},
        users=[
            UserConfig(username=u, password_hash=PASSWORD_HASH, sub=sub, name=u.title())
            for u, sub in USERS.items()
        ],
        clients=[
            ClientConfig(
                client_id=OAUTH_CLIENT_ID,
                name="Test Shop",
                client_secret=OAUTH_CLIENT_SECRET,
                redirect_uris=[f"{service_base}/ath/callback"],
                scopes=SERVICE_SCOPES,
                ath_context_key=public_key_to_jwk(context_key),
            )
        ],
    )


@dataclass
class World:
    """The running servers and helpers that speak ATH to them over HTTP."""

    base: str
    oauth_url: str
    agents_url: str
    clock: OffsetClock
    identities: IdentityHost
    http: httpx.Client
    agents: dict[str, LocalAgent] = field(default_factory=dict)
    mark: int = 0  # audit events up to this id belong to earlier tests

    def set_mark(self) -> None:
        events = self.audit()
        self.mark = max((int(e["event_id"]) for e in events), default=0)

    @property
    def token_endpoint(self) -> str:
        return f"{self.base}/ath/token"

    def new_agent(self, prefix: str = "agent") -> LocalAgent:
        name = f"{prefix}-{secrets.token_hex(4)}"
        key = generate_private_key()
        agent_id = f"{self.agents_url}/agents/{name}/agent.json"
        self.identities.documents[name] = {
            "ath_version": "0.1",
            "agent_id": agent_id,
            "name": f"{prefix.title()} Agent",
            "developer": {"name": "Test Dev", "id": "dev-test"},
            "public_key": public_key_to_jwk(key.public_key()),
        }
        agent = LocalAgent(name, agent_id, key)
        self.agents[name] = agent
        return agent

    def register(
        self,
        agent: LocalAgent,
        scopes: list[str],
        *,
        attestation: str | None = None,
        redirect_uris: list[str] | None = None,
        provider_id: str = "shop",
    ) -> httpx.Response:
        return self.http.post(
            f"{self.base}/ath/agents/register",
            json={
                "agent_id": agent.agent_id,
                "agent_attestation": attestation or agent.attest(self.base, self.clock),
                "developer": {"name": "Test Dev", "id": "dev-test"},
                "requested_providers": [{"provider_id": provider_id, "scopes": scopes}],
                "redirect_uris": redirect_uris or [REDIRECT],
            },
        )

    def registered(self, agent: LocalAgent, scopes: list[str] | None = None) -> tuple[str, str]:
        response = self.register(agent, scopes or ["orders:read", "orders:write", "profile"])
        assert response.status_code == 201, response.text
        body = response.json()
        return body["client_id"], body["client_secret"]

    def authorize(
        self,
        agent: LocalAgent,
        client_id: str,
        scopes: list[str],
        *,
        attestation: str | None = None,
        provider_id: str = "shop",
        redirect: str | None = REDIRECT,
        state: str | None = None,
    ) -> httpx.Response:
        body: dict[str, Any] = {
            "client_id": client_id,
            "agent_attestation": attestation or agent.attest(self.base, self.clock),
            "provider_id": provider_id,
            "scopes": scopes,
            "state": state or secrets.token_urlsafe(24),
        }
        if redirect is not None:
            body["user_redirect_uri"] = redirect
        return self.http.post(f"{self.base}/ath/authorize", json=body)

    def start(self, agent: LocalAgent, client_id: str, scopes: list[str]) -> tuple[str, str, str]:
        """authorize → (consent url, session id, agent state)."""
        state = secrets.token_urlsafe(24)
        response = self.authorize(agent, client_id, scopes, state=state)
        assert response.status_code == 200, response.text
        body = response.json()
        return body["authorization_url"], body["ath_session_id"], state

    def consent(
        self,
        url: str,
        *,
        user: str = "alice",
        scopes: list[str] | None = None,
        allow: bool = True,
        browser: httpx.Client | None = None,
        stop_at: str = REDIRECT,
    ) -> dict[str, str]:
        """A user's browser walks the consent link; the query the agent receives."""
        with contextlib.ExitStack() as stack:
            client = browser or stack.enter_context(httpx.Client(timeout=10))
            result = drive_consent(
                client,
                url,
                username=user,
                password=PASSWORD,
                scopes=scopes,
                allow=allow,
                stop_at=stop_at,
            )
            assert isinstance(result, str), f"no redirect: {result.status_code} {result.text}"
            if stop_at != REDIRECT:
                return {"url": result}
            return {k: v[0] for k, v in parse_qs(urlsplit(result).query).items()}

    def token(
        self,
        agent: LocalAgent,
        client_id: str,
        secret: str,
        session_id: str,
        code: str | None,
        *,
        attestation: str | None = None,
    ) -> httpx.Response:
        body = {
            "grant_type": "authorization_code",
            "client_id": client_id,
            "client_secret": secret,
            "agent_attestation": attestation or agent.attest(self.token_endpoint, self.clock),
            "ath_session_id": session_id,
        }
        if code is not None:
            body["code"] = code
        return self.http.post(self.token_endpoint, json=body)

    def full_flow(
        self,
        agent: LocalAgent,
        client_id: str,
        secret: str,
        scopes: list[str],
        **consent: Any,
    ) -> dict[str, Any]:
        url, session_id, state = self.start(agent, client_id, scopes)
        query = self.consent(url, **consent)
        assert query["state"] == state
        response = self.token(agent, client_id, secret, session_id, query["code"])
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def api(
        self,
        token: str,
        agent: LocalAgent | None = None,
        path: str = "/api/orders",
        method: str = "GET",
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"}
        if agent is not None:
            headers["X-ATH-Agent-ID"] = agent.agent_id
        return self.http.request(method, f"{self.base}{path}", headers=headers)

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.request(
            method,
            f"{self.base}/ath/admin{path}",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            **kwargs,
        )

    def audit(self, **query: Any) -> list[dict[str, Any]]:
        response = self.admin("GET", "/audit", params={"limit": 50, **query})
        assert response.status_code == 200, response.text
        events: list[dict[str, Any]] = response.json()["events"]
        return events

    def assert_audited(self, code: str, event: str | None = None, **match: Any) -> dict[str, Any]:
        """The newest audit events include a rejection with ``code`` (and ``event``)."""
        for item in self.audit():
            if int(item["event_id"]) <= self.mark:
                continue
            if item["code"] != code or (event is not None and item["event"] != event):
                continue
            if all(item.get(k) == v for k, v in match.items()):
                return item
        raise AssertionError(f"no audit event with code {code} / event {event} / {match}")


@dataclass
class Surroundings:
    """What runs around a native service: its OAuth server and an agent identity host."""

    oauth_url: str
    agents_url: str
    identities: IdentityHost
    clock: OffsetClock
    context_key: PrivateKey

    def service_config(self, base: str, database_url: str) -> ServiceConfig:
        return ServiceConfig(
            base_url=base,
            oauth_url=self.oauth_url,
            database_url=database_url,
            consent_key_pem=private_key_to_pem(self.context_key).decode(),
        )

    def world(self, base: str, http: httpx.Client) -> World:
        return World(base, self.oauth_url, self.agents_url, self.clock, self.identities, http)


@contextlib.contextmanager
def surroundings(service_base: str) -> Iterator[Surroundings]:
    """Start the OAuth server (its client redirects to ``service_base``) and the identity host."""
    clock = OffsetClock()
    context_key = generate_private_key()
    oauth_port = free_port()
    oauth_app = create_oauth_app(oauth_config(oauth_port, service_base, context_key), clock=clock)
    identities = IdentityHost()
    with (
        serve_in_thread(oauth_app, port=oauth_port) as oauth,
        serve_in_thread(identities.app) as agents,
    ):
        yield Surroundings(oauth.url, agents.url, identities, clock, context_key)


@contextlib.contextmanager
def running_world(database_url: str | None = None, *, tmp_dir: str) -> Iterator[World]:
    """Start the OAuth server, the identity host and the native service on 127.0.0.1."""
    from tests.integration.native.service import build_service

    service_port = free_port()
    base = f"http://127.0.0.1:{service_port}"
    with surroundings(base) as around:
        config = around.service_config(base, database_url or f"sqlite:///{tmp_dir}/ath.db")
        with (
            serve_in_thread(build_service(config, clock=around.clock), port=service_port),
            httpx.Client(timeout=10) as http,
        ):
            yield around.world(base, http)


@contextlib.contextmanager
def service_process(config_file: Path, base: str) -> Iterator[subprocess.Popen[bytes]]:
    """Run the native test service as its own process; wait until it answers."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.native.service", str(config_file)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"service died: {process.stderr.read()!r}")  # type: ignore[union-attr]
            try:
                if httpx.get(f"{base}/.well-known/ath-app.json", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("service did not start")
            time.sleep(0.1)
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()
