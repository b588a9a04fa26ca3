"""Batched audit writes (``AuditLog.record_many``), as the gateway proxy uses them."""

from __future__ import annotations

import time
from pathlib import Path

from athkit.server import AuditEvent, AuditLog, AuditQuery, memory_stores, open_sql_stores


def _events(n: int) -> list[AuditEvent]:
    now = time.time()
    return [
        AuditEvent(
            event="proxy_request",
            timestamp=now + i,
            agent_id="https://a.example/agent.json",
            provider_id="mail",
            effective_scopes=["mail:read"],
            details={"method": "GET", "path": f"/messages/{i}", "status": 200},
        )
        for i in range(n)
    ]


async def test_record_many_on_sqlite_stores_every_event_in_order(tmp_path: Path) -> None:
    stores, db = await open_sql_stores(f"sqlite:///{tmp_path}/audit.db")
    try:
        await AuditLog(stores.audit).record_many(_events(50))
        found = await stores.audit.query(AuditQuery(event="proxy_request", limit=100))
        assert len(found) == 50
        assert found[0].details["path"] == "/messages/49"  # newest first
        assert found[-1].effective_scopes == ["mail:read"]
    finally:
        await db.dispose()


async def test_record_many_on_memory_stores() -> None:
    stores = memory_stores()
    await AuditLog(stores.audit).record_many(_events(3))
    assert len(await stores.audit.query(AuditQuery())) == 3
