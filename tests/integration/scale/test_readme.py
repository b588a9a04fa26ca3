"""The README's "Several gateway instances" example, run as written on a fresh PostgreSQL
database and the local Redis."""

from __future__ import annotations

import pytest

from tests.docs import python_blocks
from tests.services import SHARED_REDIS, fresh_postgres_database, redis_prefix

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def test_several_instances_example_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = python_blocks("Several gateway instances: PostgreSQL and Redis")
    assert len(blocks) == 1
    redis_prefix()  # skips (or fails under ATH_REQUIRE_SERVICES=1) without Redis
    with fresh_postgres_database("ath_readme") as database:
        monkeypatch.setenv("DATABASE_URL", database)
        monkeypatch.setenv("REDIS_URL", SHARED_REDIS)
        for name in ("GW_SECRET_KEY", "NOTES_CLIENT_SECRET"):
            monkeypatch.setenv(name, "")  # restored after the test
        exec(compile(blocks[0], "README.md", "exec"), {})  # noqa: S102
