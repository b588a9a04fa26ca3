"""Honest stand-ins for the engine's unit tests: a verifier that really verifies ES256
attestations against known keys (with a jti replay set), and an in-process OAuth provider that
checks PKCE, redirect URIs and single-use codes like a real one."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from athkit.protocol import (
    TOKEN_PATH,
    ATHError,
    AuthorizeRequest,
    Developer,
    ErrorCode,
    IdentityDocument,
    PrivateKey,
    ProviderScopes,
    RegisterRequest,
    RegisterResponse,
    TokenRequest,
    TokenResponse,
    VerificationKey,
    VerifiedAttestation,
    create_attestation,
    generate_private_key,
    public_key_to_jwk,
    verify_attestation,
    verify_code_challenge,
)
from athkit.server import (
    ATHEngine,
    EngineStores,
    ManualClock,
    ProviderSettings,
    ProviderTokenSet,
    ServerSettings,
    memory_stores,
)

BASE = "https://svc.test"


@dataclass(frozen=True)
class Verified:
    attestation: VerifiedAttestation
    identity: IdentityDocument


class KeyringVerifier:
    """Verifies against keys it was given; remembers every jti until its exp."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.keys: dict[str, tuple[VerificationKey, IdentityDocument]] = {}
        self.seen: dict[str, int] = {}

    def add(self, agent: Agent) -> None:
        self.keys[agent.agent_id] = (VerificationKey(agent.key.public_key()), agent.identity)

    async def verify(
        self, token: str, *, audience: str, expected_agent_id: str | None = None
    ) -> Verified:
        from athkit.protocol import read_unverified_claims

        sub = read_unverified_claims(token).get("sub")
        if not isinstance(sub, str) or sub not in self.keys:
            raise ATHError(
                ErrorCode.INVALID_ATTESTATION, "unknown agent", details={"reason": "unknown_agent"}
            )
        key, identity = self.keys[sub]
        claims = verify_attestation(token, key, audience=audience, now=self.clock.now())
        if claims.jti in self.seen:
            raise ATHError(
                ErrorCode.INVALID_ATTESTATION, "replayed jti", details={"reason": "replayed_jti"}
            )
        self.seen[claims.jti] = claims.exp
        if expected_agent_id is not None and claims.sub != expected_agent_id:
            raise ATHError(
                ErrorCode.AGENT_IDENTITY_MISMATCH,
                "sub is not the registered agent",
                details={"reason": "sub_mismatch"},
            )
        return Verified(claims, identity)


@dataclass
class Agent:
    name: str
    key: PrivateKey = field(default_factory=generate_private_key)

    @property
    def agent_id(self) -> str:
        return f"https://{self.name}.agents.test/.well-known/agent.json"

    @property
    def identity(self) -> IdentityDocument:
        return IdentityDocument(
            agent_id=self.agent_id,
            name=f"{self.name} agent",
            developer=Developer(name="Dev", id="dev-1"),
            public_key=public_key_to_jwk(self.key.public_key()),
        )

    def attest(self, audience: str, clock: ManualClock) -> str:
        return create_attestation(
            self.key, agent_id=self.agent_id, audience=audience, now=clock.now()
        )


class FakeProvider:
    """An OAuth provider in-process: codes single-use, PKCE S256 checked, redirect_uri checked."""

    def __init__(self) -> None:
        self.pending: dict[str, dict[str, str]] = {}  # state -> params
        self.codes: dict[str, dict[str, object]] = {}
        self.refreshes: dict[str, str] = {}
        self.token_requests: list[dict[str, str]] = []
        self.refresh_count = 0

    def authorization_url(
        self,
        provider: ProviderSettings,
        *,
        state: str,
        code_challenge: str,
        redirect_uri: str,
        scopes: Sequence[str],
        resource: str | None,
        ath_context: str | None,
    ) -> str:
        from athkit.server import HttpOAuthBridge

        return HttpOAuthBridge.authorization_url(
            None,  # type: ignore[arg-type]
            provider,
            state=state,
            code_challenge=code_challenge,
            redirect_uri=redirect_uri,
            scopes=scopes,
            resource=resource,
            ath_context=ath_context,
        )

    def consent(self, url: str, user: str, scopes: list[str] | None = None) -> dict[str, str]:
        """The user approves: returns the callback query the provider would send."""
        q = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
        assert q["code_challenge_method"] == "S256"
        code = secrets.token_urlsafe(16)
        granted = scopes if scopes is not None else q["scope"].split()
        self.codes[code] = {"q": q, "user": user, "scopes": granted}
        return {"code": code, "state": q["state"]}

    async def exchange_code(
        self,
        provider: ProviderSettings,
        *,
        code: str,
        code_verifier: str,
        redirect_uri: str,
        resource: str | None,
    ) -> ProviderTokenSet:
        entry = self.codes.pop(code, None)
        if entry is None:
            raise ATHError(
                ErrorCode.OAUTH_ERROR, "bad code", details={"provider_error": "invalid_grant"}
            )
        q = entry["q"]
        assert isinstance(q, dict)
        if q["redirect_uri"] != redirect_uri or not verify_code_challenge(
            code_verifier, q["code_challenge"]
        ):
            raise ATHError(
                ErrorCode.OAUTH_ERROR, "pkce", details={"provider_error": "invalid_grant"}
            )
        refresh = secrets.token_urlsafe(8)
        self.refreshes[refresh] = str(entry["user"])
        scopes = entry["scopes"]
        assert isinstance(scopes, list)
        return ProviderTokenSet(
            access_token=f"up-{entry['user']}-{secrets.token_hex(4)}",
            refresh_token=refresh,
            expires_in=60,
            scope=tuple(scopes),
            id_token=None,
        )

    async def refresh(self, provider: ProviderSettings, refresh_token: str) -> ProviderTokenSet:
        user = self.refreshes.pop(refresh_token, None)
        if user is None:
            raise ATHError(
                ErrorCode.OAUTH_ERROR, "dead", details={"provider_error": "invalid_grant"}
            )
        self.refresh_count += 1
        new = secrets.token_urlsafe(8)
        self.refreshes[new] = user
        return ProviderTokenSet(
            access_token=f"up-{user}-r{self.refresh_count}", refresh_token=new, expires_in=60
        )

    async def user_id(self, provider: ProviderSettings, tokens: ProviderTokenSet) -> str:
        return tokens.access_token.split("-")[1]


