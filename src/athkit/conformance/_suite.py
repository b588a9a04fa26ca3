"""The conformance suite: a black-box run over HTTP against any ATH server (ATH 0.1).

It hosts real agent identity documents on 127.0.0.1 (so the server under test must allow
loopback, plain-http identity fetches — a development setting), drives the whole handshake with
a consent driver, and checks each MUST of the specification, one :class:`CheckResult` per check.
Failures of a check never stop the run; checks whose prerequisite failed are skipped with the
reason.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import httpx

from athkit.conformance._agents import DEVELOPER, Agent, hosted_agents
from athkit.conformance._drivers import BrowserDriver, ConsentFailed
from athkit.conformance._results import (
    AGENT_REDIRECT,
    LISTENER_REDIRECT,
    CheckResult,
    ConformanceConfig,
    ConformanceReport,
    Failed,
    Outcome,
    Skipped,
    error_of,
)
from athkit.conformance._session_checks import authorize_checks, callback_and_token_checks
from athkit.protocol import (
    AGENT_ID_HEADER,
    AGENTS_PATH,
    APP_DISCOVERY_PATH,
    AUTHORIZE_PATH,
    CALLBACK_PATH,
    GATEWAY_DISCOVERY_PATH,
    PROXY_PREFIX,
    REGISTER_PATH,
    REVOKE_PATH,
    TOKEN_PATH,
    AppDiscovery,
    GatewayDiscovery,
    RegisterResponse,
    generate_private_key,
)


class _Run:
    def __init__(self, config: ConformanceConfig, report: ConformanceReport) -> None:
        self.cfg = config
        self.report = report
        self.base = config.url.rstrip("/")
        self.http = httpx.Client(timeout=config.timeout, headers=config.headers, trust_env=False)
        self.register_url = self.base + REGISTER_PATH
        self.authorize_url = self.base + AUTHORIZE_PATH
        self.token_url = self.base + TOKEN_PATH
        self.callback_url = self.base + CALLBACK_PATH
        self.revoke_url = self.base + REVOKE_PATH
        self.mode: str | None = None
        self.provider: str | None = None
        self.api_base: str | None = None
        self.available: list[str] = []
        self.approved: list[str] = []
        self.agents: dict[str, Agent] = {}
        self.tokens: dict[str, str] = {}

    # --- bookkeeping ---------------------------------------------------------------------

    def check(
        self, check_id: str, section: str, title: str, work: Callable[[], str | None]
    ) -> bool:
        try:
            detail = work() or ""
            outcome: Outcome = "pass"
        except Failed as exc:
            outcome, detail = "fail", str(exc)
        except Skipped as exc:
            outcome, detail = "skip", str(exc)
        except ConsentFailed as exc:
            outcome, detail = "fail", f"consent driver: {exc}"
        except httpx.HTTPError as exc:
            outcome, detail = "fail", f"HTTP failure: {type(exc).__name__}: {exc}"
        self.report.results.append(CheckResult(check_id, section, title, outcome, detail))
        return outcome == "pass"

    def check_all(self, *checks: tuple[str, str, str, Callable[[], str | None]]) -> None:
        """Run :meth:`check` for each ``(check_id, section, title, work)``, in order."""
        for args in checks:
            self.check(*args)

    def need(self, name: str) -> Agent:
        agent = self.agents[name]
        if agent.client_id is None or agent.client_secret is None:
            raise Skipped(f"agent {name!r} is not registered (an earlier check failed)")
        return agent

    def need_token(self, name: str) -> str:
        if name not in self.tokens:
            raise Skipped("no access token (an earlier check failed)")
        return self.tokens[name]

    def need_call(self) -> tuple[str, str]:
        if self.cfg.call is None:
            raise Skipped("give a protected API call (--call 'GET /path') to run this check")
        return self.cfg.call

    # --- requests ------------------------------------------------------------------------

    def register(
        self, agent: Agent, attestation: str | None = None, **extra: Any
    ) -> httpx.Response:
        body: dict[str, Any] = {
            "agent_id": agent.agent_id,
            "agent_attestation": attestation or agent.attest(self.base),
            "developer": DEVELOPER,
            "requested_providers": [
                {"provider_id": self.provider, "scopes": self.cfg.scopes or self.available}
            ],
            "purpose": "ATH conformance run",
            "redirect_uris": [AGENT_REDIRECT, LISTENER_REDIRECT],
        }
        body.update(extra)
        return self.http.post(self.register_url, json=body)

    def authorize(
        self,
        agent: Agent,
        scopes: list[str] | None = None,
        *,
        attestation: str | None = None,
        redirect: str | None = AGENT_REDIRECT,
        state: str | None = None,
        provider: str | None = None,
        client_id: str | None = None,
        omit: tuple[str, ...] = (),
    ) -> httpx.Response:
        body: dict[str, Any] = {
            "client_id": client_id or agent.client_id,
            "agent_attestation": attestation or agent.attest(self.base),
            "provider_id": provider or self.provider,
            "scopes": scopes or self.approved,
            "state": state or secrets.token_urlsafe(32),
            "user_redirect_uri": redirect,
        }
        for name in omit:
            body.pop(name, None)
        if redirect is None:
            body.pop("user_redirect_uri")
        return self.http.post(self.authorize_url, json=body)

    def token(
        self,
        agent: Agent,
        session_id: str,
        code: str,
        *,
        attestation: str | None = None,
        secret: str | None = None,
    ) -> httpx.Response:
        return self.http.post(
            self.token_url,
            json={
                "grant_type": "authorization_code",
                "client_id": agent.client_id,
                "client_secret": secret or agent.client_secret,
                "agent_attestation": attestation or agent.attest(self.token_url),
                "code": code,
                "ath_session_id": session_id,
            },
        )

    def api(
        self,
        token: str | None,
        agent_header: str | None,
        *,
        method: str | None = None,
        path: str | None = None,
        provider: str | None = None,
    ) -> httpx.Response:
        call_method, call_path = self.cfg.call or ("GET", "/")
        method, path = method or call_method, path or call_path
        if self.mode == "gateway":
            url = self.base + PROXY_PREFIX + quote(provider or self.provider or "", safe="")
            url += "/" + path.lstrip("/")
        else:
            url = (self.api_base or self.base).rstrip("/") + "/" + path.lstrip("/")
        headers = {}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if agent_header is not None:
            headers[AGENT_ID_HEADER] = agent_header
        return self.http.request(method, url, headers=headers)

    def start(self, agent: Agent, scopes: list[str] | None = None) -> tuple[str, str, str, str]:
        """authorize → (authorization_url, session id, state, redirect URI)."""
        state = secrets.token_urlsafe(32)
        redirect = AGENT_REDIRECT
        if isinstance(self.cfg.consent, BrowserDriver):
            redirect = self.cfg.consent.listener(state).redirect_uri
        response = self.authorize(agent, scopes, state=state, redirect=redirect)
        if response.status_code != 200:
            raise Failed(f"authorize answered {response.status_code}: {response.text[:200]}")
        body = response.json()
        return body["authorization_url"], body["ath_session_id"], state, redirect

    def flow(
        self, agent: Agent, scopes: list[str] | None = None, consent: list[str] | None = None
    ) -> tuple[str, dict[str, str], str]:
        """authorize + consent → (session id, the redirect's query, state sent)."""
        url, session_id, state, redirect = self.start(agent, scopes)
        query = self.cfg.consent.consent(url, redirect_uri=redirect, state=state, scopes=consent)
        return session_id, query, state

    # --- the suite -----------------------------------------------------------------------

    def run(self) -> None:
        if not self.check(
            "discovery", "§3", "discovery document is served and valid", self.discovery
        ):
            return
        with hosted_agents("main", "other", "probe", "denied") as agents:
            self.agents = agents
            self.attestation_checks()
            self.registration_checks()
            self.status_checks()
            authorize_checks(self)
            callback_and_token_checks(self)
            self.api_checks()
            self.revocation_checks()

    def discovery(self) -> str:
        gateway = self.http.get(self.base + GATEWAY_DISCOVERY_PATH)
        if gateway.status_code == 200:
            doc = GatewayDiscovery.model_validate(gateway.json())
            self.mode = "gateway"
            ids = [p.provider_id for p in doc.supported_providers]
            self.provider = self.cfg.provider or (ids[0] if ids else None)
            found = next(
                (p for p in doc.supported_providers if p.provider_id == self.provider), None
            )
            if found is None:
                raise Failed(f"provider {self.provider!r} is not in the catalog ({ids})")
            self.available = list(found.available_scopes)
            self.register_url = doc.agent_registration_endpoint
        else:
            native = self.http.get(self.base + APP_DISCOVERY_PATH)
            if native.status_code != 200:
                raise Failed(
                    f"neither /.well-known/ath.json ({gateway.status_code}) nor "
                    f"/.well-known/ath-app.json ({native.status_code}) answers 200"
                )
            app = AppDiscovery.model_validate(native.json())
            self.mode = "native"
            self.provider = self.cfg.provider or app.app_id
            self.available = list(app.auth.scopes_supported)
            self.api_base = app.api_base
            self.authorize_url = app.auth.authorization_endpoint
            self.token_url = app.auth.token_endpoint
            if app.auth.registration_endpoint:
                self.register_url = app.auth.registration_endpoint
        self.report.mode = self.mode
        if not self.available:
            raise Failed("the discovery document lists no scopes")
        return f"{self.mode} mode, provider {self.provider}, scopes {', '.join(self.available)}"

    def attestation_checks(self) -> None:
        probe = self.agents["probe"]
        base = self.base
        stranger = generate_private_key()
        cases: list[tuple[str, str, Callable[[], str], tuple[str, ...]]] = [
            (
                "att-signature",
                "signature by a key not in the identity document is refused",
                lambda: probe.signed_by(stranger, base),
                ("INVALID_ATTESTATION",),
            ),
            (
                "att-alg-none",
                "alg none is refused",
                lambda: probe.unsigned(base),
                ("INVALID_ATTESTATION",),
            ),
            (
                "att-alg-hmac",
                "HS256 keyed with the public key (alg confusion) is refused",
                lambda: probe.hmac_with_public_key(base),
                ("INVALID_ATTESTATION",),
            ),
            (
                "att-exp",
                "an expired attestation is refused",
                lambda: probe.expired(base),
                ("INVALID_ATTESTATION",),
            ),
            (
                "att-aud",
                "aud must be the registration endpoint's audience (the base URL)",
                lambda: probe.attest(self.token_url),
                ("INVALID_ATTESTATION",),
            ),
            (
                "att-aud-foreign",
                "an attestation for another server is refused",
                lambda: probe.attest("https://other-server.invalid"),
                ("INVALID_ATTESTATION",),
            ),
            (
                "att-iat",
                "iat more than 5 minutes from now is refused",
                lambda: probe.issued_in_future(base),
                ("INVALID_ATTESTATION",),
            ),
        ]

        def refused(make: Callable[[], str], codes: tuple[str, ...]) -> Callable[[], str]:
            return lambda: error_of(self.register(probe, make()), 401, *codes)

        for check_id, title, make, codes in cases:
            self.check(check_id, "§2", title, refused(make, codes))
        other = self.agents["other"]

        def sub_mismatch() -> str:
            attestation = probe.claiming(base, other.agent_id)
            return error_of(
                self.register(probe, attestation),
                (401, 403),
                "INVALID_ATTESTATION",
                "AGENT_IDENTITY_MISMATCH",
            )

        self.check("att-sub", "§4.1", "the attestation's sub must equal agent_id", sub_mismatch)

        def malformed() -> str:
            response = self.http.post(
                self.register_url,
                content=b"{not json",
                headers={"Content-Type": "application/json"},
            )
            return error_of(response, 400)

        self.check("err-malformed", "§7", "a malformed body is a 400 ATH error", malformed)

    def registration_checks(self) -> None:
        main, other = self.agents["main"], self.agents["other"]

        def register_main() -> str:
            response = self.register(main)
            if response.status_code not in (200, 201):
                raise Failed(f"registration answered {response.status_code}: {response.text[:200]}")
            answer = RegisterResponse.model_validate(response.json())
            mine = [p for p in answer.approved_providers if p.provider_id == self.provider]
            if len(mine) != 1:
                raise Failed(f"approved_providers has no single entry for {self.provider}")
            decision = mine[0]
            requested = set(self.cfg.scopes or self.available)
            if not set(decision.approved_scopes) <= requested:
                raise Failed(f"approved scopes {decision.approved_scopes} were not requested")
            if decision.denied_scopes and not decision.denial_reason:
                raise Failed("scopes were denied without a denial_reason")
            main.client_id, main.client_secret = answer.client_id, answer.client_secret
            self.approved = list(decision.approved_scopes)
            if answer.agent_status != "approved" or not self.approved:
                raise Failed(
                    f"agent_status {answer.agent_status} with approved {self.approved}: the run "
                    "needs an agent approved at once for some scopes (configure auto-approval)"
                )
            return f"approved {', '.join(self.approved)}; denied {decision.denied_scopes or '-'}"

        self.check(
            "reg-ok", "§4.1", "registration returns client credentials and decisions", register_main
        )

        def duplicate() -> str:
            self.need("main")
            return error_of(self.register(main), 409)

        self.check(
            "reg-duplicate", "§4.1", "a second registration of an agent_id answers 409", duplicate
        )

        def second() -> str:
            response = self.register(other)
            if response.status_code not in (200, 201):
                raise Failed(f"answered {response.status_code}: {response.text[:200]}")
            body = response.json()
            other.client_id, other.client_secret = body["client_id"], body["client_secret"]
            if other.client_id == main.client_id:
                raise Failed("two agents got the same client_id")
            return "distinct client_id"

        self.check("reg-second", "§4.1", "a second agent registers with its own client_id", second)

    def status_checks(self) -> None:
        main, other = self.agents["main"], self.agents["other"]

        def unauthenticated() -> str:
            agent = self.need("main")
            response = self.http.get(f"{self.base}{AGENTS_PATH}{agent.client_id}")
            return error_of(response, (400, 401, 403))

        def own() -> str:
            agent = self.need("main")
            response = self.http.get(
                f"{self.base}{AGENTS_PATH}{agent.client_id}",
                auth=(agent.client_id or "", agent.client_secret or ""),
            )
            if response.status_code != 200:
                raise Failed(f"answered {response.status_code}: {response.text[:200]}")
            if response.json().get("agent_status") != "approved":
                raise Failed(f"agent_status is {response.json().get('agent_status')!r}")
            return "200 approved"

        def foreign() -> str:
            agent, stranger = self.need("main"), self.need("other")
            response = self.http.get(
                f"{self.base}{AGENTS_PATH}{agent.client_id}",
                auth=(stranger.client_id or "", stranger.client_secret or ""),
            )
            return error_of(response, (401, 403, 404))

        self.check("status-auth", "§4.2", "status needs authentication", unauthenticated)
        self.check("status-own", "§4.2", "an agent reads its own registration", own)
        self.check("status-foreign", "§4.2", "an agent cannot read another's registration", foreign)
        del main, other

    def api_checks(self) -> None:
        def works() -> str:
            self.need_call()
            token, main = self.need_token("main"), self.need("main")
            response = self.api(token, main.agent_id)
            if response.status_code >= 400:
                raise Failed(f"the call answered {response.status_code}: {response.text[:200]}")
            return f"HTTP {response.status_code}"

        def no_token() -> str:
            self.need_call()
            return error_of(self.api(None, self.need("main").agent_id), 401, "TOKEN_INVALID")

        def bogus_token() -> str:
            self.need_call()
            return error_of(
                self.api("ath-conformance-bogus-token", self.need("main").agent_id),
                401,
                "TOKEN_INVALID",
            )

        def other_agent() -> str:
            self.need_call()
            token, other = self.need_token("main"), self.need("other")
            return error_of(self.api(token, other.agent_id), 403, "AGENT_IDENTITY_MISMATCH")

        def provider_mismatch() -> str:
            self.need_call()
            token, main = self.need_token("main"), self.need("main")
            return error_of(
                self.api(token, main.agent_id, provider="ath-conformance-other"),
                403,
                "PROVIDER_MISMATCH",
            )

        def unmapped() -> str:
            self.need_call()
            token, main = self.need_token("main"), self.need("main")
            response = self.api(
                token, main.agent_id, method="DELETE", path="/ath-conformance/unmapped/route"
            )
            return error_of(response, 403, "SCOPE_NOT_APPROVED")

        self.check_all(
            ("api-ok", "§4.6", "the token works with its own agent's id", works),
            ("api-no-token", "§4.6", "a call without a token is refused", no_token),
            ("api-bad-token", "§4.6", "an unknown token is refused", bogus_token),
            ("api-agent", "§4.6", "X-ATH-Agent-ID of another agent is refused", other_agent),
        )
        if self.mode != "gateway":
            return  # the proxy's own checks (ATH §4.6 steps 3-4) do not apply to a native API
        self.check(
            "proxy-provider",
            "§4.6",
            "a token used on another provider's path is refused",
            provider_mismatch,
        )
        self.check(
            "proxy-scope-map", "§4.6", "a call that matches no scope mapping is refused", unmapped
        )

    def revoked(self, agent: Agent, token: str, *, rule: str) -> None:
        """Ask /ath/revoke to revoke ``token``, authenticated as ``agent``'s client; any answer
        but 200 fails the check, citing ``rule`` (why 200 is owed here) and the body's start."""
        response = self.http.post(
            self.revoke_url,
            json={
                "token": token,
                "client_id": agent.client_id,
                "client_secret": agent.client_secret,
            },
        )
        if response.status_code != 200:
            raise Failed(
                f"revocation answered {response.status_code} ({rule}): {response.text[:160]!r}"
            )

    def revocation_checks(self) -> None:
        def unauthenticated() -> str:
            token = self.need_token("second") if "second" in self.tokens else "x"
            return error_of(self.http.post(self.revoke_url, json={"token": token}), (400, 401))

        def foreign() -> str:
            token, other = self.need_token("main"), self.need("other")
            self.revoked(other, token, rule="RFC 7009 §2.2: 200, even for another agent's token")
            if self.cfg.call is None:
                return "200 (give --call to check the token survived)"
            still = self.api(token, self.need("main").agent_id)
            if still.status_code >= 400:
                raise Failed(f"another agent revoked the token: the call got {still.status_code}")
            return "200, and the token still works"

        def own() -> str:
            token, main = self.need_token("main"), self.need("main")
            self.revoked(main, token, rule="ATH §4.7: 200 for an agent's own token")
            if self.cfg.call is None:
                return "200 (give --call to check the token died)"
            return "200; then " + error_of(self.api(token, main.agent_id), 401, "TOKEN_REVOKED")

        def unknown() -> str:
            main = self.need("main")
            self.revoked(
                main,
                "ath-conformance-unknown-token",
                rule="RFC 7009 §2.2: 200 for an unknown token",
            )
            return "200"

        self.check_all(
            ("revoke-auth", "§4.7", "unauthenticated revocation is refused", unauthenticated),
            ("revoke-foreign", "§4.7", "an agent cannot revoke another agent's token", foreign),
            ("revoke-own", "§4.7", "a revoked token is unusable at once", own),
            ("revoke-unknown", "§4.7", "revoking an unknown token answers 200", unknown),
        )


def run_conformance(config: ConformanceConfig) -> ConformanceReport:
    """Run every check against ``config.url``; never raises for the server's failures."""
    report = ConformanceReport(target=config.url.rstrip("/"), mode=None, driver=config.consent.name)
    run = _Run(config, report)
    started = time.monotonic()
    try:
        run.run()
    finally:
        run.http.close()
        config.consent.close()
        report.duration = time.monotonic() - started
    return report


def iter_failures(report: ConformanceReport) -> Iterator[CheckResult]:
    """The failed checks of a report."""
    return (r for r in report.results if r.outcome == "fail")
