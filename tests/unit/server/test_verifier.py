"""AttestationVerifier end to end: real keys, real attestations, documents over real HTTP."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from athkit.protocol import (
    ATHError,
    Developer,
    ErrorCode,
    IdentityDocument,
    PrivateKey,
    create_attestation,
    generate_private_key,
    public_key_to_jwk,
    public_key_to_pem,
)
from athkit.server import (
    AttestationVerifier,
    FetchPolicy,
    ManualClock,
    MemoryReplayStore,
    SqlReplayStore,
    VerifiedAgent,
)
from athkit.storage import create_database
from athkit.testing import free_port
from tests.unit.server._verifier_support import (
    AUDIENCE,
    DocumentHost,
    FakeClock,
    Reply,
    agent_key,
    clock,
    document_host,
)

__all__ = ["agent_key", "clock", "document_host"]

DEV = FetchPolicy(allow_http=True, allow_loopback=True)


@pytest.fixture
async def verifier(clock: FakeClock) -> AsyncIterator[AttestationVerifier]:
    async with AttestationVerifier(
        replay_store=MemoryReplayStore(clock=clock), fetcher=DEV, clock=clock
    ) as v:
        yield v


def attest(
    key: PrivateKey,
    agent_id: str,
    clock: FakeClock,
    *,
    audience: str = AUDIENCE,
    capabilities: list[str] | None = None,
) -> str:
    return create_attestation(
        key, agent_id=agent_id, audience=audience, now=clock.now, capabilities=capabilities
    )


def reason(exc: pytest.ExceptionInfo[ATHError]) -> str:
    return str(exc.value.details.get("reason"))


async def test_valid_attestation_verifies(
    verifier: AttestationVerifier,
    document_host: DocumentHost,
    agent_key: PrivateKey,
    clock: FakeClock,
) -> None:
    agent_id = document_host.publish(agent_key)
    token = attest(agent_key, agent_id, clock, capabilities=["read"])
    agent = await verifier.verify(token, audience=AUDIENCE, expected_agent_id=agent_id)
    assert isinstance(agent, VerifiedAgent)
    assert agent.agent_id == agent_id
    assert agent.attestation.aud == AUDIENCE
    assert agent.attestation.capabilities == ("read",)
    assert agent.identity.name == "Test Agent"
    assert agent.identity.agent_id == agent_id
    assert document_host.hits[document_host.path_of(agent_id)] == 1


async def test_document_is_cached_for_five_minutes(
    verifier: AttestationVerifier,
    document_host: DocumentHost,
    agent_key: PrivateKey,
    clock: FakeClock,
) -> None:
    agent_id = document_host.publish(agent_key)
    path = document_host.path_of(agent_id)
    await verifier.verify(attest(agent_key, agent_id, clock), audience=AUDIENCE)
    clock.advance(299)
    await verifier.verify(attest(agent_key, agent_id, clock), audience=AUDIENCE)
    assert document_host.hits[path] == 1
    clock.advance(2)
    await verifier.verify(attest(agent_key, agent_id, clock), audience=AUDIENCE)
    assert document_host.hits[path] == 2


async def test_shorter_max_age_is_honoured_and_longer_is_capped(
    verifier: AttestationVerifier,
    document_host: DocumentHost,
    agent_key: PrivateKey,
    clock: FakeClock,
) -> None:
    short = document_host.publish(agent_key, cache_control="max-age=30")
    long = document_host.publish(agent_key, cache_control="public, max-age=86400")
    for agent_id in (short, long):
        await verifier.verify(attest(agent_key, agent_id, clock), audience=AUDIENCE)
    clock.advance(31)
    for agent_id in (short, long):
        await verifier.verify(attest(agent_key, agent_id, clock), audience=AUDIENCE)
    assert document_host.hits[document_host.path_of(short)] == 2
    assert document_host.hits[document_host.path_of(long)] == 1
    clock.advance(270)  # 301 s after the first fetch: past the 5-minute ceiling
    await verifier.verify(attest(agent_key, long, clock), audience=AUDIENCE)
    assert document_host.hits[document_host.path_of(long)] == 2


async def test_concurrent_lookups_share_one_fetch(
    verifier: AttestationVerifier,
    document_host: DocumentHost,
    agent_key: PrivateKey,
    clock: FakeClock,
) -> None:
    agent_id = document_host.publish(agent_key)
    path = document_host.path_of(agent_id)
    document_host.replies[path].delay = 0.2
    tokens = [attest(agent_key, agent_id, clock) for _ in range(10)]
    agents = await asyncio.gather(*(verifier.verify(t, audience=AUDIENCE) for t in tokens))
    assert len({a.attestation.jti for a in agents}) == 10
    assert document_host.hits[path] == 1


async def test_key_rotation_refetches_once_per_minute(
    verifier: AttestationVerifier, document_host: DocumentHost, clock: FakeClock
) -> None:
    old, new, newer = generate_private_key(), generate_private_key(), generate_private_key()
    agent_id = document_host.publish(old)
    path = document_host.path_of(agent_id)
    await verifier.verify(attest(old, agent_id, clock), audience=AUDIENCE)
    assert document_host.hits[path] == 1

    document_host.publish(new, path=path)  # the agent rotates its key
    agent = await verifier.verify(attest(new, agent_id, clock), audience=AUDIENCE)
    assert agent.agent_id == agent_id
    assert document_host.hits[path] == 2  # exactly one re-fetch

    clock.advance(30)
    document_host.publish(newer, path=path)  # rotates again within the minute
    with pytest.raises(ATHError) as exc:
        await verifier.verify(attest(newer, agent_id, clock), audience=AUDIENCE)
    assert reason(exc) == "bad_signature"
    assert document_host.hits[path] == 2  # no second re-fetch inside 60 s

    clock.advance(31)
    await verifier.verify(attest(newer, agent_id, clock), audience=AUDIENCE)
    assert document_host.hits[path] == 3


async def test_forged_signature_is_refused_after_one_refetch(
    verifier: AttestationVerifier,
    document_host: DocumentHost,
    agent_key: PrivateKey,
    clock: FakeClock,
) -> None:
    agent_id = document_host.publish(agent_key)
    path = document_host.path_of(agent_id)
    forger = generate_private_key()
    with pytest.raises(ATHError) as exc:
        await verifier.verify(attest(forger, agent_id, clock), audience=AUDIENCE)
    assert exc.value.code is ErrorCode.INVALID_ATTESTATION
    assert reason(exc) == "bad_signature"
    assert document_host.hits[path] == 2  # first fetch + the one rotation re-fetch


async def test_expired_and_wrong_audience_never_refetch(
    verifier: AttestationVerifier,
    document_host: DocumentHost,
    agent_key: PrivateKey,
    clock: FakeClock,
) -> None:
    agent_id = document_host.publish(agent_key)
    path = document_host.path_of(agent_id)
    expired = create_attestation(
        agent_key,
        agent_id=agent_id,
        audience=AUDIENCE,
        lifetime=timedelta(minutes=1),
        now=clock.now - 120,
    )
    with pytest.raises(ATHError) as exc:
        await verifier.verify(expired, audience=AUDIENCE)
    assert reason(exc) == "expired"
    with pytest.raises(ATHError) as exc:
        await verifier.verify(
            attest(agent_key, agent_id, clock, audience="https://other.test"), audience=AUDIENCE
        )
    assert reason(exc) == "wrong_audience"
    assert document_host.hits[path] == 1


async def test_replayed_jti_is_refused(
    verifier: AttestationVerifier,
    document_host: DocumentHost,
    agent_key: PrivateKey,
    clock: FakeClock,
) -> None:
    agent_id = document_host.publish(agent_key)
    token = attest(agent_key, agent_id, clock)
    await verifier.verify(token, audience=AUDIENCE)
    clock.advance(60)
    with pytest.raises(ATHError) as exc:
        await verifier.verify(token, audience=AUDIENCE)
    assert exc.value.code is ErrorCode.INVALID_ATTESTATION
    assert exc.value.status == 401
    assert reason(exc) == "replayed_jti"


async def test_sub_other_than_expected_agent_is_refused_before_fetching(
    verifier: AttestationVerifier,
    document_host: DocumentHost,
    agent_key: PrivateKey,
    clock: FakeClock,
) -> None:
    registered = document_host.publish(agent_key)
    attacker = document_host.publish(agent_key)
    with pytest.raises(ATHError) as exc:
        await verifier.verify(
            attest(agent_key, attacker, clock), audience=AUDIENCE, expected_agent_id=registered
        )
    assert exc.value.code is ErrorCode.AGENT_IDENTITY_MISMATCH
    assert document_host.hits[document_host.path_of(attacker)] == 0
    assert document_host.hits[document_host.path_of(registered)] == 0


async def test_document_claiming_another_agent_id_is_refused(
    verifier: AttestationVerifier,
    document_host: DocumentHost,
    agent_key: PrivateKey,
    clock: FakeClock,
) -> None:
    victim = f"{document_host.url}{document_host.new_path()}"
    impostor = document_host.publish(agent_key, agent_id=victim)
    with pytest.raises(ATHError) as exc:
        await verifier.verify(attest(agent_key, impostor, clock), audience=AUDIENCE)
    assert reason(exc) == "identity_document_invalid"
    assert exc.value.details["field"] == "agent_id"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"agent_id": "x"}', "name"),
        (b"[]", None),
    ],
)
async def test_malformed_documents_are_refused(
    verifier: AttestationVerifier,
    document_host: DocumentHost,
    agent_key: PrivateKey,
    clock: FakeClock,
    body: bytes,
    field: str | None,
) -> None:
    path = document_host.new_path()
    document_host.replies[path] = Reply(body=body)
    agent_id = document_host.url + path
    with pytest.raises(ATHError) as exc:
        await verifier.verify(attest(agent_key, agent_id, clock), audience=AUDIENCE)
    assert reason(exc) == "identity_document_invalid"
    if field is not None:
        assert exc.value.details["field"] in (field, "agent_id", "developer")


async def test_document_with_a_non_p256_key_is_refused(
    verifier: AttestationVerifier,
    document_host: DocumentHost,
    agent_key: PrivateKey,
    clock: FakeClock,
) -> None:
    agent_id = document_host.publish(agent_key)
    path = document_host.path_of(agent_id)
    document = json.loads(document_host.replies[path].body)
    document["public_key"] = {"kty": "RSA", "n": "AQAB", "e": "AQAB"}
    document_host.replies[path] = Reply(body=json.dumps(document).encode())
    with pytest.raises(ATHError) as exc:
        await verifier.verify(attest(agent_key, agent_id, clock), audience=AUDIENCE)
    assert reason(exc) == "identity_document_invalid"
    assert exc.value.details["field"] == "public_key"


async def test_default_policy_refuses_a_loopback_agent_without_connecting(
    document_host: DocumentHost, agent_key: PrivateKey, clock: FakeClock
) -> None:
    agent_id = document_host.publish(agent_key)
    async with AttestationVerifier(
        replay_store=MemoryReplayStore(clock=clock), clock=clock
    ) as production:
        for candidate in (agent_id, agent_id.replace("http://", "https://")):
            with pytest.raises(ATHError) as exc:
                await production.verify(attest(agent_key, candidate, clock), audience=AUDIENCE)
            assert reason(exc) == "identity_fetch_refused"
    assert document_host.hits[document_host.path_of(agent_id)] == 0


async def test_garbage_tokens_are_refused_without_fetching(
    verifier: AttestationVerifier,
) -> None:
    for token in ("", "a.b", "not.a.jwt", "eyJhbGciOiJFUzI1NiJ9.e30.sig"):
        with pytest.raises(ATHError) as exc:
            await verifier.verify(token, audience=AUDIENCE)
        assert exc.value.code is ErrorCode.INVALID_ATTESTATION


async def test_trusted_keys_skip_the_fetch_and_warn(
    document_host: DocumentHost,
    agent_key: PrivateKey,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    agent_id = f"{document_host.url}{document_host.new_path()}"
    with caplog.at_level(logging.WARNING, logger="athkit.server.verifier"):
        verifier = AttestationVerifier(
            replay_store=MemoryReplayStore(clock=clock),
            fetcher=DEV,
            clock=clock,
            trusted_keys={agent_id: public_key_to_pem(agent_key)},
        )
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "attestation fetch skipped for" in warnings[0].getMessage()
    assert agent_id in warnings[0].getMessage()
    assert "development only" in warnings[0].getMessage()
    async with verifier:
        agent = await verifier.verify(attest(agent_key, agent_id, clock), audience=AUDIENCE)
        assert agent.identity.agent_id == agent_id
        assert agent.identity.developer.id == "development"
        # Still a real check: another key is refused, and replays still are.
        with pytest.raises(ATHError) as exc:
            await verifier.verify(
                attest(generate_private_key(), agent_id, clock), audience=AUDIENCE
            )
        assert reason(exc) == "bad_signature"
    assert document_host.hits[document_host.path_of(agent_id)] == 0


async def test_no_warning_without_trusted_keys(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="athkit.server.verifier"):
        async with AttestationVerifier(replay_store=MemoryReplayStore(clock=clock)):
            pass
    assert not caplog.records


async def test_unreachable_replay_store_fails_closed(
    document_host: DocumentHost, agent_key: PrivateKey, clock: FakeClock
) -> None:
    engine = create_database(f"postgresql://postgres@127.0.0.1:{free_port()}/test")
    try:
        async with AttestationVerifier(
            replay_store=SqlReplayStore(engine, clock=clock), fetcher=DEV, clock=clock
        ) as verifier:
            agent_id = document_host.publish(agent_key)
            with pytest.raises(ATHError) as exc:
                await verifier.verify(attest(agent_key, agent_id, clock), audience=AUDIENCE)
        assert exc.value.code is ErrorCode.INTERNAL_ERROR
        assert exc.value.status == 503  # a backing service is down: retry later
    finally:
        await engine.dispose()


async def test_trusted_identity_document_and_engine_clock(
    document_host: DocumentHost, agent_key: PrivateKey
) -> None:
    # The engine's clocks have now(); the verifier takes those as well as plain callables.
    engine_clock = ManualClock(1_900_000_000)
    agent_id = f"{document_host.url}{document_host.new_path()}"
    document = IdentityDocument(
        agent_id=agent_id,
        name="Configured Agent",
        developer=Developer(name="Dev", id="dev-9"),
        public_key=public_key_to_jwk(agent_key),
    )
    async with AttestationVerifier(
        replay_store=MemoryReplayStore(clock=engine_clock),
        fetcher=DEV,
        clock=engine_clock,
        trusted_keys={agent_id: document},
    ) as verifier:
        token = create_attestation(
            agent_key, agent_id=agent_id, audience=AUDIENCE, now=engine_clock.now()
        )
        agent = await verifier.verify(token, audience=AUDIENCE)
        assert agent.identity.name == "Configured Agent"
        engine_clock.advance(600)  # the verifier reads this clock: the attestation is now stale
        stale = create_attestation(
            agent_key, agent_id=agent_id, audience=AUDIENCE, now=1_900_000_000
        )
        with pytest.raises(ATHError) as exc:
            await verifier.verify(stale, audience=AUDIENCE)
        assert reason(exc) == "expired"


@pytest.mark.parametrize(
    ("spelling", "problem"),
    [
        ("{base}/../{path}", "dot_segment"),
        ("{base}//{path}", "empty_segment"),
        ("{base}/{path}#me", "fragment"),
        ("HTTP://127.0.0.1:{port}{rest}", "not_canonical"),
    ],
)
async def test_a_non_canonical_agent_id_is_refused_before_fetching(
    verifier: AttestationVerifier,
    document_host: DocumentHost,
    agent_key: PrivateKey,
    clock: FakeClock,
    spelling: str,
    problem: str,
) -> None:
    # ATH §2: only the canonical form of an agent_id is an identity.
    agent_id = document_host.publish(agent_key)
    base, _, path = agent_id.rpartition("/")
    port, _, rest = agent_id.split(":")[2].partition("/")
    other = spelling.format(base=base, path=path, port=port, rest="/" + rest)
    with pytest.raises(ATHError) as exc:
        await verifier.verify(attest(agent_key, other, clock), audience=AUDIENCE)
    assert exc.value.code is ErrorCode.INVALID_ATTESTATION
    assert exc.value.details["reason"] == "agent_id_not_canonical"
    assert exc.value.details["problem"] == problem
    assert document_host.hits[document_host.path_of(agent_id)] == 0
    if problem == "not_canonical":
        assert exc.value.details["canonical"] == agent_id
        # The canonical spelling of the same agent verifies.
        found = await verifier.verify(attest(agent_key, agent_id, clock), audience=AUDIENCE)
        assert found.agent_id == agent_id
