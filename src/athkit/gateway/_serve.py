"""Running the gateway: one process, or ``workers`` processes sharing the stores.

The HTTP server is uvicorn with uvloop and httptools, chosen by measurement (bench/RESULTS.md:
against granian on the same gateway, same run, uvicorn was as fast or faster). One worker uses
one core; ``workers=N`` starts N processes that accept on the same listening socket, which is
how the gateway uses a machine with more cores. The workers share everything a call depends on
— tokens, agents, grants, sessions, replay records and audit rows live in the database (SQLite
file or PostgreSQL), so a revocation written by one is read by the next call on any other. What
a process keeps to itself must not loosen a check, so several workers need:

* a database every worker can open (not ``memory://``);
* shared rate-limit counters (a ``redis_url``, and ``[rate_limit] backend`` unset or
  ``"redis"``): in-memory counters per process would let each agent through N times its limit.

With ``migrate_on_start`` (the default) the schemas (the engine's, and the console's when it is
on) are migrated once, here, before the workers start, so they never race to create them, and
each worker finds them at head with one query and never loads Alembic (about 12 MB a process).
Each process freezes its start-up heap (:class:`~athkit.server.FrozenStartupHeap`) so full
garbage collections do not stall its event loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

from athkit.console._tables import MIGRATIONS as CONSOLE_MIGRATIONS
from athkit.console._tables import VERSION_TABLE as CONSOLE_VERSION_TABLE
from athkit.gateway._app import GatewayApp, create_gateway_app
from athkit.gateway._config import load_config
from athkit.gateway._schema import GatewayConfig
from athkit.server import FrozenStartupHeap, migrate_server_schema
from athkit.storage import create_database, run_migrations

_CONFIG_ENV = "ATH_GATEWAY_CONFIG"
_DEV_ENV = "ATH_GATEWAY_SERVE_DEV"

# As uvicorn runs the gateway: no access log by default, and the provider's own Date/Server
# headers pass through the proxy instead of being doubled. The gateway serves no WebSocket, and
# uvicorn's default ("auto") imports the websockets package into every process for nothing.
UVICORN_OPTIONS: dict[str, Any] = {
    "loop": "uvloop",
    "http": "httptools",
    "ws": "none",
    "proxy_headers": False,
    "server_header": False,
    "date_header": False,
}


def workers_problem(config: GatewayConfig, workers: int) -> str | None:
    """Why ``config`` cannot run in ``workers`` processes, or ``None`` when it can."""
    if workers < 1:
        return "--workers must be at least 1"
    if workers == 1:
        return None
    if config.database_url.startswith("memory:"):
        return (
            f"--workers {workers} needs a database the workers share: memory:// stores live in "
            "one process"
        )
    rate = config.rate_limit
    shared = rate.backend == "redis" or (
        rate.backend is None and (rate.redis_url or config.redis_url) is not None
    )
    if not shared:
        return (
            f"--workers {workers} needs shared rate-limit counters: set redis_url (and leave "
            '[rate_limit] backend unset or "redis"); in-memory counters would give each agent '
            "its limit once per worker"
        )
    return None


def app_from_environment() -> FrozenStartupHeap:
    """The gateway app of a worker process (uvicorn factory): configuration from
    ``ATH_GATEWAY_CONFIG``, development mode when the parent was started with ``--dev``."""
    dev = os.environ.get(_DEV_ENV) == "1"
    config = load_config(Path(os.environ[_CONFIG_ENV]), mode="development" if dev else None)
    return FrozenStartupHeap(create_gateway_app(config))


def serve_gateway(
    config: GatewayConfig,
    config_path: Path,
    *,
    app: GatewayApp,
    workers: int = 1,
    access_log: bool = False,
    log_level: str = "info",
) -> None:
    """Serve ``app`` (built from ``config``) until interrupted; with ``workers`` > 1, start that
    many worker processes instead (each builds its own app from ``config_path``)."""
    problem = workers_problem(config, workers)
    if problem is not None:
        raise ValueError(problem)
    import uvicorn

    options = {
        **UVICORN_OPTIONS,
        "host": config.listen_host,
        "port": config.listen_port,
        "access_log": access_log,
        "log_level": log_level,
    }
    if workers == 1:
        uvicorn.run(FrozenStartupHeap(app), **options)
        return
    if app.settings.migrate_on_start:
        asyncio.run(_migrate(app))
    os.environ[_CONFIG_ENV] = str(config_path.resolve())
    if app.settings.mode == "development":
        os.environ[_DEV_ENV] = "1"
    logging.getLogger("athkit.gateway").info("starting %d worker processes", workers)
    uvicorn.run(
        "athkit.gateway._serve:app_from_environment",
        factory=True,
        workers=workers,
        # The supervisor kills a worker that does not answer its health ping in time; a worker
        # importing the gateway on a busy machine can take longer than uvicorn's 5 s default.
        timeout_worker_healthcheck=30,
        **options,
    )


async def _migrate(app: GatewayApp) -> None:
    db = create_database(app.settings.database_url)
    try:
        await migrate_server_schema(db)
        if app.console is not None:
            await run_migrations(db, CONSOLE_MIGRATIONS, CONSOLE_VERSION_TABLE)
    finally:
        await db.dispose()
