"""One set of running servers for every robustness test (they take seconds to start)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.robustness._world import World, running_world


@pytest.fixture(scope="package")
def world() -> Iterator[World]:
    with running_world() as running:
        yield running


@pytest.fixture(scope="package")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30, follow_redirects=False) as client:
        yield client
