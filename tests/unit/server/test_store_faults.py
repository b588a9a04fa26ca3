"""A database that goes away mid-run: the engine fails closed, and nothing stored is lost."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from athkit.protocol import ATHError, ErrorCode
from athkit.server import migrate_server_schema, sql_stores
from athkit.storage import create_database
from tests.unit.server.helpers import make_world
from tests.unit.server.test_engine import consent, full_flow, start, token_request


def _hide(tmp_path: Path, path: Path) -> None:
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    for file in tmp_path.glob("ath.db*"):
        shutil.move(str(file), hidden / file.name)
    path.mkdir()


def _restore(tmp_path: Path, path: Path) -> None:
    path.rmdir()
    for file in (tmp_path / "hidden").iterdir():
        shutil.move(str(file), tmp_path / file.name)


async def test_unreachable_database_fails_closed_then_recovers(tmp_path: Path) -> None:
    path = tmp_path / "ath.db"
    db = create_database(f"sqlite:///{path}")
    await migrate_server_schema(db)
    w = make_world(stores=sql_stores(db))
    agent = w.agent("fault")
    cid, sec = await w.register(agent, ["orders:read"])
    token = await full_flow(w, agent, cid, sec, ["orders:read"])
    sid = await start(w, agent, cid, ["orders:read"])
    code = await consent(w, sid)

    # The database disappears: close every pooled connection, move the files away and put a
    # directory where the database file was, so no connection can open it.
    await db.dispose()
    _hide(tmp_path, path)

    for attempt in (
        w.engine.validate_token(token),  # no API call allowed
        w.engine.exchange_token(await token_request(w, agent, cid, sec, sid, code)),  # no token
        w.engine.list_agents(),
    ):
        with pytest.raises(ATHError) as err:
            await attempt
        # 503 naming the service: the client should retry later, not report a bug.
        assert err.value.code is ErrorCode.INTERNAL_ERROR and err.value.status == 503
        assert "the database is unavailable" in err.value.message
        assert "disk" not in err.value.message and "sqlite" not in err.value.message.lower()

    # The database comes back: everything stored before is intact, the session still usable.
    _restore(tmp_path, path)
    await db.dispose()
    assert (await w.engine.validate_token(token)).user_id == "alice"
    issued = await w.engine.exchange_token(await token_request(w, agent, cid, sec, sid, code))
    assert issued.effective_scopes == ["orders:read"]
    await db.dispose()


async def test_audit_events_are_json_lines_on_the_audit_logger(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import json

    w = make_world()
    agent = w.agent("log")
    with caplog.at_level(logging.INFO, logger="athkit.audit"):
        cid, sec = await w.register(agent, ["orders:read", "admin"])
        await full_flow(w, agent, cid, sec, ["orders:read"])
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "athkit.audit"]
    registered = next(e for e in lines if e["event"] == "agent_registered")
    assert registered["denied_scopes"] == ["admin"] and registered["agent_id"] == agent.agent_id
    granted = next(e for e in lines if e["event"] == "access_granted")
    assert granted["user_id"] == "alice" and granted["effective_scopes"] == ["orders:read"]
    assert all(sec not in json.dumps(e) for e in lines)  # secrets never logged
