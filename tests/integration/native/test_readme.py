"""The README's native-mode section runs as written."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docs import python_blocks


def test_native_mode_readme_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the example's sqlite:///ath.db lands here
    blocks = python_blocks("Adopt ATH in your service (native mode)")
    assert len(blocks) == 2
    namespace: dict[str, object] = {}
    for block in blocks:
        exec(compile(block, "README.md#native-mode", "exec"), namespace)  # noqa: S102
    assert (tmp_path / "ath.db").exists()
