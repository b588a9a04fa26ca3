"""Identity documents (ATH §2): fetched, validated, keys parsed once, cached ≤ 5 minutes.

A document is accepted only if it validates as :class:`athkit.protocol.IdentityDocument`, its
``agent_id`` is exactly the URL it was fetched from, and its ``public_key`` is a P-256 key. It is
cached by agent_id for ``min(300 s, Cache-Control max-age)``. Concurrent lookups of one agent
share a single fetch.

What the cache keeps is small on purpose (a gateway may see tens of thousands of agents within
five minutes): the validated document as compact JSON and the key as its 65-byte encoded point.
A parsed ``cryptography`` key costs about 2 KB of OpenSSL memory and a pydantic document about
as much again (measured: 10,000 cached identities took about 45 MB that way, bench/RESULTS.md);
rebuilding them at each verification costs about 10 µs each, next to an ES256 verification
that costs several times that. The cache is bounded by bytes (``max_bytes``), not by a count,
because a document may be up to the fetcher's 64 KB: 10,000 entries of that size would be
640 MB, while an ordinary document is a few hundred bytes.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections import OrderedDict
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pydantic import ValidationError

from athkit.protocol import (
    ATHError,
    ErrorCode,
    IdentityDocument,
    VerificationKey,
    load_public_key,
)
from athkit.server._clock import TimeSource
from athkit.server._fetch import FetchedDocument, IdentityFetcher

MAX_CACHE_SECONDS = 300  # ATH §2: identity documents may be cached for at most 5 minutes
# 8 MiB holds about 20,000 ordinary identities (~400 bytes each with the entry's own overhead),
# and never more than 8 MiB of documents however large each one is.
MAX_CACHE_BYTES = 8 * 1024 * 1024
_ENTRY_OVERHEAD = 250  # the entry object, its agent_id key and the OrderedDict slot, roughly


@dataclass(frozen=True, slots=True)
class AgentIdentity:
    """A validated identity document and its key, kept compact (see the module docstring)."""

    document_json: bytes
    point: bytes  # the P-256 public key, X9.62 uncompressed (65 bytes)
    fetched_at: float
    expires_at: float

    @property
    def key(self) -> VerificationKey:
        """The verification key (rebuilt from the point; it was checked as P-256 when fetched)."""
        return _key_from_point(self.point)

    @property
    def document(self) -> IdentityDocument:
        """The validated identity document (rebuilt from its compact JSON)."""
        return IdentityDocument.model_validate_json(self.document_json)

    @property
    def size(self) -> int:
        """What this entry costs the cache, in bytes (approximately)."""
        return len(self.document_json) + len(self.point) + _ENTRY_OVERHEAD


# The keys of the agents handshaking right now stay parsed (a handshake verifies two or three
# attestations of one agent within seconds): 256 keys are about 0.5 MB, and rebuilding one costs
# about 16 µs plus a slower first verification.
@functools.lru_cache(maxsize=256)
def _key_from_point(point: bytes) -> VerificationKey:
    return VerificationKey(ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point))


def _invalid(message: str, **details: object) -> ATHError:
    return ATHError(
        ErrorCode.INVALID_ATTESTATION,
        f"identity document: {message}",
        details={"reason": "identity_document_invalid", **details},
    )


def parse_identity_document(agent_id: str, data: dict[str, object]) -> IdentityDocument:
    """Validate fetched JSON as the identity document of ``agent_id``."""
    try:
        document = IdentityDocument.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "document"
        raise _invalid(f"field {field!r}: {first['msg']}", field=field) from None
    # The document must claim the very URL it was fetched from, or any host could vouch for
    # any agent by serving another agent's document.
    if document.agent_id != agent_id:
        raise _invalid(
            f"its agent_id {document.agent_id!r} is not the URL it was fetched from ({agent_id!r})",
            field="agent_id",
        )
    return document


class IdentityCache:
    """Looks up agents' identity documents: cache first, then one coalesced fetch."""

    def __init__(
        self,
        fetcher: IdentityFetcher,
        *,
        clock: TimeSource = time.time,
        max_age: float = MAX_CACHE_SECONDS,
        max_bytes: int = MAX_CACHE_BYTES,
    ) -> None:
        self._fetcher = fetcher
        self._clock = clock
        self._max_age = min(max_age, MAX_CACHE_SECONDS)
        self._max_bytes = max_bytes
        self._bytes = 0
        self._entries: OrderedDict[str, AgentIdentity] = OrderedDict()
        self._inflight: dict[str, asyncio.Task[AgentIdentity]] = {}

    def cached(self, agent_id: str) -> AgentIdentity | None:
        """The cached, still fresh identity of ``agent_id``, if any."""
        entry = self._entries.get(agent_id)
        if entry is None:
            return None
        if entry.expires_at <= self._clock():
            self._drop(agent_id)
            return None
        return entry

    @property
    def cached_bytes(self) -> int:
        """What the cached entries cost, in bytes (approximately; at most ``max_bytes``)."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, agent_id: str, *, refresh: bool = False) -> AgentIdentity:
        """The identity of ``agent_id``; ``refresh`` bypasses the cache (key rotation)."""
        if not refresh:
            entry = self.cached(agent_id)
            if entry is not None:
                return entry
        task = self._inflight.get(agent_id)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._load(agent_id))
            self._inflight[agent_id] = task
            task.add_done_callback(lambda done: self._finished(agent_id, done))
        # shield: one caller giving up must not cancel the fetch the others are waiting on.
        return await asyncio.shield(task)

    def _finished(self, agent_id: str, task: asyncio.Task[AgentIdentity]) -> None:
        if self._inflight.get(agent_id) is task:
            del self._inflight[agent_id]
        if not task.cancelled():
            task.exception()  # retrieved here, so an abandoned failure is not reported twice

    async def _load(self, agent_id: str) -> AgentIdentity:
        fetched = await self._fetcher.fetch(agent_id)
        identity = self._prepare(agent_id, fetched)
        if identity.expires_at > identity.fetched_at:
            self._store(agent_id, identity)
        else:
            self._drop(agent_id)
        return identity

    def _prepare(self, agent_id: str, fetched: FetchedDocument) -> AgentIdentity:
        document = parse_identity_document(agent_id, fetched.data)
        try:
            key = VerificationKey(load_public_key(document.public_key))
        except ATHError as exc:
            raise _invalid(exc.message, field="public_key") from None
        now = self._clock()
        ttl = self._max_age if fetched.max_age is None else min(self._max_age, fetched.max_age)
        return AgentIdentity(
            document_json=document.model_dump_json().encode(),
            point=key.public_key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint),
            fetched_at=now,
            expires_at=now + ttl,
        )

    def _drop(self, agent_id: str) -> None:
        entry = self._entries.pop(agent_id, None)
        if entry is not None:
            self._bytes -= entry.size

    def _store(self, agent_id: str, identity: AgentIdentity) -> None:
        self._drop(agent_id)
        if identity.size > self._max_bytes:
            return
        self._entries[agent_id] = identity
        self._bytes += identity.size
        if self._bytes > self._max_bytes:
            now = self._clock()
            for stale in [k for k, v in self._entries.items() if v.expires_at <= now]:
                self._drop(stale)
            while self._bytes > self._max_bytes:
                oldest = next(iter(self._entries))
                self._drop(oldest)
