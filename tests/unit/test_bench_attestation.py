"""Keeps bench/attestation.py runnable: every contender, a handful of iterations, no timing."""

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "attestation.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_attestation", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def test_every_contender_verifies_the_same_token() -> None:
    bench = _load()
    setup = bench.prepare()
    for factory in bench.CONTENDERS.values():
        factory(setup)()
    assert bench.ours(setup)().sub == bench.AGENT_ID


def test_measure_and_report(capsys: pytest.CaptureFixture[str]) -> None:
    bench = _load()
    results = bench.measure(rounds=2, iterations=5, chunk=2)
    assert set(results) == set(bench.CONTENDERS)
    assert all(len(rates) == 2 and min(rates) > 0 for rates in results.values())
    bench.main(["--rounds", "1", "--iterations", "4"])
    out = capsys.readouterr().out
    assert "athkit verify_attestation" in out and "ours / raw = " in out
