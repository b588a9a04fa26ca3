"""Full attestation verification rate (cache hit) against the bare signature check, in one run.

    .venv/bin/python bench/verifier.py [--rounds 5] [--iterations 1000]

What a server pays per handshake step once the agent's identity document is cached: the
unverified ``sub`` read, the cache lookup, ``verify_attestation`` and the jti replay check, with
each replay store. "bare" is ``verify_attestation`` alone with a prepared key, the floor. Every
call uses a fresh attestation (a new jti), signed before timing. The contenders take turns in
chunks of 100 calls within a round; figures are medians over rounds, ratios medians of the
per-round ratios to bare. The identity document is served once over real HTTP on 127.0.0.1;
Redis (127.0.0.1:6379) is included when it answers.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import socket
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from athkit.protocol import (
    PrivateKey,
    VerificationKey,
    create_attestation,
    generate_private_key,
    public_key_to_jwk,
    verify_attestation,
)
from athkit.server import (
    AttestationVerifier,
    FetchPolicy,
    MemoryReplayStore,
    RedisReplayStore,
    ReplayStore,
    SqlReplayStore,
    migrate_server_schema,
)
from athkit.storage import create_database
from athkit.testing import free_port, serve_in_thread

AUDIENCE = "https://service.example"
PATH = "/.well-known/agent.json"

Call = Callable[[str], Awaitable[object]]


def document_app(agent_id: str, key: PrivateKey) -> Starlette:
    """Serves one identity document."""
    body = json.dumps(
        {
            "ath_version": "0.1",
            "agent_id": agent_id,
            "name": "Bench Agent",
            "developer": {"name": "Bench", "id": "bench"},
            "public_key": public_key_to_jwk(key),
        }
    ).encode()

    async def serve(request: Request) -> Response:
        return Response(body, media_type="application/json")

    return Starlette(routes=[Route(PATH, serve)])


def redis_available() -> bool:
    """Whether Redis answers on 127.0.0.1:6379."""
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=0.5).close()
    except OSError:
        return False
    return True


async def measure(
    agent_id: str, key: PrivateKey, rounds: int, iterations: int, chunk: int = 100
) -> dict[str, list[float]]:
    """Verifications per second per contender, one figure per round."""
    prepared = VerificationKey(key.public_key())
    stores: dict[str, ReplayStore] = {"memory": MemoryReplayStore()}
    closers: list[Callable[[], Awaitable[None]]] = []
    tmp = tempfile.TemporaryDirectory()
    engine = create_database(f"sqlite:///{Path(tmp.name) / 'bench.db'}")
    await migrate_server_schema(engine)
    stores["SQLite"] = SqlReplayStore(engine)
    closers.append(engine.dispose)
    if redis_available():
        prefix = f"athkit-bench:{uuid.uuid4().hex}:"
        redis = RedisReplayStore.from_url("redis://127.0.0.1:6379/0", prefix=prefix)
        stores["Redis"] = redis
        closers.append(redis.aclose)
        closers.append(lambda: _delete_keys(prefix))
    policy = FetchPolicy(allow_http=True, allow_loopback=True)
    verifiers = {
        name: AttestationVerifier(replay_store=s, fetcher=policy) for name, s in stores.items()
    }
    calls: dict[str, Call] = {}

    async def bare(token: str) -> object:
        return verify_attestation(token, prepared, audience=AUDIENCE)

    calls["bare verify_attestation"] = bare
    for name, verifier in verifiers.items():

        async def full(token: str, verifier: AttestationVerifier = verifier) -> object:
            return await verifier.verify(token, audience=AUDIENCE, expected_agent_id=agent_id)

        calls[f"verifier + {name} replay"] = full
    try:
        for call in calls.values():  # warm up: the first verify fetches the document
            await call(create_attestation(key, agent_id=agent_id, audience=AUDIENCE))
        chunk = max(1, min(chunk, iterations))
        per_round = max(1, iterations // chunk) * chunk
        results: dict[str, list[float]] = {name: [] for name in calls}
        for _ in range(rounds):
            tokens = {
                name: [
                    create_attestation(key, agent_id=agent_id, audience=AUDIENCE)
                    for _ in range(per_round)
                ]
                for name in calls
            }
            spent = dict.fromkeys(calls, 0.0)
            for index in range(per_round // chunk):
                names = list(calls) if index % 2 == 0 else list(reversed(calls))
                for name in names:
                    batch = tokens[name][index * chunk : (index + 1) * chunk]
                    spent[name] += await _elapsed(calls[name], batch)
            for name in calls:
                results[name].append(per_round / spent[name])
        return results
    finally:
        for verifier in verifiers.values():
            await verifier.aclose()
        for close in closers:
            await close()
        tmp.cleanup()


async def _delete_keys(prefix: str) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url("redis://127.0.0.1:6379/0")
    try:
        keys = [k async for k in client.scan_iter(match=f"{prefix}*")]
        for start in range(0, len(keys), 500):
            await client.delete(*keys[start : start + 500])
    finally:
        await client.aclose()


async def _elapsed(call: Call, tokens: list[str]) -> float:
    gc.disable()
    try:
        start = time.perf_counter()
        for token in tokens:
            await call(token)
        return time.perf_counter() - start
    finally:
        gc.enable()


def report(results: dict[str, list[float]]) -> str:
    """Median rates and ratios to the bare check, one line per contender."""
    floor = results["bare verify_attestation"]
    lines = []
    for name, rates in results.items():
        ratio = statistics.median(r / b for r, b in zip(rates, floor, strict=True))
        lines.append(
            f"{name:28s} {statistics.median(rates):9.0f} verifications/s  {ratio:5.2f}x bare"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=1000)
    args = parser.parse_args(argv)
    key = generate_private_key()
    port = free_port()
    agent_id = f"http://127.0.0.1:{port}{PATH}"
    with serve_in_thread(document_app(agent_id, key), port=port):
        results = asyncio.run(measure(agent_id, key, args.rounds, args.iterations))
    print(f"{args.rounds} rounds x {args.iterations} verifications per contender (cache hits)")
    print(report(results))


if __name__ == "__main__":
    main()
