"""Audit (ATH §6): every decision goes to the audit store and, as one JSON line, to the
``athkit.audit`` logger — and a call whose rejection cannot be audited fails closed.

``AuditLog.run(call, work)`` is how the engine runs each public method: the work's
:class:`~athkit.protocol.ATHError` is audited (as ``call.fail_event``, or ``attestation_failed``
for identity failures) and re-raised; any other exception — a store that is down, a bug — is
logged and becomes ``INTERNAL_ERROR`` with nothing issued.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from athkit.protocol import ATHError, ErrorCode
from athkit.server._records import AuditEvent
from athkit.server._stores import AuditStore

AUDIT_LOGGER = "athkit.audit"

_log = logging.getLogger("athkit.server")
_T = TypeVar("_T")


@dataclass(slots=True)
class AuditContext:
    """Who and what one engine call is about, filled in as the call learns it, for the audit
    event of its rejection."""

    fail_event: str
    agent_id: str | None = None
    client_id: str | None = None
    user_id: str | None = None
    provider_id: str | None = None
    requested: list[str] = field(default_factory=list)


class AuditLog:
    """Writes audit events to a store and to a logger. A store failure propagates (the caller
    fails closed)."""

    def __init__(self, store: AuditStore, logger: logging.Logger | None = None) -> None:
        self.store = store
        self._logger = logger or logging.getLogger(AUDIT_LOGGER)

    def _log_json(self, event: AuditEvent) -> None:
        if self._logger.isEnabledFor(logging.INFO):
            self._logger.info(json.dumps(event.to_json(), separators=(",", ":"), sort_keys=True))

    async def record(self, event: AuditEvent) -> None:
        """Log ``event`` as a JSON line, then store it."""
        self._log_json(event)
        await self.store.append(event)

    async def record_many(self, events: Sequence[AuditEvent]) -> None:
        """Log each event, then store them together when the store can (``append_many``)."""
        for event in events:
            self._log_json(event)
        append_many = getattr(self.store, "append_many", None)
        if append_many is not None:
            await append_many(events)
            return
        for event in events:
            await self.store.append(event)

    async def event(self, event: str, timestamp: float, **fields: object) -> None:
        """Record one event named ``event`` with the fields of :class:`AuditEvent`."""
        record = AuditEvent(event=event, timestamp=timestamp)
        for name, value in fields.items():
            setattr(record, name, value)
        await self.record(record)

    async def rejection(self, call: AuditContext, exc: ATHError, timestamp: float) -> None:
        """Audit ``exc`` as the rejection of ``call``; if that cannot be stored, raise
        ``INTERNAL_ERROR`` instead (no rejection goes unaudited)."""
        event = call.fail_event
        if exc.code in (ErrorCode.INVALID_ATTESTATION, ErrorCode.AGENT_IDENTITY_MISMATCH):
            event = "attestation_failed"
        reason = exc.details.get("reason")
        try:
            await self.event(
                event,
                timestamp,
                agent_id=call.agent_id,
                client_id=call.client_id,
                user_id=call.user_id,
                provider_id=call.provider_id,
                requested_scopes=list(call.requested),
                denied_scopes=list(exc.details.get("denied_scopes", []) or []),
                reason=str(reason if isinstance(reason, str) else exc.message),
                code=exc.code.value,
            )
        except ATHError as failure:
            # The audit store's own backing service is down (its 503 names the service): the
            # refusal is that, not a bug.
            _log.error("audit store failed while recording a rejection: %s", failure.message)
            if exc.code is ErrorCode.INTERNAL_ERROR and failure.status != 503:
                raise exc from None
            raise failure from None
        except Exception:
            _log.exception("audit store failed while recording a rejection")
            if exc.code is ErrorCode.INTERNAL_ERROR:
                raise
            raise ATHError(
                ErrorCode.INTERNAL_ERROR, "the audit store is unavailable; request refused"
            ) from None

    async def run(self, call: AuditContext, work: Awaitable[_T], now: Callable[[], float]) -> _T:
        """Await ``work``; audit and re-raise its ``ATHError``; turn anything else into
        ``INTERNAL_ERROR`` (fail closed: nothing was issued)."""
        try:
            return await work
        except Exception as exc:
            raise await self.failed(call, exc, now()) from None

    async def failed(self, call: AuditContext, exc: Exception, timestamp: float) -> ATHError:
        """What a call that raised ``exc`` answers, once audited: its own ``ATHError``, or
        ``INTERNAL_ERROR`` for anything else (fail closed: nothing was issued)."""
        if isinstance(exc, ATHError):
            await self.rejection(call, exc, timestamp)
            return exc
        _log.error("ATH engine failure (failing closed)", exc_info=exc)
        error = ATHError(
            ErrorCode.INTERNAL_ERROR,
            "the server could not complete the request; nothing was issued",
        )
        # Best effort: the store that failed may be the audit store itself.
        with contextlib.suppress(Exception):
            await self.rejection(call, error, timestamp)
        return error
