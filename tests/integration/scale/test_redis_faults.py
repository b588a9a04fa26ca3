"""A gateway on PostgreSQL and a Redis server of the test's own (its own port and process):
Redis restarts and forgets everything, is killed mid-load, hangs — and the gateway keeps its
guarantees: a replay stays refused, faults answer 503 naming Redis within the configured
timeout, and it recovers by itself when Redis is back."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.integration.scale.harness import ScaleWorld, scale_world
from tests.services import OwnRedis, fresh_postgres_database, redis_prefix

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnRedis]:
    redis_prefix()  # skips (or fails under ATH_REQUIRE_SERVICES=1) without Redis installed
    with OwnRedis(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, redis: OwnRedis) -> Iterator[ScaleWorld]:
    with (
        fresh_postgres_database("ath_fault") as database,
        scale_world(
            tmp_path_factory.mktemp("fault"),
            database_url=database,
            redis_url=redis.url,
            rate_prefix="athkit-fault",
            extra={"redis_timeout_seconds": 1},
        ) as running,
    ):
        running.start("a")
        yield running


def _ensure_running(redis: OwnRedis, world: ScaleWorld) -> None:
    if redis.process is None:
        redis.start()
    deadline = time.monotonic() + 15
    while httpx.get(f"{world.url('a')}/readyz", timeout=5).status_code != 200:
        assert time.monotonic() < deadline, "the gateway did not become ready again"
        time.sleep(0.1)


def test_a_replay_is_refused_after_redis_restarts_empty(world: ScaleWorld, redis: OwnRedis) -> None:
    _ensure_running(redis, world)
    reg = world.register("a", world.new_agent(), ["mail:read"])
    body = world.authorize_request(reg, ["mail:read"])
    assert world.http.post(f"{world.url('a')}/ath/authorize", json=body).status_code == 200

    redis.stop()  # SIGKILL, no persistence: every jti Redis held is gone
    redis.start()
    _ensure_running(redis, world)

    replayed = world.http.post(f"{world.url('a')}/ath/authorize", json=body)
    assert replayed.status_code == 401, replayed.text
    assert replayed.json()["details"]["reason"] == "replayed_jti"
    # A fresh attestation still works: the store is back and empty, not stuck.
    fresh = world.http.post(
        f"{world.url('a')}/ath/authorize", json=world.authorize_request(reg, ["mail:read"])
    )
    assert fresh.status_code == 200, fresh.text


def test_redis_killed_mid_load_answers_503_naming_redis_then_recovers(
    world: ScaleWorld, redis: OwnRedis
) -> None:
    _ensure_running(redis, world)
    reg = world.register("a", world.new_agent(), ["mail:read"])
    token = world.connect(reg, authorize_on="a", callback_on="a", token_on="a")
    answers: list[tuple[int, str]] = []
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(timeout=10) as http:
            while not stop.is_set():
                proxied = http.get(
                    f"{world.url('a')}/ath/proxy/mail/messages",
                    headers={
                        "Authorization": f"Bearer {token}",
                        "X-ATH-Agent-ID": reg.agent.agent_id,
                    },
                )
                answers.append((proxied.status_code, proxied.text))
                handshake = http.post(
                    f"{world.url('a')}/ath/authorize",
                    json=world.authorize_request(reg, ["mail:read"]),
                )
                answers.append((handshake.status_code, handshake.text))

    worker = threading.Thread(target=load)
    worker.start()
    try:
        _wait_for(lambda: len(answers) >= 6)
        redis.stop()
        down_from = len(answers)
        _wait_for(lambda: sum(1 for s, _ in answers[down_from:] if s == 503) >= 4)
        redis.start()
        up_from = len(answers)
        _wait_for(lambda: sum(1 for s, _ in answers[up_from:] if s == 200) >= 4)
    finally:
        stop.set()
        worker.join(30)

    statuses = {status for status, _ in answers}
    assert statuses <= {200, 503}, statuses  # never a 500, never a pass without the checks
    refusals = [text for status, text in answers if status == 503]
    assert all('"code":"INTERNAL_ERROR"' in t.replace(" ", "") for t in refusals)
    assert all("Redis" in t for t in refusals), refusals[:3]
    assert any("rate-limit counters" in t for t in refusals)  # proxy calls
    assert any("attestation replay store" in t for t in refusals)  # handshake steps
    assert all("Traceback" not in t for t in refusals)
    assert answers[-1][0] == 200 or answers[-2][0] == 200  # recovered by itself


def test_a_hung_redis_is_refused_within_its_timeout(world: ScaleWorld, redis: OwnRedis) -> None:
    _ensure_running(redis, world)
    reg = world.register("a", world.new_agent(), ["mail:read"])
    token = world.connect(reg, authorize_on="a", callback_on="a", token_on="a")
    assert redis.process is not None
    redis.process.send_signal(signal.SIGSTOP)  #: the server holds connections, answers nothing
    try:
        started = time.monotonic()
        proxied = world.call("a", token, reg.agent)
        waited = time.monotonic() - started
        assert proxied.status_code == 503 and "Redis" in proxied.json()["message"]
        # redis_timeout_seconds = 1; generous bound for a loaded machine, far below 5 s.
        assert waited < 4, waited
        ready = httpx.get(f"{world.url('a')}/readyz", timeout=10)
        assert ready.status_code == 503 and ready.json()["checks"]["redis"].startswith("failing")
    finally:
        redis.process.send_signal(signal.SIGCONT)
    _ensure_running(redis, world)
    assert world.call("a", token, reg.agent).status_code == 200


def _wait_for(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
