"""What both stories share: an agent registering, asking a person for consent, exchanging the
code, being reviewed by an operator, and the three attacks of the closing table.

Subclasses (the native shop, the gateway in front of Example Mail) add their API calls.
"""

from __future__ import annotations

import functools
import webbrowser
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urljoin

import httpx

from athkit.agent import (
    ATHClient,
    ATHClientError,
    LoopbackListener,
    PendingAuthorization,
    new_state,
)
from athkit.demo._cast import SCENARIOS, Cast
from athkit.demo._report import Row, Step
from athkit.demo._story import Story, StoryError, error_code, error_message, query_of, scopes_text
from athkit.protocol import (
    ADMIN_PREFIX,
    AUTHORIZE_PATH,
    PROXY_PREFIX,
    TokenResponse,
    create_attestation,
    generate_private_key,
)
from athkit.testing import drive_consent

BROWSER_TIMEOUT = 300.0


class HandshakeStory:
    """The handshake steps, recorded into a :class:`Story`."""

    #: the scope the person always unticks
    untick: str = ""
    #: the scope the implementer sends to review
    review_scope: str = ""
    #: what the agent keeps while ``ath demo --serve`` runs (so Connected agents lists it)
    connected_scope: str = ""

    def __init__(self, cast: Cast, story: Story, *, mode: str, browser: bool = False) -> None:
        self.cast = cast
        self.story = story
        self.mode = mode
        self.browser = browser
        self.http = httpx.Client(timeout=10.0)
        # Alice's browser: keeps the cookies of every site she visits, and lets the story read
        # the pages the login site showed her.
        self._pages: list[str] = []
        self.alice = httpx.Client(timeout=10.0, event_hooks={"response": [self._seen]})
        # Alice walking from a URL through the login (as herself) and the consent.
        self.alice_walks = functools.partial(
            drive_consent, self.alice, username=cast.stack.username, password=cast.stack.password
        )
        self.agent = ATHClient(
            cast.base_url,
            agent_id=cast.agent_id,
            private_key=cast.agent_key,
            mode="native" if mode == "native" else "gateway",
        )
        # Where the agent catches the user's browser coming back (RFC 8252 loopback redirect).
        self.redirect_uri = f"{urljoin(cast.agent_id, '/')}callback"
        self.client_id = ""

    def _seen(self, response: httpx.Response) -> None:
        if str(response.url).startswith(
            self.cast.stack.oauth_url
        ) and "html" in response.headers.get("content-type", ""):
            response.read()
            self._pages.append(response.text)

    def run(self) -> None:
        """Every step of the story, in order (each subclass tells its own)."""
        raise NotImplementedError

    def discovery(self) -> None:
        """The discovery step (each subclass reads its own document)."""
        raise NotImplementedError

    def first_handshake(
        self, requested: list[str], *, purpose: str, why: str, title: str, consent_title: str
    ) -> tuple[list[str], TokenResponse | None]:
        """Discovery, registration, then the handshake for every approved scope but the
        reviewed one; returns those scopes and the token (``None`` when there is none)."""
        self.discovery()
        approved = self.registration(requested, purpose=purpose, why=why)
        first_scopes = [s for s in approved if s != self.review_scope]
        token = self.handshake(
            first_scopes, title=title, consent_title=consent_title, step_suffix=""
        )
        return first_scopes, token

    def handshake_again(self, first_scopes: list[str]) -> TokenResponse | None:
        """Once the operator approved the reviewed scope: the handshake again, with it."""
        return self.handshake(
            [*first_scopes, self.review_scope],
            title=f"Authorization again, now with {self.review_scope}",
            consent_title=f"Consent again: Alice allows {self.review_scope} "
            f"(still not {self.untick})",
            step_suffix="_again",
        )

    def table_row(
        self, step: str, scenario: str, result: str, code: str | None, scopes: Sequence[str] = ()
    ) -> None:
        """A line of the closing table: what ``step`` showed for ``scenario`` (one of
        :data:`SCENARIOS`)."""
        consents, approved = SCENARIOS[scenario]
        self.story.row(
            Row(
                scenario=scenario,
                user_consents=consents,
                service_approved=approved,
                result=result,
                code=code,
                effective_scopes=list(scopes),
                step=step,
            )
        )

    def close(self) -> None:
        """Close the HTTP clients."""
        self.agent.close()
        self.http.close()
        self.alice.close()

    # --- calls -----------------------------------------------------------------------------

    def api(
        self, method: str, path: str, json: object | None = None
    ) -> tuple[httpx.Response | None, ATHClientError | None]:
        """An API call with the agent's token: the response, or the client's refusal to send."""
        try:
            if self.mode == "native":
                response = self.agent.request(method, path, json=json, raise_for_ath_error=False)
            else:
                response = self.agent.proxy(
                    self.cast.role.provider_id, method, path, json=json, raise_for_ath_error=False
                )
        except ATHClientError as exc:
            return None, exc
        return response, None

    def shown(self, path: str) -> str:
        """The request path as it goes over the wire."""
        if self.mode == "native":
            return f"/api{path}"
        return f"{PROXY_PREFIX}{self.cast.role.provider_id}{path}"

    @staticmethod
    def outcome_of(
        response: httpx.Response | None, exc: ATHClientError | None
    ) -> tuple[int | None, str | None, str]:
        """(status, code, message) of a call."""
        if response is not None:
            return response.status_code, error_code(response), error_message(response)
        assert exc is not None
        return exc.status, exc.code, exc.message

    # --- steps -----------------------------------------------------------------------------

    def registration(self, requested: list[str], *, purpose: str, why: str) -> list[str]:
        """Register the agent; returns the approved scopes."""
        response = self.agent.register(
            {self.cast.role.provider_id: requested},
            developer=dict(self.cast.role.developer),
            purpose=purpose,
            redirect_uris=[self.redirect_uri],
        )
        self.client_id = response.client_id
        provider = next(
            p for p in response.approved_providers if p.provider_id == self.cast.role.provider_id
        )
        approved = list(provider.approved_scopes)
        waiting = [s for s in requested if s not in approved and s not in provider.denied_scopes]
        self.story.record(
            Step(
                step="registration",
                title=f"Registration: {self.cast.role.implementer} decides what "
                f"{self.cast.role.agent_name} may ever ask for",
                ok=response.agent_status == "approved" and waiting == [self.review_scope],
                outcome=response.agent_status,
                scopes=approved,
                details={
                    "agent_status": response.agent_status,
                    "approved_scopes": approved,
                    "denied_scopes": list(provider.denied_scopes),
                    "review_scopes": waiting,
                    "denial_reason": provider.denial_reason,
                },
                sent=[
                    f"POST /ath/agents/register  agent_id={self.cast.agent_id}, signed ES256 "
                    f"attestation (aud = {self.cast.role.implementer})",
                    f"requested: {scopes_text(requested)}",
                ],
                received=[
                    f"agent_status {response.agent_status!r}; approved: {scopes_text(approved)}",
                    f"sent to review: {scopes_text(waiting)}"
                    + (f" ({provider.denial_reason})" if provider.denial_reason else ""),
                ],
                why=why,
            )
        )
        return approved

    def handshake(
        self, scopes: list[str], *, title: str, consent_title: str, step_suffix: str
    ) -> TokenResponse | None:
        """authorize → the person's consent (unticking ``untick``) → token exchange."""
        name, where = self.cast.role.agent_name, self.cast.role.implementer
        state = new_state()
        listener: LoopbackListener | None = None
        redirect_uri = self.redirect_uri
        if self.browser:
            listener = LoopbackListener(state)
            redirect_uri = listener.redirect_uri
        try:
            pending = self.agent.authorize(
                self.cast.role.provider_id, scopes, user_redirect_uri=redirect_uri, state=state
            )
            self.story.record(
                Step(
                    step="authorize" + step_suffix,
                    title=title,
                    ok=True,
                    outcome="consent_url",
                    scopes=scopes,
                    details={"ath_session_id": pending.ath_session_id},
                    sent=[f"POST /ath/authorize  scopes: {scopes_text(scopes)}, state"],
                    received=[f"consent URL {pending.authorization_url}"],
                    why=f"{where.capitalize()} checked {name}'s attestation again and that every "
                    "scope asked for is approved; the URL carries PKCE S256 and a signed agent "
                    "context.",
                )
            )
            wanted = [s for s in scopes if s != self.untick]
            self._pages.clear()
            if listener is not None:
                code = self._consent_in_browser(pending.authorization_url, listener)
                consent_detail = ["you completed the consent page in your browser"]
            else:
                target = self.alice_walks(
                    pending.authorization_url,
                    scopes=wanted,
                    allow=True,
                    stop_at=redirect_uri,
                )
                if not isinstance(target, str):
                    raise StoryError(
                        f"consent ended on {target.url} ({target.status_code}), not at {name}"
                    )
                params = query_of(target)
                if params.get("state") != state:
                    raise StoryError("the redirect came back with another state")
                code = params.get("code", "")
                consent_detail = [
                    f"Alice logs in as {self.cast.stack.username!r} at "
                    f"{self.cast.role.login_site}; its consent page shows {name} from the signed "
                    "ath_context",
                    f"ticked: {scopes_text(wanted)}; unticked: {self.untick}; pressed Allow",
                ]
            # Agent-aware consent, measured: the page Alice saw named the agent and developer.
            named = listener is not None or any(
                name in page and self.cast.role.developer["name"] in page for page in self._pages
            )
            self.story.record(
                Step(
                    step="consent" + step_suffix,
                    title=consent_title,
                    ok=bool(code) and named,
                    outcome="allowed",
                    scopes=wanted,
                    details={"consent_page_named_agent": named},
                    sent=consent_detail,
                    received=[f"redirect to {name} with a one-time ATH code and the same state"],
                    why=f"{where.capitalize()} exchanged the OAuth code server-side, so {name} "
                    "never sees a provider token.",
                )
            )
            token = self.agent.exchange_token(code, pending.ath_session_id)
        except ATHClientError as exc:
            self.story.record(
                Step(
                    step="authorize" + step_suffix,
                    title=title,
                    ok=False,
                    outcome="refused",
                    code=exc.code,
                    sent=[f"POST /ath/authorize  scopes: {scopes_text(scopes)}"],
                    received=[str(exc)],
                )
            )
            return None
        finally:
            if listener is not None:
                listener.close()
        breakdown = token.scope_intersection
        self.story.record(
            Step(
                step="token" + step_suffix,
                title="Token exchange: effective = approved ∩ consented ∩ requested",
                ok=set(token.effective_scopes) == set(scopes) - {self.untick},
                outcome="issued",
                scopes=list(token.effective_scopes),
                details={
                    "agent_approved": breakdown.agent_approved,
                    "user_consented": breakdown.user_consented,
                    "requested": scopes,
                    "effective": breakdown.effective,
                    "expires_in": token.expires_in,
                },
                sent=[
                    "POST /ath/token  code, ath_session_id, client secret, fresh attestation "
                    "(aud = token endpoint)"
                ],
                received=[
                    f"agent approved : {scopes_text(breakdown.agent_approved)}",
                    f"user consented : {scopes_text(breakdown.user_consented)}",
                    f"requested      : {scopes_text(scopes)}",
                    f"effective      : {scopes_text(breakdown.effective)}  "
                    f"(Bearer token, {token.expires_in} s)",
                ],
                why=f"Only what BOTH {where} approved AND Alice consented to ends up in the token.",
            )
        )
        if not step_suffix:
            self.table_row(
                "token", "Known agent, user approves", "access", None, list(token.effective_scopes)
            )
        return token

    def alice_answers(
        self, scopes: list[str], *, allow: bool
    ) -> tuple[str, PendingAuthorization, str | httpx.Response]:
        """The agent asks for ``scopes`` and Alice answers: Allow with all of them ticked, or
        Deny. The state sent, the pending authorization, and where her browser stopped."""
        state = new_state()
        pending = self.agent.authorize(
            self.cast.role.provider_id, scopes, user_redirect_uri=self.redirect_uri, state=state
        )
        ticked = scopes if allow else None
        url = pending.authorization_url
        return (
            state,
            pending,
            self.alice_walks(url, scopes=ticked, allow=allow, stop_at=self.redirect_uri),
        )

    def keep_connected(self) -> bool:
        """After the story (``--serve``): Alice connects the agent once more, with
        ``connected_scope``, so that a person exploring finds it on Connected agents. Recorded
        nowhere; ``False`` if it could not be done."""
        if not self.connected_scope or not self.client_id:
            return False
        try:
            state, pending, target = self.alice_answers([self.connected_scope], allow=True)
            if not isinstance(target, str) or query_of(target).get("state") != state:
                return False
            self.agent.exchange_token(query_of(target).get("code", ""), pending.ath_session_id)
        except (ATHClientError, httpx.HTTPError):
            return False
        return True

    def _consent_in_browser(self, url: str, listener: LoopbackListener) -> str:
        opened = webbrowser.open(url)
        where = "in your browser" if opened else f"by opening {url}"
        self.story.reporter.banner(
            f"Log in as {self.cast.stack.username!r} with password {self.cast.stack.password!r} "
            f"{where}; untick {self.untick} and press Allow. "
            f"Waiting up to {int(BROWSER_TIMEOUT)} s.",
            {"consent page": url},
            kind="waiting",
        )
        return listener.wait(BROWSER_TIMEOUT)

    def refused_call(
        self,
        step: str,
        title: str,
        method: str,
        path: str,
        why: str,
        *,
        json: object = None,
        details: dict[str, Any] | None = None,
        also: list[str] | None = None,
        row: str | None = None,
    ) -> None:
        """A call the token must not allow: recorded as ok when refused with 403; with ``row``,
        also a line of the closing table (the service has not approved it)."""
        response, exc = self.api(method, path, json)
        status, code, message = self.outcome_of(response, exc)
        self.story.record(
            Step(
                step=step,
                title=title,
                ok=status == 403,
                outcome="refused" if status == 403 else "allowed",
                code=code,
                details=details or {},
                sent=[f"{method} {self.shown(path)}"],
                received=[f"{status} {code}: {message}", *(also or [])],
                why=why,
            )
        )
        if row is not None:
            self.table_row(step, row, "blocked" if status == 403 else "access", code)

    def review_refused_call(
        self, step: str, title: str, method: str, path: str, why: str, *, json: object = None
    ) -> None:
        """A call that needs the scope under the operator's review: refused, with the reason
        the status endpoint gives, and a line of the closing table."""
        reason = self.review_status()
        self.refused_call(
            step,
            title,
            method,
            path,
            why,
            json=json,
            details={"reason": reason},
            also=[f"GET /ath/agents/{{client_id}}: {self.review_scope} — {reason}"],
            row="Known agent, action under operator review",
        )

    def attacks(self, declined_scope: str) -> None:
        """The closing steps: an unregistered agent, an impostor, and Alice declining
        ``declined_scope``."""
        self.unregistered_agent()
        self.impostor_agent()
        self.user_declines(declined_scope)

    def review_status(self) -> str | None:
        """Why the review scope is not approved, from GET /ath/agents/{client_id}."""
        status = self.agent.status()
        provider = next(
            p for p in status.approved_providers if p.provider_id == self.cast.role.provider_id
        )
        return provider.denial_reason

    def operator_approves(self) -> None:
        """The implementer's operator approves the pending scope through the admin API."""
        response = self.http.post(
            f"{self.cast.base_url}{ADMIN_PREFIX}/agents/{self.client_id}/approve",
            headers={"Authorization": f"Bearer {self.cast.stack.admin_token}"},
        )
        status = self.agent.status()
        provider = next(
            p for p in status.approved_providers if p.provider_id == self.cast.role.provider_id
        )
        self.story.record(
            Step(
                step="operator_approves",
                title=f"The operator reviews {self.cast.role.agent_name} and approves "
                f"{self.review_scope}",
                ok=response.status_code == 200 and self.review_scope in provider.approved_scopes,
                outcome="approved" if response.status_code == 200 else "failed",
                code=error_code(response),
                scopes=list(provider.approved_scopes),
                sent=[f"POST /ath/admin/agents/{self.client_id}/approve  (admin bearer token)"],
                received=[
                    f"{response.status_code}: {self.cast.role.agent_name} now approved for "
                    f"{scopes_text(provider.approved_scopes)}"
                ],
                why=f"Approval alone gives {self.cast.role.agent_name} nothing: it must ask Alice "
                "again.",
            )
        )

    def call_after_revocation(self, path: str) -> None:
        """The call that worked a moment ago fails with TOKEN_REVOKED."""
        response, exc = self.api("GET", path)
        status, code, _ = self.outcome_of(response, exc)
        self.story.record(
            Step(
                step="after_revocation",
                title=f"{self.cast.role.agent_name}'s next call",
                ok=code == "TOKEN_REVOKED",
                outcome="refused",
                code=code,
                sent=[f"GET {self.shown(path)}  (the token that worked a moment ago)"],
                received=[f"{status} {code}"],
                why="Revocation is checked on every call; nothing caches the token's validity.",
            )
        )
        self.table_row(
            "after_revocation",
            "Known agent, after the user revoked it",
            "blocked" if code == "TOKEN_REVOKED" else "access",
            code,
        )

    # --- the three rows of the table -------------------------------------------------------

    def _attacker_authorize(self, client_id: str, sign: Callable[[], str]) -> httpx.Response:
        return self.http.post(
            self.cast.base_url + AUTHORIZE_PATH,
            json={
                "client_id": client_id,
                "agent_attestation": sign(),
                "provider_id": self.cast.role.provider_id,
                "scopes": [self.review_scope],
                "state": new_state(),
            },
        )

    def unregistered_agent(self) -> None:
        """A real agent with a valid signature that never registered."""
        agent_id = self.cast.stack.sketchy_id
        response = self._attacker_authorize(
            "ath_ci_made-up-client",
            lambda: create_attestation(
                self.cast.stack.sketchy_key, agent_id=agent_id, audience=self.cast.base_url
            ),
        )
        code = error_code(response)
        self.story.record(
            Step(
                step="unregistered_agent",
                title="An unregistered agent tries to get a consent link for Alice",
                ok=response.status_code >= 400 and code == "AGENT_NOT_REGISTERED",
                outcome="blocked",
                code=code,
                sent=[f"POST /ath/authorize  from {agent_id} (valid signature, never registered)"],
                received=[f"{response.status_code} {code}: {error_message(response)}"],
                why="Alice would have clicked Allow, but there is no link for her to click.",
            )
        )
        self.table_row(
            "unregistered_agent", "Unknown agent tricks user (unregistered)", "blocked", code
        )

    def impostor_agent(self) -> None:
        """Someone claiming the registered agent's identity, signing with another key."""
        forged_key = generate_private_key()
        response = self._attacker_authorize(
            self.client_id,
            lambda: create_attestation(
                forged_key, agent_id=self.cast.agent_id, audience=self.cast.base_url
            ),
        )
        code = error_code(response)
        name = self.cast.role.agent_name
        self.story.record(
            Step(
                step="impostor_agent",
                title=f"An impostor claims to be {name}, signing with its own key",
                ok=response.status_code >= 400 and code == "INVALID_ATTESTATION",
                outcome="blocked",
                code=code,
                sent=[
                    f"POST /ath/authorize  client_id of {name}, sub={self.cast.agent_id}, "
                    "attestation signed with another P-256 key"
                ],
                received=[f"{response.status_code} {code}: {error_message(response)}"],
                why=f"The signature does not verify with the key {name} publishes.",
            )
        )
        self.table_row("impostor_agent", "Unknown agent tricks user (forged key)", "blocked", code)

    def user_declines(self, scope: str) -> None:
        """The registered agent asks again; Alice presses Deny."""
        code: str | None = None
        redirect_error: str | None = None
        try:
            _, pending, target = self.alice_answers([scope], allow=False)
            redirect_error = query_of(target).get("error") if isinstance(target, str) else None
            try:
                # The redirect carried no code; the agent learns the outcome from /ath/token.
                self.agent.exchange_token("none", pending.ath_session_id)
            except ATHClientError as exc:
                code = exc.code
        except ATHClientError as exc:
            code = exc.code
        self.story.record(
            Step(
                step="user_declines",
                title=f"{self.cast.role.agent_name} asks again; this time Alice presses Deny",
                ok=redirect_error == "access_denied" and code == "USER_DENIED",
                outcome="denied",
                code=code,
                sent=[
                    "POST /ath/authorize, then Alice presses Deny on the consent page",
                    "POST /ath/token",
                ],
                received=[f"redirect with error={redirect_error}", f"{code}: no token"],
            )
        )
        self.table_row("user_declines", "Known agent, user declines", "no access", code)
