"""The database of a running native service becomes unreachable: requests fail closed with
503 INTERNAL_ERROR naming the database (no token issued, no API call allowed), and nothing
stored is lost."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import httpx
from sqlalchemy.pool import NullPool

from athkit.server import migrate_server_schema, sql_stores
from athkit.storage import create_database
from athkit.testing import free_port, serve_in_thread
from tests.integration.native.harness import surroundings
from tests.integration.native.service import build_service


def _hide(directory: Path, db: Path) -> None:
    (directory / "hidden").mkdir()
    for file in directory.glob("ath.db*"):
        shutil.move(str(file), directory / "hidden" / file.name)
    db.mkdir()  # a directory where the database file was: no connection can open it


def _restore(directory: Path, db: Path) -> None:
    db.rmdir()
    for file in (directory / "hidden").iterdir():
        shutil.move(str(file), directory / file.name)


def test_database_outage_fails_closed_over_http(tmp_path: Path) -> None:
    db_file = tmp_path / "ath.db"
    # NullPool: every request opens its own connection, so the outage is seen at once.
    database = create_database(f"sqlite:///{db_file}", poolclass=NullPool)
    asyncio.run(migrate_server_schema(database))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with surroundings(base) as around, httpx.Client(timeout=10) as http:
        config = around.service_config(base, f"sqlite:///{db_file}")
        app = build_service(config, clock=around.clock, stores=sql_stores(database))
        with serve_in_thread(app, port=port):
            world = around.world(base, http)
            agent = world.new_agent("outage")
            client_id, secret = world.registered(agent)
            token = world.full_flow(agent, client_id, secret, ["orders:read"])["access_token"]
            url, session_id, _ = world.start(agent, client_id, ["orders:read"])
            code = world.consent(url)["code"]

            _hide(tmp_path, db_file)
            refused = [
                world.token(agent, client_id, secret, session_id, code),
                world.api(token, agent),
                world.authorize(agent, client_id, ["orders:read"]),
            ]
            for response in refused:
                assert response.status_code == 503, response.text
                assert response.json()["code"] == "INTERNAL_ERROR"
                assert "the database is unavailable" in response.json()["message"]
                assert "sqlite" not in response.text.lower()
                assert "Traceback" not in response.text

            _restore(tmp_path, db_file)
            assert world.api(token, agent).status_code == 200
            issued = world.token(agent, client_id, secret, session_id, code)
            assert issued.status_code == 200, issued.text
            assert world.api(issued.json()["access_token"], agent).status_code == 200
