"""Keeps bench/verifier.py runnable: every contender, a few iterations, no timing asserted."""

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[3] / "bench" / "verifier.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_verifier", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_bench_runs_every_contender(capsys: pytest.CaptureFixture[str]) -> None:
    bench = _load()
    bench.main(["--rounds", "1", "--iterations", "4"])
    out = capsys.readouterr().out
    assert "bare verify_attestation" in out
    assert "verifier + memory replay" in out
    assert "verifier + SQLite replay" in out
