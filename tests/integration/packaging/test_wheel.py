"""``python -m build`` makes a wheel and an sdist; the wheel, installed into a fresh virtual
environment away from the source tree, runs ``ath demo --json``; each optional extra pulls in
only what it names.

The fresh environment gets the wheel by ``pip install --no-deps`` and finds the dependencies in
this test environment's site-packages (a ``.pth`` line: directories named there are not site
directories, so the editable install of the source tree stays invisible). That keeps the test
offline and fast; which dependencies the wheel declares is checked from its metadata.
"""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    built = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    return out


def _one(dist: Path, pattern: str) -> Path:
    (found,) = dist.glob(pattern)
    return found


def test_wheel_and_sdist_hold_the_package(dist: Path) -> None:
    wheel = zipfile.ZipFile(_one(dist, "athkit-*-py3-none-any.whl"))
    names = set(wheel.namelist())
    for needed in (
        "athkit/py.typed",
        "athkit/pages/templates/athkit/base.html",
        "athkit/pages/templates/athkit/agents.html",
        "athkit/oauthserver/templates/consent.html",
        "athkit/demo/shop/static/shop.css",
        "athkit/demo/shop/catalogue.json",
    ):
        assert needed in names, needed
    assert not [n for n in names if n.startswith("tests/")]
    entry = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "ath = athkit.cli:main" in wheel.read(entry).decode()
    with tarfile.open(_one(dist, "athkit-*.tar.gz")) as sdist:
        members = {m.name.split("/", 1)[1] for m in sdist.getmembers() if "/" in m.name}
    assert {
        "pyproject.toml",
        "README.md",
        "src/athkit/__init__.py",
        "src/athkit/demo/shop/catalogue.json",
    } <= members


def test_extras_install_only_what_they_name(dist: Path) -> None:
    wheel = zipfile.ZipFile(_one(dist, "athkit-*-py3-none-any.whl"))
    metadata = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
    message = Parser().parsestr(wheel.read(metadata).decode())
    by_extra: dict[str, set[str]] = {}
    for requirement in message.get_all("Requires-Dist") or []:
        name = requirement.split(";")[0].split("[")[0].split(">")[0].split("<")[0].split("=")[0]
        extra = (
            requirement.split("extra ==")[1].strip().strip("'\"")
            if "extra ==" in requirement
            else ""
        )
        by_extra.setdefault(extra, set()).add(name.strip().lower())
    assert by_extra["postgres"] == {"asyncpg"}
    assert by_extra["redis"] == {"redis"}
    assert by_extra["mcp"] == {"mcp"}
    assert by_extra["langchain"] == {"langchain-core"}
    # The base install names no test tool and none of the extras' packages.
    assert not by_extra[""] & {"asyncpg", "redis", "mcp", "langchain-core", "pytest", "playwright"}


def test_installed_wheel_runs_the_demo_outside_the_source_tree(dist: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    deps = [p for p in site.getsitepackages() if "site-packages" in p]
    Path(purelib, "_athkit_test_deps.pth").write_text("\n".join(deps) + "\n")
    installed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "-q",
            str(_one(dist, "athkit-*-py3-none-any.whl")),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert installed.returncode == 0, installed.stderr
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    where = subprocess.run(
        [str(python), "-c", "import athkit; print(athkit.__file__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout.strip()
    assert where.startswith(purelib), where  # the wheel's copy, not the source tree
    demo = subprocess.run(
        [str(venv / "bin" / "ath"), "demo", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    lines = [json.loads(line) for line in demo.stdout.splitlines() if line.startswith("{")]
    assert lines and lines[-1].get("ok") is True, lines[-1:]
