"""Several real ``ath gateway serve`` processes on one PostgreSQL database and one Redis.

Around them, on 127.0.0.1, in this process's threads: the provider's OAuth server (our own, with a
real login and consent), its upstream API (which checks the provider's tokens by introspection)
and the agents' identity host. The instances share one ``public_base_url`` (as replicas behind a
load balancer do): it names instance A's port, and the test decides which instance each request
goes to by sending it to that instance's own port.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from athkit.oauthserver import create_oauth_app
from athkit.protocol import generate_private_key, private_key_to_pem, public_key_to_jwk
from athkit.testing import drive_consent, free_port, serve_in_thread
from tests.integration.gateway.harness import (
    ADMIN_TOKEN,
    GATEWAY_CLIENT_ID,
    ROUTES,
    SCOPES,
    SECRET_KEY,
    OffsetClock,
    introspecting_check,
    oauth_config,
)
from tests.integration.gateway.upstream import create_upstream_app
from tests.integration.native.harness import PASSWORD, REDIRECT, IdentityHost, LocalAgent
from tests.subprocs import default_sigint

ATH = str(Path(sys.executable).with_name("ath"))
START_TIMEOUT = 60.0


def toml(data: Mapping[str, Any], prefix: str = "") -> str:
    """A small TOML writer for the gateway configuration (strings, numbers, lists, tables)."""
    lines: list[str] = []
    tables: list[tuple[str, Mapping[str, Any]]] = []
    for key, value in data.items():
        name = json.dumps(key) if not key.replace("_", "").replace("-", "").isalnum() else key
        if isinstance(value, Mapping):
            tables.append((f"{prefix}{name}", value))
        else:
            lines.append(f"{name} = {json.dumps(value)}")
    out = "\n".join(lines) + "\n"
    for path, table in tables:
        out += f"\n[{path}]\n" + toml(table, f"{path}.")
    return out


def gateway_config(
    tmp: Path,
    public_base: str,
    *,
    database_url: str,
    redis_url: str,
    oauth_url: str,
    api_url: str,
    rate_prefix: str,
    limited_agent_id: str,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write gateway.toml (secrets in files next to it) for every instance; return its path."""
    for name, value in {
        "secret_key": SECRET_KEY,
        "admin_token": ADMIN_TOKEN,
        "mail_secret": "mail-gateway-client-secret",
    }.items():
        (tmp / name).write_text(value)
    config: dict[str, Any] = {
        "mode": "production",
        "public_base_url": public_base,
        "gateway_id": "scale-gateway",
        "database_url": database_url,
        "redis_url": redis_url,
        "secret_key_file": str(tmp / "secret_key"),
        "admin_token_file": str(tmp / "admin_token"),
        "consent_signing_key_file": str(tmp / "consent_key.pem"),
        **(extra or {}),
        "verifier": {"allow_loopback": True, "allow_http": True},
        "rate_limit": {
            "requests": 1000,
            "window_seconds": 60,
            "key_prefix": rate_prefix,
            "agents": {limited_agent_id: 6},
        },
        "providers": {
            "mail": {
                "display_name": "Test Mail",
                "issuer": oauth_url,
                "client_id": GATEWAY_CLIENT_ID,
                "client_secret_file": str(tmp / "mail_secret"),
                "scopes": SCOPES["mail"],
                "api_base": api_url,
                "routes": ROUTES["mail"],
                "timeout_seconds": 5,
                "approval": {
                    "auto_approve": ["mail:read"],
                    "review": ["mail:send"],
                    "never": ["mail:delete"],
                },
            }
        },
    }
    path = tmp / "gateway.toml"
    path.write_text(toml(config))
    return path


@dataclass
class Instance:
    """One ``ath gateway serve`` process."""

    name: str
    port: int
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def start_instance(
    config: Path,
    name: str,
    tmp: Path,
    *,
    port: int | None = None,
    env: Mapping[str, str] | None = None,
) -> Instance:
    """Start one gateway process on ``port`` (or a free one), not waiting for it."""
    instance = Instance(name, port or free_port(), tmp / f"gateway-{name}.log")
    environ = {**os.environ, **(env or {}), "ATH_GATEWAY__LISTEN": f"127.0.0.1:{instance.port}"}
    with instance.log.open("wb") as log:
        instance.process = subprocess.Popen(
            [ATH, "gateway", "serve", "--config", str(config)],
            env=environ,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=default_sigint,
        )
    return instance