def provider_settings(**overrides: object) -> ProviderSettings:
    values: dict[str, object] = {
        "provider_id": "shop",
        "display_name": "Shop",
        "authorization_endpoint": "https://idp.test/authorize",
        "token_endpoint": "https://idp.test/token",
        "client_id": "svc",
        "client_secret": "svc-secret",
        "scopes": ["orders:read", "orders:write", "admin", "profile"],
        "auto_approve": ["orders:read", "orders:write", "profile"],
        "review": [],
        "never": ["admin"],
    }
    values.update(overrides)
    return ProviderSettings.model_validate(values)


@dataclass
class World:
    engine: ATHEngine
    clock: ManualClock
    verifier: KeyringVerifier
    provider: FakeProvider
    stores: EngineStores

    def agent(self, name: str) -> Agent:
        agent = Agent(name)
        self.verifier.add(agent)
        return agent

    async def register(
        self, agent: Agent, scopes: list[str], redirect_uris: list[str] | None = None
    ) -> tuple[str, str]:
        response = await self.engine.register(
            RegisterRequest(
                agent_id=agent.agent_id,
                agent_attestation=agent.attest(BASE, self.clock),
                developer=Developer(name="Dev", id="dev-1"),
                requested_providers=[ProviderScopes(provider_id="shop", scopes=scopes)],
                redirect_uris=redirect_uris,
            )
        )
        return response.client_id, response.client_secret


def make_world(
    provider: ProviderSettings | None = None, stores: EngineStores | None = None
) -> World:
    clock = ManualClock(1_800_000_000)
    verifier = KeyringVerifier(clock)
    fake = FakeProvider()
    stores = stores or memory_stores()
    settings = ServerSettings(
        base_url=BASE,
        secret_key="k" * 40,
        providers=[provider or provider_settings()],
    )
    engine = ATHEngine(settings, stores=stores, verifier=verifier, oauth=fake, clock=clock)
    return World(engine, clock, verifier, fake, stores)


class Attester(Protocol):
    """An agent that signs its own attestations (this module's :class:`Agent`, or the
    integration harness's agent with a published identity document)."""

    agent_id: str

    def attest(self, audience: str, clock: Any) -> str: ...


async def engine_register(
    engine: ATHEngine, agent: Attester, clock: Any, *, base: str, scopes: Sequence[str]
) -> RegisterResponse:
    """Register ``agent`` with ``engine`` for ``scopes`` of the provider ``shop``."""
    return await engine.register(
        RegisterRequest(
            agent_id=agent.agent_id,
            agent_attestation=agent.attest(base, clock),
            developer=Developer(name="Dev", id="dev"),
            requested_providers=[ProviderScopes(provider_id="shop", scopes=list(scopes))],
        )
    )


async def engine_handshake(
    engine: ATHEngine,
    agent: Attester,
    registered: RegisterResponse,
    provider: FakeProvider,
    clock: Any,
    *,
    base: str,
    scopes: Sequence[str],
    user: str = "alice",
    step: Callable[[str], None] = lambda _name: None,
) -> TokenResponse:
    """One handshake of a registered agent, calling the engine directly: authorize, consent (the
    in-process provider answers for ``user``), callback, token. ``step`` is told each step's
    name as it ends."""
    started = await engine.authorize(
        AuthorizeRequest(
            client_id=registered.client_id,
            agent_attestation=agent.attest(base, clock),
            provider_id="shop",
            scopes=list(scopes),
            state=secrets.token_urlsafe(24),
        )
    )
    step("authorize")
    begin = await engine.begin_consent(started.ath_session_id, None)
    step("consent")
    query = provider.consent(begin.redirect_url, user)
    result = await engine.callback(
        state=query["state"],
        code=query["code"],
        error=None,
        binding_for=lambda _session: begin.binding_secret,
    )
    step("callback")
    issued = await engine.exchange_token(
        TokenRequest(
            grant_type="authorization_code",
            client_id=registered.client_id,
            client_secret=registered.client_secret,
            agent_attestation=agent.attest(base + TOKEN_PATH, clock),
            code=result.code or "",
            ath_session_id=started.ath_session_id,
        )
    )
    step("token")
    return issued
