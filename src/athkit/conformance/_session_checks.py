"""The conformance checks of the session's life: authorization (ATH §4.3), then the callback,
browser binding, code handling and token exchange (§4.4, §4.5)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx

from athkit.conformance._drivers import query_of
from athkit.conformance._results import (
    _REDIRECTS,
    AGENT_REDIRECT,
    CheckList,
    Failed,
    Skipped,
    error_of,
)
from athkit.protocol import TokenResponse

if TYPE_CHECKING:
    from athkit.conformance._suite import _Run


def authorize_checks(run: _Run) -> None:
    checks = CheckList()

    @checks.add("authz-unknown-client", "§4.3", "an unknown client_id is refused")
    def unknown_client() -> str:
        main = run.need("main")
        response = run.authorize(main, client_id="ath-conformance-unknown-client")
        return error_of(response, 403, "AGENT_NOT_REGISTERED")

    @checks.add("authz-scope", "§4.3", "scopes outside the approved ones are refused")
    def scope_outside() -> str:
        main = run.need("main")
        outside = [s for s in run.available if s not in run.approved]
        scope = outside[0] if outside else "ath-conformance:unknown"
        return error_of(run.authorize(main, [*run.approved, scope]), 403, "SCOPE_NOT_APPROVED")

    @checks.add("authz-provider", "§4.3", "a provider the agent is not approved for is refused")
    def provider_not_approved() -> str:
        main = run.need("main")
        return error_of(
            run.authorize(main, provider="ath-conformance-unknown-provider"),
            403,
            "PROVIDER_NOT_APPROVED",
        )

    @checks.add("authz-sub", "§4.3", "the attestation's sub must be the registered agent")
    def identity_mismatch() -> str:
        main, other = run.need("main"), run.need("other")
        return error_of(
            run.authorize(main, attestation=other.attest(run.base)),
            (401, 403),
            "AGENT_IDENTITY_MISMATCH",
            "INVALID_ATTESTATION",
        )

    @checks.add("authz-aud", "§2", "aud at /ath/authorize is the base URL, not the token URL")
    def aud_token() -> str:
        main = run.need("main")
        return error_of(
            run.authorize(main, attestation=main.attest(run.token_url)),
            401,
            "INVALID_ATTESTATION",
        )

    @checks.add("att-replay", "§2", "a replayed jti is refused")
    def replay() -> str:
        main = run.need("main")
        attestation = main.attest(run.base)
        first = run.authorize(main, attestation=attestation)
        if first.status_code != 200:
            raise Failed(f"the first use answered {first.status_code}: {first.text[:200]}")
        return error_of(run.authorize(main, attestation=attestation), 401, "INVALID_ATTESTATION")

    @checks.add("authz-redirect", "§4.1", "an unregistered redirect URI is refused")
    def redirect_unregistered() -> str:
        main = run.need("main")
        return error_of(run.authorize(main, redirect="https://elsewhere.invalid/cb"), 400)

    @checks.add("authz-state", "§4.3", "state is required")
    def state_required() -> str:
        main = run.need("main")
        return error_of(run.authorize(main, omit=("state",)), 400)

    @checks.add("authz-pkce", "§4.3/§6", "the provider authorization carries PKCE S256")
    def pkce() -> str:
        main = run.need("main")
        response = run.authorize(main)
        if response.status_code != 200:
            raise Failed(f"authorize answered {response.status_code}: {response.text[:200]}")
        url = response.json()["authorization_url"]
        with httpx.Client(timeout=run.cfg.timeout, trust_env=False) as browser:
            for _ in range(6):
                params = parse_qs(urlsplit(url).query)
                if "code_challenge" in params:
                    method = params.get("code_challenge_method", [""])[0]
                    challenge = params["code_challenge"][0]
                    if method != "S256":
                        raise Failed(f"code_challenge_method is {method!r}, not S256")
                    if not re.fullmatch(r"[A-Za-z0-9_-]{43}", challenge):
                        raise Failed("code_challenge is not a base64url SHA-256")
                    return "code_challenge with S256"
                step = browser.get(url, follow_redirects=False)
                if step.status_code not in _REDIRECTS or "location" not in step.headers:
                    break
                url = urljoin(url, step.headers["location"])
        raise Failed("no redirect towards the provider carries a PKCE code_challenge")

    run.check_all(*checks)


def callback_and_token_checks(run: _Run) -> None:
    checks = CheckList()
    flow: dict[str, Any] = {}

    def consented() -> tuple[str, str]:
        """The session the consent check got, and its code; skip without one."""
        if "session" not in flow:
            raise Skipped("no consented session")
        return flow["session"], flow["code"]

    @checks.add("cb-state", "§4.4", "a callback with an unknown state is refused")
    def wrong_state() -> str:
        response = run.http.get(run.callback_url, params={"state": "x" * 43, "code": "c"})
        return error_of(response, 400, "STATE_MISMATCH")

    @checks.add("cb-no-state", "§4.4", "a callback without state is refused")
    def missing_state() -> str:
        return error_of(
            run.http.get(run.callback_url, params={"code": "c"}),
            400,
            "STATE_MISMATCH",
            "INVALID_REQUEST",
        )

    @checks.add("consent", "§4.4", "consent ends on the agent's redirect with code and state")
    def consent() -> str:
        main = run.need("main")
        session_id, query, state = run.flow(main)
        if "code" not in query:
            raise Failed(f"the redirect carries no code: {query}")
        if query.get("state") != state:
            raise Failed("the redirect's state is not the agent's state")
        flow.update(session=session_id, code=query["code"])
        return "redirect carries code and the agent's state"

    @checks.add("cb-binding", "§4.3", "the callback must come from the browser that consented")
    def binding() -> str:
        main = run.need("main")
        if not run.cfg.consent.can_stop_at_callback:
            raise Skipped(f"the {run.cfg.consent.name} driver cannot stop at the callback")
        url, session_id, state, _ = run.start(main)
        stopped = run.cfg.consent.to_callback(url, run.callback_url)
        try:
            with httpx.Client(timeout=run.cfg.timeout, trust_env=False) as thief:
                got = error_of(
                    thief.get(stopped.callback_url, follow_redirects=False),
                    400,
                    "STATE_MISMATCH",
                )
            step = stopped.browser.get(stopped.callback_url, follow_redirects=False)
            target = urljoin(stopped.callback_url, step.headers.get("location", ""))
            if step.status_code not in _REDIRECTS or not target.startswith(AGENT_REDIRECT):
                raise Failed(f"the right browser got HTTP {step.status_code}, no redirect")
            query = query_of(target)
            if query.get("state") != state or "code" not in query:
                raise Failed(f"the right browser's redirect is wrong: {query}")
            response = run.token(main, session_id, query["code"])
            if response.status_code == 200:
                run.tokens["second"] = response.json()["access_token"]
        finally:
            stopped.browser.close()
        return f"another browser: {got}; the same browser: redirected"

    @checks.add("token-aud", "§4.5", "aud at /ath/token is the token endpoint URL")
    def aud_base() -> str:
        main = run.need("main")
        session, code = consented()
        return error_of(
            run.token(main, session, code, attestation=main.attest(run.base)),
            401,
            "INVALID_ATTESTATION",
        )

    @checks.add("token-secret", "§4.5", "a wrong client secret is refused")
    def wrong_secret() -> str:
        main = run.need("main")
        session, code = consented()
        return error_of(
            run.token(main, session, code, secret="ath-conformance-wrong-secret"),
            (400, 401),
        )

    @checks.add("token-code", "§4.4", "a wrong code is refused")
    def wrong_code() -> str:
        main = run.need("main")
        session, _ = consented()
        return error_of(run.token(main, session, "ath-conformance-wrong-code"), (400, 401, 403))

    @checks.add("token-foreign", "§4.5", "another client cannot use the session")
    def foreign_session() -> str:
        other = run.need("other")
        session, code = consented()
        return error_of(run.token(other, session, code), 400, "SESSION_NOT_FOUND")

    @checks.add("token-ok", "§4.5/§5", "the token is bound, ≤ 1 h, and holds the intersection")
    def exchange() -> str:
        main = run.need("main")
        session, code = consented()
        response = run.token(main, session, code)
        if response.status_code != 200:
            raise Failed(f"answered {response.status_code}: {response.text[:200]}")
        token = TokenResponse.model_validate(response.json())
        if token.expires_in > 3600 or token.expires_in <= 0:
            raise Failed(f"expires_in {token.expires_in} is not within 1 hour")
        if token.agent_id != main.agent_id or token.provider_id != run.provider:
            raise Failed("the token names another agent or provider")
        part = token.scope_intersection
        expected = [
            s for s in part.agent_approved if s in part.user_consented and s in run.approved
        ]
        if sorted(token.effective_scopes) != sorted(part.effective) or sorted(
            part.effective
        ) != sorted(expected):
            raise Failed(
                f"effective {token.effective_scopes} is not approved ∩ consented "
                f"∩ requested ({part})"
            )
        run.tokens["main"] = token.access_token
        return f"Bearer, {token.expires_in} s, effective {', '.join(token.effective_scopes)}"

    @checks.add("token-single-use", "§4.5", "the session is single-use")
    def single_use() -> str:
        main = run.need("main")
        run.need_token("main")
        return error_of(run.token(main, flow["session"], flow["code"]), 400, "SESSION_NOT_FOUND")

    @checks.add("token-unknown", "§4.5", "an unknown session is refused")
    def unknown_session() -> str:
        main = run.need("main")
        return error_of(
            run.token(main, "ath-conformance-unknown-session", "code"),
            400,
            "SESSION_NOT_FOUND",
        )

    @checks.add("intersection", "§5", "effective = approved ∩ consented ∩ requested")
    def intersection() -> str:
        main = run.need("main")
        if not run.cfg.consent.can_choose_scopes:
            raise Skipped(f"the {run.cfg.consent.name} driver cannot untick scopes")
        if len(run.approved) < 2:
            raise Skipped("needs at least two approved scopes")
        subset = run.approved[:-1]
        session_id, query, _ = run.flow(main, run.approved, consent=subset)
        response = run.token(main, session_id, query.get("code", ""))
        if response.status_code != 200:
            raise Failed(f"answered {response.status_code}: {response.text[:200]}")
        effective = sorted(response.json()["effective_scopes"])
        if effective != sorted(subset):
            raise Failed(f"user consented {subset}, token holds {effective}")
        return f"consented {', '.join(subset)} → effective {', '.join(effective)}"

    @checks.add("user-denied", "§4.4", "a refusal redirects with access_denied; no token")
    def user_denied() -> str:
        denied = run.agents["denied"]
        if not run.cfg.consent.can_deny:
            raise Skipped(f"the {run.cfg.consent.name} driver cannot press deny")
        response = run.register(denied)
        if response.status_code not in (200, 201):
            raise Failed(f"registration answered {response.status_code}")
        denied.client_id = response.json()["client_id"]
        denied.client_secret = response.json()["client_secret"]
        url, session_id, state, redirect = run.start(denied)
        query = run.cfg.consent.consent(url, redirect_uri=redirect, state=state, allow=False)
        if query.get("error") != "access_denied" or query.get("state") != state:
            raise Failed(f"the redirect after a refusal is {query}")
        return error_of(run.token(denied, session_id, "none"), 403, "USER_DENIED")

    run.check_all(*checks)
