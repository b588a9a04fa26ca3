"""The gateway-mode story: MailBot reaches Alice's Example Mail through the ATH gateway.

Example Mail (its OAuth server and its mail API) knows nothing of ATH; the gateway runs the
handshake, keeps the provider tokens, and proxies each call only when the ATH token's scopes
allow it (ATH §4.6).
"""

from __future__ import annotations

from typing import Any

from athkit.demo._cast import Cast, Role
from athkit.demo._handshake import HandshakeStory
from athkit.demo._report import Step
from athkit.demo._stack import (
    MAIL_PROVIDER_ID,
    MAILBOT_DEVELOPER,
    MAILBOT_NAME,
    GatewayStack,
)
from athkit.demo._story import Story, StoryError, error_code, scopes_text
from athkit.protocol import ADMIN_PREFIX, GATEWAY_DISCOVERY_PATH, PROXY_PREFIX, GatewayDiscovery

MAIL_SCOPES = ["mail:read", "mail:send", "mail:delete"]
PROXY = PROXY_PREFIX + MAIL_PROVIDER_ID
MAIL_ROLE = Role(
    MAIL_PROVIDER_ID, "the gateway", "Example Mail's OAuth server", MAILBOT_NAME, MAILBOT_DEVELOPER
)


class MailStory(HandshakeStory):
    """Runs the gateway story against a started :class:`GatewayStack`."""

    untick = "mail:delete"
    review_scope = "mail:send"
    connected_scope = "mail:read"

    def __init__(self, stack: GatewayStack, story: Story, *, browser: bool = False) -> None:
        cast = Cast(MAIL_ROLE, stack, stack.gateway_url, stack.mailbot_id, stack.mailbot_key)
        super().__init__(cast, story, mode="gateway", browser=browser)
        self.stack = stack

    def run(self) -> None:
        """Every step, in order; each records what it measured."""
        first_scopes, _ = self.first_handshake(
            MAIL_SCOPES,
            purpose="Sorts and answers your email",
            why="The gateway verified MailBot's attestation against its published key; its "
            "policy for Example Mail approves reading and deleting at once, sending needs a "
            "person's review.",
            title="Authorization: MailBot asks Alice for access to her mail",
            consent_title=f"Consent at Example Mail: Alice unticks {self.untick}",
        )
        self.read_inbox()
        self.refused_call(
            "delete_refused",
            f"MailBot tries to delete a message: Alice unticked {self.untick}",
            "DELETE",
            "/messages/1",
            why="The gateway approved mail:delete, but Alice did not consent; the call never "
            "reaches Example Mail.",
        )
        self.review_refused_call(
            "send_refused",
            "MailBot tries to send an email: refused",
            "POST",
            "/messages",
            json=self._mail(),
            why="Sending mail as Alice needs the gateway operator's review first.",
        )
        self.operator_approves()
        if self.handshake_again(first_scopes) is not None:
            self.send_mail()
        self.operator_revokes_for_user()
        self.call_after_revocation("/messages")
        self.attacks("mail:read")

    @staticmethod
    def _mail() -> dict[str, Any]:
        return {"to": "bob@example.com", "subject": "Re: Lunch on Friday?", "body": "Yes!"}

    def discovery(self) -> None:
        """GET /.well-known/ath.json: the gateway's catalog."""
        document = self.agent.discover()
        if not isinstance(document, GatewayDiscovery):
            raise StoryError("the gateway did not answer a catalog")
        mail = next(
            (p for p in document.supported_providers if p.provider_id == MAIL_PROVIDER_ID), None
        )
        self.story.record(
            Step(
                step="discovery",
                title="Discovery: which providers does the gateway front?",
                ok=mail is not None and mail.available_scopes == MAIL_SCOPES,
                outcome="found",
                scopes=list(mail.available_scopes) if mail else [],
                details={"gateway_id": document.gateway_id},
                sent=[f"GET {self.stack.gateway_url}{GATEWAY_DISCOVERY_PATH}"],
                received=[
                    f"200 gateway {document.gateway_id!r}: "
                    + (
                        f"{mail.display_name} ({MAIL_PROVIDER_ID}), scopes "
                        f"{scopes_text(mail.available_scopes)}"
                        if mail
                        else "no Example Mail"
                    )
                ],
                why="Gateway mode: Example Mail is unchanged; the gateway speaks ATH for it.",
            )
        )

    def read_inbox(self) -> None:
        """mail:read through the proxy; the upstream's own answer comes back unchanged."""
        response, exc = self.api("GET", "/messages")
        status, code, message = self.outcome_of(response, exc)
        messages = response.json().get("messages", []) if response is not None else []
        self.story.record(
            Step(
                step="read_inbox",
                title="MailBot reads Alice's inbox through the gateway (mail:read)",
                ok=status == 200 and len(messages) > 0,
                outcome="ok" if status == 200 else "refused",
                code=code,
                details={"messages": len(messages)},
                sent=[f"GET {PROXY}/messages  Authorization: Bearer <ATH token>, X-ATH-Agent-ID"],
                received=[
                    f"{status} from Example Mail: {len(messages)} messages, e.g. "
                    + ", ".join(repr(m.get("subject")) for m in messages[:2])
                    if status == 200
                    else f"{status} {code}: {message}"
                ],
                why="The gateway swapped the ATH token for Alice's provider token, which the "
                "mail API checked by introspection; MailBot never held it.",
            )
        )

    def send_mail(self) -> None:
        """mail:send now in the token."""
        response, exc = self.api("POST", "/messages", self._mail())
        status, code, message = self.outcome_of(response, exc)
        body = response.json() if response is not None and status == 201 else {}
        self.story.record(
            Step(
                step="send_mail",
                title="MailBot sends the email",
                ok=status == 201 and body.get("folder") == "sent",
                outcome="sent" if status == 201 else "refused",
                code=code,
                details={"message_id": body.get("id")},
                sent=[f"POST {PROXY}/messages  " + str(self._mail())],
                received=[
                    f"{status} from Example Mail: message {body.get('id')} in 'sent'"
                    if status == 201
                    else f"{status} {code}: {message}"
                ],
            )
        )

    def operator_revokes_for_user(self) -> None:
        """The gateway has no pages for users: Alice asks its operator, who revokes."""
        auth = {"Authorization": f"Bearer {self.cast.stack.admin_token}"}
        listed = self.http.get(
            f"{self.cast.base_url}{ADMIN_PREFIX}/tokens",
            params={"client_id": self.client_id, "user_id": "user-alice"},
            headers=auth,
        )
        tokens = listed.json().get("tokens", []) if listed.status_code == 200 else []
        revoked = 0
        for token in tokens:
            answer = self.http.post(
                f"{self.cast.base_url}{ADMIN_PREFIX}/tokens/{token['token_id']}/revoke",
                headers=auth,
            )
            revoked += int(answer.status_code == 200 and answer.json().get("revoked") is True)
        self.story.record(
            Step(
                step="user_revokes",
                title="Alice asks the gateway's operator to cut MailBot off",
                ok=listed.status_code == 200 and len(tokens) > 0 and revoked == len(tokens),
                outcome="revoked" if tokens and revoked == len(tokens) else "failed",
                code=error_code(listed) if listed.status_code >= 400 else None,
                details={"tokens_revoked": revoked},
                sent=[
                    "GET /ath/admin/tokens?client_id=…&user_id=user-alice  (admin bearer token)",
                    "POST /ath/admin/tokens/{token_id}/revoke for each",
                ],
                received=[f"{len(tokens)} live token(s) found, {revoked} revoked"],
                why="A gateway has no user accounts of its own; in native mode the user revokes "
                "on the service's own page.",
            )
        )
