"""``FrozenStartupHeap``: keep the garbage collector from stalling a long-running server.

A gateway or service process holds about a hundred thousand objects once started (modules,
SQLAlchemy tables and compiled statements, Alembic's migration machinery, pydantic models). Each
full (generation 2) collection walks all of them, and under load such a collection held the
gateway's event loop for tens to hundreds of milliseconds (``bench/proxy.py``'s lag probe caught
it: the worst loop lag and the longest collection coincided). ``gc.freeze()`` moves every object
alive at that moment into a permanent generation that collections skip, so a full collection
only walks what was allocated since. Done once the app's start-up (lifespan) has finished, after
one collection; undone at shutdown, so an embedding process (tests) gets its heap back.
"""

from __future__ import annotations

import gc
from typing import Any

from starlette.types import Message, Receive, Scope, Send


class FrozenStartupHeap:
    """ASGI wrapper: ``gc.collect(); gc.freeze()`` when lifespan start-up completes,
    ``gc.unfreeze()`` when shutdown completes. Every other scope passes straight through."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run ``app``; watch the lifespan messages it sends."""
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def watch(message: Message) -> None:
            if message["type"] == "lifespan.startup.complete":
                gc.collect()
                gc.freeze()
            elif message["type"] == "lifespan.shutdown.complete":
                gc.unfreeze()
            await send(message)

        await self.app(scope, receive, watch)
