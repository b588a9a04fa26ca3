"""Attestation verification with the agent's published key (ATH §2), end to end.

Order of :meth:`AttestationVerifier.verify`:

1. read the *unverified* ``sub``, only to know whose identity document to fetch; it must be a
   canonical agent_id (:mod:`athkit.protocol._agent_id`), so no other spelling of an identity
   is ever fetched, registered or compared;
2. if the caller knows which agent it expects (a registered client), a different ``sub`` is
   refused with ``AGENT_IDENTITY_MISMATCH`` *before* any fetch, so an attacker cannot make us
   fetch URLs of their choosing by presenting someone else's ``client_id``;
3. identity document from the cache or a guarded fetch (:mod:`athkit.server._fetch`);
4. ES256 signature, ``exp``, exact ``aud``, ``iat`` (:func:`athkit.protocol.verify_attestation`);
   on a *signature* failure only, the document is re-fetched once bypassing the cache (key
   rotation), at most once per agent per minute, and the check is retried;
5. ``jti`` through the replay store; a duplicate is refused with reason ``replayed_jti``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from athkit.protocol import (
    AgentIdError,
    ATHError,
    Developer,
    ErrorCode,
    IdentityDocument,
    PublicKey,
    VerificationKey,
    VerifiedAttestation,
    canonical_agent_id,
    check_agent_id,
    load_public_key,
    public_key_to_jwk,
    read_unverified_claims,
    same_agent_id,
    verify_attestation,
)
from athkit.server._clock import ClockLike, time_source
from athkit.server._fetch import FetchPolicy, IdentityFetcher
from athkit.server._identity import MAX_CACHE_SECONDS, IdentityCache
from athkit.server._replay import ReplayStore

logger = logging.getLogger("athkit.server.verifier")

REFETCH_INTERVAL_SECONDS = 60  # ATH §2: re-fetch on signature failure at most once per minute

TrustedKey = PublicKey | VerificationKey | IdentityDocument | dict[str, Any] | str


@dataclass(frozen=True, slots=True)
class VerifiedAgent:
    """A verified attestation and the identity document whose key verified it.

    For an agent trusted through the development-only ``trusted_keys`` switch, ``identity`` is
    the document given in configuration, or one built from the bare key (see
    :class:`AttestationVerifier`); it was never fetched.
    """

    attestation: VerifiedAttestation
    identity: IdentityDocument

    @property
    def agent_id(self) -> str:
        """The verified agent_id (the attestation's ``sub``)."""
        return self.attestation.sub


def _fail(reason: str, message: str) -> ATHError:
    return ATHError(
        ErrorCode.INVALID_ATTESTATION,
        f"invalid attestation: {message}",
        details={"reason": reason},
    )


class AttestationVerifier:
    """Verifies agent attestations against their published identity documents.

    ``fetcher`` is an :class:`IdentityFetcher` (shared, not closed here) or a
    :class:`FetchPolicy` (a fetcher is made and closed by :meth:`aclose`); None means the
    production default policy. ``clock`` tells epoch seconds: a callable, or a
    :class:`~athkit.server.Clock` with ``now()``.

    ``trusted_keys`` maps agent_ids to keys trusted without fetching their documents
    (development only; a WARNING is logged at construction). A value is a public key (object,
    JWK or PEM) or a whole :class:`IdentityDocument`; for a bare key the verified agent's
    ``identity`` is a stand-in document named after the agent's host, with developer
    ``{"name": "development (unverified)", "id": "development"}``. The signature, claims and
    replay checks still run.

    ``allow_agent_id_query`` lets agent_ids carry a query string (off by default, ATH §2).
    """

    def __init__(
        self,
        *,
        replay_store: ReplayStore,
        fetcher: IdentityFetcher | FetchPolicy | None = None,
        clock: ClockLike = time.time,
        trusted_keys: Mapping[str, TrustedKey] | None = None,
        cache_seconds: float = MAX_CACHE_SECONDS,
        refetch_interval: float = REFETCH_INTERVAL_SECONDS,
        allow_agent_id_query: bool = False,
    ) -> None:
        self._allow_query = allow_agent_id_query
        if isinstance(fetcher, IdentityFetcher):
            self._fetcher, self._owns_fetcher = fetcher, False
        else:
            self._fetcher, self._owns_fetcher = IdentityFetcher(fetcher), True
        self._replay = replay_store
        self._clock = time_source(clock)
        self._identities = IdentityCache(self._fetcher, clock=self._clock, max_age=cache_seconds)
        self._refetch_interval = refetch_interval
        self._last_refetch: dict[str, float] = {}
        self._trusted: dict[str, tuple[VerificationKey, IdentityDocument]] = {}
        for agent_id, key in (trusted_keys or {}).items():
            # ATH §2: looked up by the (canonical) sub, so kept under the canonical form.
            canonical = canonical_agent_id(agent_id, allow_query=True)
            self._trusted[canonical] = _prepare_trusted(canonical, key)
        if self._trusted:
            logger.warning(
                "attestation fetch skipped for %s; development only: these keys are trusted "
                "from configuration, their identity documents are never fetched. "
                "Never enable this in production.",
                ", ".join(sorted(self._trusted)),
            )

    @property
    def fetcher(self) -> IdentityFetcher:
        """The fetcher used for identity documents."""
        return self._fetcher

    async def aclose(self) -> None:
        """Close the fetcher if this verifier created it."""
        if self._owns_fetcher:
            await self._fetcher.aclose()

    async def __aenter__(self) -> AttestationVerifier:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def verify(
        self, token: str, *, audience: str, expected_agent_id: str | None = None
    ) -> VerifiedAgent:
        """Verify ``token`` for ``audience``; raise ``ATHError`` on any failure.

        ``expected_agent_id`` is the agent the caller already knows (for example the agent
        registered under the presented ``client_id``); a different ``sub`` is refused with
        ``AGENT_IDENTITY_MISMATCH`` before anything is fetched.
        """
        sub = _unverified_sub(token)
        try:
            # ATH §2: an agent_id is an identity; only its canonical form is accepted.
            check_agent_id(sub, allow_query=self._allow_query)
        except AgentIdError as exc:
            details = {"reason": "agent_id_not_canonical", "problem": exc.reason}
            if exc.canonical is not None:
                details["canonical"] = exc.canonical
            raise ATHError(
                ErrorCode.INVALID_ATTESTATION, f"invalid attestation: {exc}", details=details
            ) from None
        if expected_agent_id is not None and sub != expected_agent_id:
            raise ATHError(
                ErrorCode.AGENT_IDENTITY_MISMATCH,
                "the attestation's sub is not the agent registered for this client",
                details={"reason": "sub_mismatch"},
            )
        trusted = self._trusted.get(sub)
        if trusted is not None:
            key, document = trusted
            attestation = verify_attestation(token, key, audience=audience, now=self._clock())
        else:
            attestation, document = await self._verify_with_document(token, sub, audience)
        # ATH §2: the jti is never accepted twice; the store keeps it until exp.
        if not await self._replay.add_if_new(attestation.jti, attestation.sub, attestation.exp):
            raise _fail("replayed_jti", "this attestation (jti) was already used; sign a new one")
        return VerifiedAgent(attestation=attestation, identity=document)

    async def _verify_with_document(
        self, token: str, sub: str, audience: str
    ) -> tuple[VerifiedAttestation, IdentityDocument]:
        identity = await self._identities.get(sub)
        try:
            attestation = verify_attestation(
                token, identity.key, audience=audience, now=self._clock()
            )
        except ATHError as exc:
            # ATH §2: only a signature failure may mean a rotated key; expiry or audience never.
            if exc.details.get("reason") != "bad_signature" or not self._may_refetch(sub):
                raise
            try:
                identity = await self._identities.get(sub, refresh=True)
            except ATHError as refetch_error:
                logger.info("re-fetch of %s after a bad signature failed: %s", sub, refetch_error)
                raise exc from None
            attestation = verify_attestation(
                token, identity.key, audience=audience, now=self._clock()
            )
        return attestation, identity.document

    def _may_refetch(self, agent_id: str) -> bool:
        now = self._clock()
        last = self._last_refetch.get(agent_id)
        if last is not None and now - last < self._refetch_interval:
            return False
        if len(self._last_refetch) >= 10_000:
            cutoff = now - self._refetch_interval
            self._last_refetch = {k: v for k, v in self._last_refetch.items() if v > cutoff}
        self._last_refetch[agent_id] = now
        return True


def _unverified_sub(token: str) -> str:
    claims = read_unverified_claims(token)
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise _fail("missing_sub", "the sub claim is missing")
    if len(sub) > 2048:
        raise _fail("malformed", "the sub claim is longer than 2048 characters")
    return sub


def _prepare_trusted(agent_id: str, value: TrustedKey) -> tuple[VerificationKey, IdentityDocument]:
    if isinstance(value, IdentityDocument):
        if not same_agent_id(value.agent_id, agent_id, allow_query=True):
            raise ValueError(f"trusted document for {agent_id} names agent_id {value.agent_id}")
        return VerificationKey(load_public_key(value.public_key)), value
    if isinstance(value, VerificationKey):
        key = value
    elif isinstance(value, dict | str):
        key = VerificationKey(load_public_key(value))
    else:
        key = VerificationKey(value)
    document = IdentityDocument(
        agent_id=agent_id,
        name=(urlsplit(agent_id).hostname or agent_id)[:256],
        developer=Developer(name="development (unverified)", id="development"),
        public_key=public_key_to_jwk(key.public_key),
    )
    return key, document
