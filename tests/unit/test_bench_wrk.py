"""Keeps the HTTP benchmarks' plumbing (bench/_wrk.py) working: nginx as the neutral upstream,
wrk's report parsed, refusals counted as errors, CPU read from /proc. One second of load."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

from athkit.testing import free_port

BENCH = Path(__file__).resolve().parents[2] / "bench" / "_wrk.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_wrk", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _tools_or_skip() -> None:
    missing = [t for t in ("wrk", "nginx") if not shutil.which(t, path="/usr/bin:/usr/sbin")]
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"{missing} missing: .ci/run installs them (bench/setup.sh too)")
        pytest.skip(f"{missing} not installed (bash bench/setup.sh)")


def test_wrk_against_nginx_counts_answers_and_refusals(tmp_path: Path) -> None:
    _tools_or_skip()
    wrk = _load()
    port = free_port()
    body = b'{"ok":true}'
    with wrk.nginx_upstream(tmp_path, port, {"/api/thing": body}) as nginx_pid:
        url = f"http://127.0.0.1:{port}/api/thing"
        before = wrk.cpu_seconds(wrk.process_tree(nginx_pid))
        good = wrk.run_wrk(
            url,
            {"Authorization": "Bearer x"},
            duration=1,
            connections=4,
            threads=1,
            workdir=tmp_path,
        )
        assert good["requests"] > 0 and good["errors"] == 0
        assert 0 < good["p50_ms"] <= good["p99_ms"] <= good["max_ms"]
        assert wrk.cpu_seconds(wrk.process_tree(nginx_pid)) > before
        # Without a bearer token the upstream answers 401: wrk's non-2xx, never a success.
        refused = wrk.run_wrk(url, {}, duration=1, connections=4, threads=1, workdir=tmp_path)
        assert refused["requests"] == 0
        assert refused["error_kinds"]["non2xx"] > 0


def test_lag_file_maximum_is_taken_within_the_window(tmp_path: Path) -> None:
    wrk = _load()
    lag = tmp_path / "lag"
    lag.write_text(
        '{"t": 100.0, "max_ms": 5.0, "gc_ms": [0.1, 0.2, 0.0]}\n'
        '{"t": 105.0, "max_ms": 40.0, "gc_ms": [0.1, 0.2, 30.0]}\n'
        '{"t": 200.0, "max_ms": 900.0, "gc_ms": [0.0, 0.0, 800.0]}\n'
    )
    assert wrk.max_lag_ms(lag, 99.0, 110.0) == (40.0, 30.0)
    assert wrk.max_lag_ms(tmp_path / "missing", 0, 1) == (0.0, 0.0)
