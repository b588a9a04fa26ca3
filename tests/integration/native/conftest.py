"""One native-service world per test module (servers are slow to start; agents are cheap)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.native.harness import World, running_world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp: Path = tmp_path_factory.mktemp("native")
    with running_world(tmp_dir=str(tmp)) as running:
        yield running


@pytest.fixture(autouse=True)
def _reset_clock(world: World) -> Iterator[None]:
    world.set_mark()
    yield
    world.clock.offset = 0.0