def wait_ready(instance: Instance, timeout: float = START_TIMEOUT) -> None:
    """Wait until ``/readyz`` answers 200; fail with the instance's log if it exits or stalls."""
    deadline = time.monotonic() + timeout
    assert instance.process is not None
    last = "no answer"
    while True:
        if instance.process.poll() is not None:
            raise AssertionError(
                f"gateway {instance.name} exited with {instance.process.returncode}:\n"
                + instance.output()[-3000:]
            )
        try:
            ready = httpx.get(f"{instance.url}/readyz", timeout=5)
            if ready.status_code == 200:
                return
            last = f"{ready.status_code} {ready.text}"
        except httpx.HTTPError as exc:
            last = repr(exc)
        if time.monotonic() > deadline:
            raise AssertionError(
                f"gateway {instance.name} not ready ({last}):\n{instance.output()[-3000:]}"
            )
        time.sleep(0.1)


def stop_instance(instance: Instance, sig: int = signal.SIGTERM) -> None:
    """Stop the process (SIGTERM, then SIGKILL after 10 s)."""
    process = instance.process
    if process is None or process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


@dataclass
class Registration:
    """An agent and what registration gave it."""

    agent: LocalAgent
    client_id: str
    client_secret: str


@dataclass
class ScaleWorld:
    """The servers around the gateways, and the agent's and the user's view of them."""

    tmp: Path
    public_base: str
    config: Path
    clock: OffsetClock
    identities: IdentityHost
    agents_url: str
    instances: dict[str, Instance] = field(default_factory=dict)
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=15))

    # --- instances ------------------------------------------------------------------------

    def start(self, *names: str, env: Mapping[str, str] | None = None) -> list[Instance]:
        """Start instances together (all processes launched before any is awaited); ``a``
        listens on the public base URL's port."""
        a_port = urlsplit(self.public_base).port
        started = [
            start_instance(self.config, n, self.tmp, port=a_port if n == "a" else None, env=env)
            for n in names
        ]
        for instance in started:
            self.instances[instance.name] = instance
        for instance in started:
            wait_ready(instance)
        return started

    def url(self, name: str) -> str:
        return self.instances[name].url

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

    def register_request(self, agent: LocalAgent, scopes: list[str]) -> dict[str, Any]:
        """A registration body with a fresh attestation (audience: the public base URL)."""
        return {
            "agent_id": agent.agent_id,
            "agent_attestation": agent.attest(self.public_base, self.clock),
            "developer": {"name": "Test Dev", "id": "dev-test"},
            "requested_providers": [{"provider_id": "mail", "scopes": scopes}],
            "redirect_uris": [REDIRECT],
        }

    def register(self, on: str, agent: LocalAgent, scopes: list[str]) -> Registration:
        response = self.http.post(
            f"{self.url(on)}/ath/agents/register", json=self.register_request(agent, scopes)
        )
        assert response.status_code == 201, response.text
        body = response.json()
        return Registration(agent, body["client_id"], body["client_secret"])

    def authorize_request(self, reg: Registration, scopes: list[str]) -> dict[str, Any]:
        return {
            "client_id": reg.client_id,
            "agent_attestation": reg.agent.attest(self.public_base, self.clock),
            "provider_id": "mail",
            "scopes": scopes,
            "state": secrets.token_urlsafe(24),
            "user_redirect_uri": REDIRECT,
        }

    def authorize(self, on: str, reg: Registration, scopes: list[str]) -> dict[str, Any]:
        response = self.http.post(
            f"{self.url(on)}/ath/authorize", json=self.authorize_request(reg, scopes)
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def consent(self, session: dict[str, Any], *, callback_on: str, user: str = "alice") -> str:
        """The user's browser consents at the provider; the provider's redirect to the gateway
        callback is delivered to instance ``callback_on``. Returns the ATH code."""
        callback_prefix = f"{self.public_base}/ath/callback"
        with httpx.Client(timeout=15) as browser:
            # The consent link names the public URL (instance A): the browser starts there.
            landed = drive_consent(
                browser,
                session["authorization_url"],
                username=user,
                password=PASSWORD,
                stop_at=callback_prefix,
            )
            assert isinstance(landed, str), f"no redirect to the callback: {landed.text}"
            on_instance = self.url(callback_on) + landed[len(self.public_base) :]
            answered = browser.get(on_instance, follow_redirects=False)
        assert answered.status_code in (302, 303), answered.text
        location = answered.headers["location"]
        assert location.startswith(REDIRECT), location
        query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
        assert query["state"] == session.get("state", query["state"])
        return query["code"]

    def token_request(self, reg: Registration, session_id: str, code: str) -> dict[str, Any]:
        return {
            "grant_type": "authorization_code",
            "client_id": reg.client_id,
            "client_secret": reg.client_secret,
            "agent_attestation": reg.agent.attest(f"{self.public_base}/ath/token", self.clock),
            "code": code,
            "ath_session_id": session_id,
        }

    def exchange(self, on: str, reg: Registration, session_id: str, code: str) -> dict[str, Any]:
        response = self.http.post(
            f"{self.url(on)}/ath/token", json=self.token_request(reg, session_id, code)
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def connect(
        self, reg: Registration, *, authorize_on: str, callback_on: str, token_on: str
    ) -> str:
        """The whole Phase B across instances; returns the ATH access token."""
        session = self.authorize(authorize_on, reg, ["mail:read"])
        code = self.consent(session, callback_on=callback_on)
        return str(self.exchange(token_on, reg, session["ath_session_id"], code)["access_token"])

    def call(
        self, on: str, token: str, agent: LocalAgent, path: str = "/messages"
    ) -> httpx.Response:
        return self.http.get(
            f"{self.url(on)}/ath/proxy/mail{path}",
            headers={"Authorization": f"Bearer {token}", "X-ATH-Agent-ID": agent.agent_id},
        )

    def revoke(self, on: str, reg: Registration, token: str) -> httpx.Response:
        return self.http.post(
            f"{self.url(on)}/ath/revoke",
            json={
                "client_id": reg.client_id,
                "client_secret": reg.client_secret,
                "token": token,
            },
        )

    def admin(self, on: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.request(
            method,
            f"{self.url(on)}/ath/admin{path}",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            **kwargs,
        )

    def audit(self, on: str, **query: Any) -> list[dict[str, Any]]:
        response = self.admin(on, "GET", "/audit", params={"limit": 1000, **query})
        assert response.status_code == 200, response.text
        events: list[dict[str, Any]] = response.json()["events"]
        return events


@contextlib.contextmanager
def scale_world(
    tmp: Path,
    *,
    database_url: str,
    redis_url: str,
    rate_prefix: str,
    extra: Mapping[str, Any] | None = None,
) -> Iterator[ScaleWorld]:
    """The provider, its API and the identity host running; the gateways configured, not
    started (``world.start("a", "b", ...)``); every gateway stopped at the end."""
    clock = OffsetClock()
    context_key = generate_private_key()
    (tmp / "consent_key.pem").write_bytes(private_key_to_pem(context_key))
    a_port = free_port()
    public_base = f"http://127.0.0.1:{a_port}"
    oauth_port = free_port()
    identities = IdentityHost()
    with contextlib.ExitStack() as stack:
        provider = oauth_config("mail", oauth_port, public_base, context_key, 3600)
        # A file database: several clients sign in at once in these tests.
        provider = provider.model_copy(update={"database_url": f"sqlite:///{tmp / 'oauth.db'}"})
        oauth = stack.enter_context(
            serve_in_thread(create_oauth_app(provider, clock=clock), port=oauth_port)
        )
        api = stack.enter_context(
            serve_in_thread(create_upstream_app(introspecting_check("mail", oauth.url)))
        )
        agents = stack.enter_context(serve_in_thread(identities.app))
        world = ScaleWorld(
            tmp,
            public_base,
            gateway_config(
                tmp,
                public_base,
                database_url=database_url,
                redis_url=redis_url,
                oauth_url=oauth.url,
                api_url=api.url,
                rate_prefix=rate_prefix,
                limited_agent_id=f"{agents.url}/agents/limited/agent.json",
                extra=extra,
            ),
            clock,
            identities,
            agents.url,
        )
        stack.callback(world.http.close)
        try:
            yield world
        finally:
            for instance in world.instances.values():
                stop_instance(instance)
