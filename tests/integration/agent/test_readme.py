"""The README's "Build an agent" examples, run as written against a native service."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs import code_blocks, python_blocks
from tests.integration.agent.conftest import PRODUCTS, NativeStack


def test_python_example_runs_as_written(
    native: NativeStack, browser_env: dict[str, str], tmp_path: Path
) -> None:
    (block,) = python_blocks("Build an agent")
    script = tmp_path / "agent.py"
    script.write_text(block)
    run = subprocess.run(
        [sys.executable, str(script)],
        env={**browser_env, "ATH_SERVICE": native.url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == "connected to Test Shop in native mode"
    assert lines[1] == "approved: ['products:read', 'cart:write']"
    assert lines[2] == "effective scopes: ['products:read']"
    assert lines[3] == f"API answered 200 {{'products': {PRODUCTS!r}}}"


def test_cli_example_runs_as_written(native: NativeStack, browser_env: dict[str, str]) -> None:
    (block,) = code_blocks("The `ath` command line", "bash")
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", 8765)) == 0:
            pytest.fail("port 8765, used by the README example, is taken")
    bin_dir = str(Path(sys.executable).parent)
    env = {**browser_env, "ATH_SERVICE": native.url, "PATH": f"{bin_dir}:{browser_env['PATH']}"}
    run = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr}"
    assert "Authorized for shop: products:read" in run.stdout
    assert '"name": "Teapot"' in run.stdout  # the API's answer
    assert "Token revoked" in run.stdout
    assert "Traceback" not in run.stderr
