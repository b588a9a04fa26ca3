"""Two gateway processes on one PostgreSQL database and one Redis; one is SIGKILLed while clients
stream handshakes through both. Every token a client received still works on the survivor, and
no security audit event of a request that completed (the client got its answer) is missing."""

from __future__ import annotations

import itertools
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from tests.integration.scale.harness import Registration, ScaleWorld, scale_world
from tests.services import SHARED_REDIS, fresh_postgres_database, redis_prefix

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

CLIENTS = 4


@pytest.fixture
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScaleWorld]:
    with (
        fresh_postgres_database("ath_crash") as database,
        scale_world(
            tmp_path_factory.mktemp("crash"),
            database_url=database,
            redis_url=SHARED_REDIS,
            rate_prefix=redis_prefix(),
        ) as running,
    ):
        running.start("a", "b")
        yield running


@dataclass
class Completed:
    """What the clients saw answered: (event, agent_id) pairs the audit trail must hold, and
    the tokens they were given (revoked ones apart)."""

    events: list[tuple[str, str]] = field(default_factory=list)
    tokens: list[tuple[str, str]] = field(default_factory=list)  # (token, agent_id)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def saw(self, event: str, agent_id: str) -> None:
        with self.lock:
            self.events.append((event, agent_id))


def _handshakes(world: ScaleWorld, done: Completed, stop: threading.Event, seed: int) -> None:
    """Register, get a token, be refused a scope, sometimes revoke — each step on an instance
    chosen in turn, A or B; a step B cannot answer (dead) ends that round."""
    turn = itertools.cycle(["a", "b"] if seed % 2 else ["b", "a"])
    with httpx.Client(timeout=10) as http:
        for round_no in itertools.count():
            if stop.is_set():
                return
            try:
                _one_round(world, http, done, turn, round_no)
            except httpx.TransportError:
                continue  # the instance died under this request: it did not complete


def _one_round(
    world: ScaleWorld,
    http: httpx.Client,
    done: Completed,
    turn: Iterator[str],
    round_no: int,
) -> None:
    agent = world.new_agent(f"crash-{secrets.token_hex(4)}")
    if round_no % 4 == 3:  # a registration the policy denies (mail:delete is "never")
        r = http.post(
            f"{world.url(next(turn))}/ath/agents/register",
            json=world.register_request(agent, ["mail:delete"]),
        )
        assert r.status_code in (201, 403), r.text
        done.saw("agent_registration_denied", agent.agent_id)
        return
    r = http.post(
        f"{world.url(next(turn))}/ath/agents/register",
        json=world.register_request(agent, ["mail:read"]),
    )
    assert r.status_code == 201, r.text
    done.saw("agent_registered", agent.agent_id)
    reg = Registration(agent, r.json()["client_id"], r.json()["client_secret"])

    refused = http.post(
        f"{world.url(next(turn))}/ath/authorize", json=world.authorize_request(reg, ["mail:send"])
    )
    assert refused.status_code == 403, refused.text
    done.saw("access_denied", agent.agent_id)

    started = http.post(
        f"{world.url(next(turn))}/ath/authorize", json=world.authorize_request(reg, ["mail:read"])
    )
    assert started.status_code == 200, started.text
    session = started.json()
    code = world.consent(session, callback_on=next(turn))
    issued = http.post(
        f"{world.url(next(turn))}/ath/token",
        json=world.token_request(reg, session["ath_session_id"], code),
    )
    assert issued.status_code == 200, issued.text
    done.saw("access_granted", agent.agent_id)
    token = issued.json()["access_token"]
    if round_no % 2 == 1:
        revoked = http.post(
            f"{world.url(next(turn))}/ath/revoke",
            json={"client_id": reg.client_id, "client_secret": reg.client_secret, "token": token},
        )
        assert revoked.status_code == 200, revoked.text
        done.saw("token_revoked", agent.agent_id)
    else:
        with done.lock:
            done.tokens.append((token, agent.agent_id))


def test_sigkill_during_handshakes_loses_no_token_and_no_security_event(world: ScaleWorld) -> None:
    done = Completed()
    stop = threading.Event()
    errors: list[BaseException] = []

    def client(seed: int) -> None:
        try:
            _handshakes(world, done, stop, seed)
        except BaseException as exc:  # an unexpected answer fails the test below
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 60
        while len(done.tokens) < 4 and time.monotonic() < deadline and not errors:
            time.sleep(0.05)
        b = world.instances["b"].process
        assert b is not None
        b.kill()  # SIGKILL: no shutdown, no flush
        b.wait(10)
        before_kill = len(done.events)
        # Keep the stream going on the survivor for a while.
        while len(done.events) < before_kill + 12 and time.monotonic() < deadline and not errors:
            time.sleep(0.05)
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    assert not errors, errors[0]
    print(f"\n{len(done.events)} events ({before_kill} before the kill), {len(done.tokens)} tokens")
    assert len(done.tokens) >= 4 and len(done.events) >= before_kill + 12

    # Every token a client received works on the survivor.
    for token, agent_id in done.tokens:
        answer = world.http.get(
            f"{world.url('a')}/ath/proxy/mail/messages",
            headers={"Authorization": f"Bearer {token}", "X-ATH-Agent-ID": agent_id},
        )
        assert answer.status_code == 200, answer.text

    # Every security event of a completed request is in the audit trail.
    for event, agent_id in done.events:
        found = world.audit("a", event=event, agent_id=agent_id)
        assert found, f"missing {event} for {agent_id}"
