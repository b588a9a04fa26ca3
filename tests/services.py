"""Real backing services for tests: a fresh PostgreSQL database on 127.0.0.1:5432, the shared
Redis on 127.0.0.1:6379 under a key prefix of the test's own, and a Redis server process of the
test's own (its own port, no persistence) for fault and restart tests.

Unreachable services skip the test, unless ``ATH_REQUIRE_SERVICES=1`` (CI), which fails it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from athkit.testing import free_port

PG_ROOT = "postgresql://postgres@127.0.0.1:5432"
SHARED_REDIS = "redis://127.0.0.1:6379/0"


def require(port: int, name: str) -> None:
    """Skip (or fail under ATH_REQUIRE_SERVICES=1) unless something listens on ``port``."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        if os.environ.get("ATH_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{name} on 127.0.0.1:{port} is required (ATH_REQUIRE_SERVICES=1)")
        pytest.skip(f"{name} is not running on 127.0.0.1:{port}")


def _psql(sql: str) -> None:
    import asyncio

    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(f"{PG_ROOT}/test", timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


@contextlib.contextmanager
def fresh_postgres_database(label: str = "ath") -> Iterator[str]:
    """A new, empty PostgreSQL database for this test run (dropped after); yields its URL."""
    require(5432, "PostgreSQL")
    name = f"{label}_{secrets.token_hex(6)}"
    _psql(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_ROOT}/{name}"
    finally:
        _psql(f'DROP DATABASE "{name}" WITH (FORCE)')


def redis_prefix() -> str:
    """A key prefix no other test run uses on the shared Redis."""
    require(6379, "Redis")
    return f"athkit-test:{secrets.token_hex(6)}"


class OwnRedis:
    """A ``redis-server`` process of the test's own on a free loopback port, no persistence.

    ``stop()`` kills it (its memory is gone), ``start()`` starts a fresh one on the same port,
    ``pause()``/``resume()`` freeze it (SIGSTOP/SIGCONT) as a hung server would be.
    """

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            if os.environ.get("ATH_REQUIRE_SERVICES") == "1":
                pytest.fail("redis-server is not installed (.ci/run installs it)")
            pytest.skip("redis-server is not installed")
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server and wait (at most 10 s) until it accepts connections."""
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--appendonly", "no", "--dir", str(self.workdir)]
        self.process = subprocess.Popen(
            [self.binary, *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)

    def stop(self) -> None:
        """Kill the server (SIGKILL: whatever it held in memory is lost)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None

    def __enter__(self) -> OwnRedis:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
