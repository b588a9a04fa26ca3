"""``Console``: the operator pages and the users' "Connected agents" pages, mountable anywhere.

The gateway mounts it at ``/admin`` (operators) and ``/account`` (users); a native service mounts
the operator pages with one call, :func:`mount_console`. The console keeps its accounts and
sessions in its own tables (own migrations) in the engine's database, or in a database named
here; everything it decides, it decides through the engine.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Mount

from athkit.console._operator import OperatorConsole
from athkit.console._store import ConsoleStore, Throttle
from athkit.console._users import UserConsole
from athkit.console._web import CookieSpec, templates
from athkit.server import ATHEngine
from athkit.storage import create_database

_log = logging.getLogger("athkit.console")


class Console:
    """The console of one deployment (one engine, one public base URL).

    ``path`` mounts the operator pages; ``user_path`` (gateway) mounts the users' "Connected
    agents" pages, or ``None`` for none. ``db`` is the database for the console's tables;
    without it, ``database_url`` or else the engine's own ``database_url`` is opened (a
    ``memory://`` engine gets an in-memory SQLite database, lost at restart).
    """

    def __init__(
        self,
        engine: ATHEngine,
        *,
        db: AsyncEngine | None = None,
        database_url: str | None = None,
        path: str = "/admin",
        user_path: str | None = None,
        site_name: str | None = None,
        session_lifetime: int = 8 * 3600,
        throttle: Throttle | None = None,
    ) -> None:
        if not path.startswith("/") or path.endswith("/"):
            raise ValueError("path must start with / and not end with one, e.g. /admin")
        self.engine = engine
        self.deployment = engine.base_url
        self._owned_db: AsyncEngine | None = None
        migrate = engine.settings.migrate_on_start
        if db is None:
            url = database_url or engine.settings.database_url
            if url.startswith("memory:"):
                url = "sqlite:///:memory:"
            if url == "sqlite:///:memory:":
                _log.warning("console accounts in memory: operators are lost at restart")
                migrate = True  # a database born with this process has nothing to check
            db = self._owned_db = create_database(url)
        self.store = ConsoleStore(db, engine.clock.now, migrate=migrate)
        self.http = httpx.AsyncClient(follow_redirects=False)
        env = templates()
        tag = hashlib.sha256(self.deployment.encode("utf-8")).hexdigest()[:10]
        secure = self.deployment.startswith("https://")
        # What the operator pages and the user pages share (ConsoleSite).
        site: dict[str, Any] = {
            "engine": engine,
            "store": self.store,
            "env": env,
            "deployment": self.deployment,
            "site_name": site_name or engine.settings.name,
        }
        self.operators = OperatorConsole(
            root=path,
            cookie=CookieSpec(f"ath_console_{tag}", path, secure),
            login_cookie=CookieSpec(f"ath_console_login_{tag}", f"{path}/login", secure),
            session_lifetime=session_lifetime,
            throttle=throttle or Throttle(),
            http=self.http,
            **site,
        )
        self.users: UserConsole | None = None
        if user_path is not None:
            self.users = UserConsole(
                root=user_path,
                cookie=CookieSpec(f"ath_account_{tag}", user_path, secure),
                state_cookie=CookieSpec(f"ath_account_login_{tag}", user_path, secure, "lax"),
                **site,
            )

    def routes(self) -> list[BaseRoute]:
        """The mounts to add to an application's routes."""
        mounts: list[BaseRoute] = [Mount(self.operators.root, routes=self.operators.routes())]
        if self.users is not None:
            mounts.append(Mount(self.users.root, routes=self.users.routes()))
        return mounts

    async def migrate(self) -> None:
        """Create or upgrade the console's tables (or, with ``migrate_on_start = false``, check
        them); the gateway and :func:`mount_console` call it at start-up."""
        await self.store.migrate()

    async def create_operator(self, username: str, password: str) -> None:
        """Add an operator account to this deployment (see ``ath gateway admin create-user``)."""
        await self.store.create_operator(self.deployment, username, password)

    async def aclose(self) -> None:
        """Close the HTTP client, and the database if the console opened it."""
        await self.http.aclose()
        if self._owned_db is not None:
            await self._owned_db.dispose()


def mount_console(app: Starlette, engine: ATHEngine | None = None, **options: Any) -> Console:
    """Mount the operator console on a native service (``create_native_app``) in one call.

    ``engine`` defaults to ``app.state.ath_engine``; ``options`` go to :class:`Console` (without
    ``db`` or ``database_url``, the console uses the engine's database). The
    console's tables are migrated when the application starts, and it is closed when it stops.
    """
    engine = engine or app.state.ath_engine
    assert isinstance(engine, ATHEngine)
    if options.get("db") is None and options.get("database_url") is None:
        # The engine's own database; with stores handed in (memory), accounts in memory too.
        database = getattr(app.state, "ath_database", None)
        if database is not None:
            options["db"] = database
        else:
            options["database_url"] = "sqlite:///:memory:"
    console = Console(engine, **options)
    app.router.routes.extend(console.routes())
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(outer: Starlette) -> AsyncIterator[Any]:
        async with inner(outer) as state:
            try:
                await console.migrate()
                yield state
            finally:
                await console.aclose()

    app.router.lifespan_context = lifespan
    app.state.ath_console = console
    return console
