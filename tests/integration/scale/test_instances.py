"""Three ``ath gateway serve`` processes on one PostgreSQL database and one Redis: one truth.

They start at the same moment on a fresh database (migrations under a database lock), then a
handshake runs across them (authorize on A, callback on B, token on C), a replayed attestation,
a revocation, a suspension and a rate limit each cross from one instance to the others.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.integration.scale.harness import ScaleWorld, scale_world
from tests.services import SHARED_REDIS, fresh_postgres_database, redis_prefix

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScaleWorld]:
    prefix = redis_prefix()
    with (
        fresh_postgres_database("ath_scale") as database,
        scale_world(
            tmp_path_factory.mktemp("scale"),
            database_url=database,
            redis_url=SHARED_REDIS,
            rate_prefix=prefix,
        ) as running,
    ):
        # All three at once on an empty database: each migrates, under the lock.
        running.start("a", "b", "c")
        yield running


def test_three_replicas_started_together_on_a_fresh_database_are_all_ready(
    world: ScaleWorld,
) -> None:
    for name in ("a", "b", "c"):
        ready = httpx.get(f"{world.url(name)}/readyz", timeout=5)
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {
            "database": "ok",
            "redis": "ok",
            "rate_limiter": "ok",
            "audit": "ok",
        }


def test_a_handshake_across_three_instances(world: ScaleWorld) -> None:
    reg = world.register("a", world.new_agent(), ["mail:read"])
    session = world.authorize("a", reg, ["mail:read"])
    code = world.consent(session, callback_on="b")
    issued = world.exchange("c", reg, session["ath_session_id"], code)
    assert issued["effective_scopes"] == ["mail:read"]
    for name in ("a", "b", "c"):
        answer = world.call(name, issued["access_token"], reg.agent)
        assert answer.status_code == 200, answer.text
        assert answer.json()["service"] == "upstream"


def test_an_attestation_seen_by_one_instance_is_refused_by_the_others(world: ScaleWorld) -> None:
    reg = world.register("b", world.new_agent(), ["mail:read"])
    body = world.authorize_request(reg, ["mail:read"])
    first = world.http.post(f"{world.url('a')}/ath/authorize", json=body)
    assert first.status_code == 200, first.text
    for name in ("b", "c"):
        replayed = world.http.post(f"{world.url(name)}/ath/authorize", json=body)
        assert replayed.status_code == 401, replayed.text
        assert replayed.json()["code"] == "INVALID_ATTESTATION"
        assert replayed.json()["details"]["reason"] == "replayed_jti"


def test_a_token_revoked_on_b_is_refused_on_a_and_c_at_once(world: ScaleWorld) -> None:
    reg = world.register("c", world.new_agent(), ["mail:read"])
    token = world.connect(reg, authorize_on="c", callback_on="a", token_on="b")
    for name in ("a", "c"):  # in use (and in any cache) everywhere before the revocation
        assert world.call(name, token, reg.agent).status_code == 200
    assert world.revoke("b", reg, token).status_code == 200
    for name in ("a", "c"):
        refused = world.call(name, token, reg.agent)
        assert refused.status_code == 401, refused.text
        assert refused.json()["code"] == "TOKEN_REVOKED"


def test_an_agent_suspended_on_c_is_refused_on_a(world: ScaleWorld) -> None:
    reg = world.register("a", world.new_agent(), ["mail:read"])
    token = world.connect(reg, authorize_on="a", callback_on="b", token_on="c")
    assert world.call("a", token, reg.agent).status_code == 200
    suspended = world.admin("c", "POST", f"/agents/{reg.client_id}/suspend", json={})
    assert suspended.status_code == 200, suspended.text
    refused = world.call("a", token, reg.agent)
    assert refused.status_code == 401 and refused.json()["code"] == "TOKEN_REVOKED"
    again = world.http.post(
        f"{world.url('a')}/ath/authorize", json=world.authorize_request(reg, ["mail:read"])
    )
    assert again.status_code == 403 and again.json()["code"] == "AGENT_UNAPPROVED"


def test_an_operator_approval_on_one_instance_applies_on_the_others(world: ScaleWorld) -> None:
    # mail:send needs review: the registration waits for the operator.
    reg = world.register("a", world.new_agent(), ["mail:send"])
    pending = world.http.post(
        f"{world.url('b')}/ath/authorize", json=world.authorize_request(reg, ["mail:send"])
    )
    assert pending.status_code == 403 and pending.json()["code"] == "AGENT_UNAPPROVED"
    approved = world.admin("c", "POST", f"/agents/{reg.client_id}/approve", json={})
    assert approved.status_code == 200, approved.text
    started = world.http.post(
        f"{world.url('b')}/ath/authorize", json=world.authorize_request(reg, ["mail:send"])
    )
    assert started.status_code == 200, started.text


def test_a_rate_limit_counts_across_all_three_instances(world: ScaleWorld) -> None:
    # The "limited" agent may make 6 calls a minute, in all (gateway.toml, [rate_limit.agents]).
    reg = world.register("a", world.new_agent("limited"), ["mail:read"])
    token = world.connect(reg, authorize_on="a", callback_on="b", token_on="c")
    statuses = [world.call(name, token, reg.agent).status_code for name in "abcabc"]
    assert statuses == [200] * 6
    for name in ("a", "b", "c"):
        refused = world.call(name, token, reg.agent)
        assert refused.status_code == 429, refused.text
        assert refused.json()["code"] == "RATE_LIMITED"
