"""The conformance run's agents: real keys, identity documents served on 127.0.0.1, and
attestations — honest ones, and each kind of broken one a verifier must refuse (ATH §2)."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from athkit.agent import generate_key, serve_identity
from athkit.protocol import (
    PrivateKey,
    b64url_encode,
    create_attestation,
    key_id,
    public_key_to_jwk,
)

DEVELOPER = {"name": "ATH conformance kit", "id": "athkit-conformance"}


@dataclass
class Agent:
    """One agent of the run: its id (a loopback identity URL) and its key."""

    name: str
    agent_id: str
    key: PrivateKey
    client_id: str | None = None
    client_secret: str | None = None

    def attest(self, audience: str, **overrides: Any) -> str:
        """An honest attestation for ``audience`` (``overrides`` go to ``create_attestation``)."""
        return create_attestation(self.key, agent_id=self.agent_id, audience=audience, **overrides)

    def expired(self, audience: str) -> str:
        """Signed correctly, but ``exp`` has passed (issued 20 minutes ago, 10 minutes long)."""
        return self.attest(audience, now=time.time() - 1200, lifetime=timedelta(minutes=10))

    def issued_in_future(self, audience: str) -> str:
        """``iat`` 30 minutes ahead of now: outside the 5-minute window."""
        return self.attest(audience, now=time.time() + 1800, lifetime=timedelta(minutes=5))

    def claiming(self, audience: str, sub: str) -> str:
        """Signed by this agent's key, but claiming to be ``sub``."""
        return create_attestation(self.key, agent_id=sub, audience=audience)

    def signed_by(self, other: PrivateKey, audience: str) -> str:
        """This agent's claims, signed by a key that is not in its identity document."""
        return create_attestation(other, agent_id=self.agent_id, audience=audience)

    def unsigned(self, audience: str) -> str:
        """``alg: none`` with an empty signature."""
        return _forge({"alg": "none", "typ": "JWT"}, self._claims(audience), b"")

    def hmac_with_public_key(self, audience: str) -> str:
        """``alg: HS256`` keyed with the public JWK's bytes: the classic algorithm confusion."""
        header = {"alg": "HS256", "typ": "JWT", "kid": key_id(self.key)}
        secret = json.dumps(public_key_to_jwk(self.key.public_key()), sort_keys=True).encode()
        signing_input = _signing_input(header, self._claims(audience))
        return _forge(
            header,
            self._claims(audience),
            hmac.new(secret, signing_input, hashlib.sha256).digest(),
            signing_input,
        )

    def _claims(self, audience: str) -> dict[str, Any]:
        now = int(time.time())
        return {
            "iss": self.agent_id,
            "sub": self.agent_id,
            "aud": audience,
            "iat": now,
            "exp": now + 300,
            "jti": secrets.token_urlsafe(16),
        }


def _signing_input(header: dict[str, Any], claims: dict[str, Any]) -> bytes:
    def part(value: dict[str, Any]) -> str:
        return b64url_encode(json.dumps(value, separators=(",", ":")).encode())

    return f"{part(header)}.{part(claims)}".encode()


def _forge(
    header: dict[str, Any],
    claims: dict[str, Any],
    signature: bytes,
    signing_input: bytes | None = None,
) -> str:
    data = signing_input or _signing_input(header, claims)
    return f"{data.decode()}.{b64url_encode(signature)}"


@contextlib.contextmanager
def hosted_agents(*names: str) -> Iterator[dict[str, Agent]]:
    """Agents whose identity documents are served on 127.0.0.1 until the block ends."""
    with contextlib.ExitStack() as stack:
        agents: dict[str, Agent] = {}
        for name in names:
            key = generate_key()
            agent_id = stack.enter_context(
                serve_identity(key, name=f"Conformance {name}", developer=DEVELOPER)
            )
            agents[name] = Agent(name, agent_id, key)
        yield agents
