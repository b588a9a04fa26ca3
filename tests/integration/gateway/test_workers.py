"""``ath gateway serve --workers N``: N processes on one port sharing the stores, and a refusal
when the configuration would let a per-process state loosen a check."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from athkit.cli import app as cli_app
from athkit.testing import free_port
from tests.integration.gateway.test_readme import ROOT, example_env

CONFIG = str(ROOT / "examples" / "gateway.toml")


def _env(tmp_path: Path, port: int, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        **example_env(tmp_path),
        "ATH_GATEWAY__LISTEN": f"127.0.0.1:{port}",
        "ATH_GATEWAY__DATABASE_URL": f"sqlite:///{tmp_path}/gateway.db",
        "ATH_GATEWAY__PROVIDERS__MAIL__AUTHORIZATION_ENDPOINT": "http://127.0.0.1:9/authorize",
        "ATH_GATEWAY__PROVIDERS__MAIL__TOKEN_ENDPOINT": "http://127.0.0.1:9/token",
        **extra,
    }


def _workers(pid: int) -> set[int]:
    """The worker processes (multiprocessing spawns) whose parent is ``pid``."""
    kids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if int(stat[1]) == pid and b"spawn_main" in cmdline:
                kids.add(int(entry.name))
    return kids


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _redis_or_skip() -> None:
    import redis

    try:
        redis.Redis(host="127.0.0.1", port=6379, socket_timeout=2).ping()
    except Exception as exc:
        if os.environ.get("ATH_REQUIRE_SERVICES") == "1":
            raise
        pytest.skip(f"Redis not reachable on 127.0.0.1:6379: {exc}")


@pytest.mark.redis
def test_two_workers_serve_one_port_and_stop_together(tmp_path: Path) -> None:
    _redis_or_skip()
    port = free_port()
    env = _env(
        tmp_path,
        port,
        ATH_GATEWAY__REDIS_URL="redis://127.0.0.1:6379/0",
        ATH_GATEWAY__RATE_LIMIT__BACKEND="redis",
        ATH_GATEWAY__RATE_LIMIT__KEY_PREFIX=f"athkit-test-{secrets.token_hex(4)}",
    )
    ath = str(Path(sys.executable).with_name("ath"))
    proc = subprocess.Popen(
        [ath, "gateway", "serve", "--config", CONFIG, "--workers", "2"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        workers: set[int] = set()
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    workers = _workers(proc.pid)
                    if len(workers) >= 2:
                        break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            assert time.monotonic() < deadline, "ath gateway serve --workers 2 did not start"
            time.sleep(0.2)
        # Every fresh connection is answered, by whichever worker accepts it.
        for _ in range(10):
            with httpx.Client(timeout=5) as client:
                ready = client.get(f"http://127.0.0.1:{port}/readyz")
            assert ready.status_code == 200, ready.text
            assert ready.json()["checks"]["rate_limiter"] == "ok"
    finally:
        proc.send_signal(signal.SIGINT)
        output = proc.communicate(timeout=30)[0].decode()
    assert len(workers) >= 2, output
    assert "starting 2 worker processes" in output
    deadline = time.monotonic() + 15
    while not all(_gone(pid) for pid in workers):
        assert time.monotonic() < deadline, "the workers outlived ath gateway serve"
        time.sleep(0.1)


def test_several_workers_need_shared_rate_limits(tmp_path: Path) -> None:
    env = _env(tmp_path, free_port())
    env.pop("ATH_GATEWAY__REDIS_URL", None)
    result = CliRunner().invoke(
        cli_app, ["gateway", "serve", "--config", CONFIG, "--workers", "2"], env=env
    )
    assert result.exit_code == 2, result.output
    assert "needs shared rate-limit counters" in result.output
    assert "redis_url" in result.output


def test_several_workers_need_a_shared_database(tmp_path: Path) -> None:
    env = _env(
        tmp_path,
        free_port(),
        ATH_GATEWAY__DATABASE_URL="memory://",
        ATH_GATEWAY__REDIS_URL="redis://127.0.0.1:6379/0",
    )
    result = CliRunner().invoke(
        cli_app, ["gateway", "serve", "--config", CONFIG, "--workers", "3"], env=env
    )
    assert result.exit_code == 2, result.output
    assert "needs a database the workers share" in result.output
