"""Audit (ATH §6): every decision goes to the audit store and, as one JSON line, to the
``athkit.audit`` logger."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence

from athkit.server._records import AuditEvent
from athkit.server._stores import AuditStore

AUDIT_LOGGER = "athkit.audit"


class AuditLog:
    """Writes audit events to a store and to a logger. A store failure propagates (the caller
    fails closed)."""

    def __init__(self, store: AuditStore, logger: logging.Logger | None = None) -> None:
        self.store = store
        self._logger = logger or logging.getLogger(AUDIT_LOGGER)

    async def record(self, event: AuditEvent) -> None:
        """Log ``event`` as a JSON line, then store it."""
        if self._logger.isEnabledFor(logging.INFO):
            self._logger.info(json.dumps(event.to_json(), separators=(",", ":"), sort_keys=True))
        await self.store.append(event)

    async def record_many(self, events: Sequence[AuditEvent]) -> None:
        """Log each event, then store them together when the store can (``append_many``)."""
        if self._logger.isEnabledFor(logging.INFO):
            for event in events:
                self._logger.info(
                    json.dumps(event.to_json(), separators=(",", ":"), sort_keys=True)
                )
        append_many = getattr(self.store, "append_many", None)
        if append_many is not None:
            await append_many(events)
            return
        for event in events:
            await self.store.append(event)
