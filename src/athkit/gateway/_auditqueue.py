"""The proxy's audit writer: ``proxy_request`` rows stored in batches behind the responses."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from athkit.protocol import ATHError, ErrorCode
from athkit.server import ATHEngine, AuditEvent

_log = logging.getLogger("athkit.gateway.proxy")


class AuditQueue:
    """``proxy_request`` events written behind the response, in batches, by one background task.

    Keeps the audit store off the hot path: each event is stamped when the call is made and
    queued; the writer stores whatever has accumulated in one transaction
    (``AuditLog.record_many``). If the store fails, the proxy refuses further calls
    (``INTERNAL_ERROR``, 503) until a write succeeds again — audit faults fail closed — and the
    queue, bounded, makes callers wait rather than drop events.

    What a crash can lose: only ``proxy_request`` rows (the record of a *successful* forwarded
    call), at most ``maxsize`` of them — ``[proxy] audit_max_pending``, 1,000 by default — and in
    practice those of the last batch write and its 10 ms linger, a few milliseconds of traffic.
    When the writer falls behind that bound, calls wait for it rather than grow the loss.
    Security events — registrations, denials (every rejection, including the proxy's own),
    issuance, revocation, scope violations — are never queued: they are stored before the
    response is sent. A graceful stop (SIGTERM) writes what is queued before exiting.
    """

    def __init__(
        self, engine: ATHEngine, maxsize: int = 1_000, batch: int = 500, linger: float = 0.01
    ) -> None:
        self._engine = engine
        self._maxsize = maxsize
        self._batch = batch
        # After the first event of a batch, wait this long for more (unless the batch is full):
        # one transaction per 10 ms instead of one per few calls. Measured with bench/proxy.py,
        # a write of a handful of rows costs about as much as one of hundreds (begin, thread
        # hand-offs, commit), so without it the writer's cost per call was many times higher.
        self._linger = linger
        self._queue: asyncio.Queue[AuditEvent] | None = None
        self._task: asyncio.Task[None] | None = None
        self.failing = False

    def start(self) -> None:
        """Start the writer (inside the running loop)."""
        if self._task is None:
            self._queue = asyncio.Queue(self._maxsize)
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def put(self, event: str, **fields: Any) -> None:
        """Queue one event (waits while the queue is full: events are never dropped)."""
        record = AuditEvent(event=event, timestamp=self._engine.clock.now(), **fields)
        queue = self._queue
        if queue is None:  # not started (embedding without lifespan): write inline
            await self._engine.audit_log.record(record)
            return
        if queue.full():
            await queue.put(record)  # the writer is behind: wait for it
        else:
            queue.put_nowait(record)

    def self_check(self) -> None:
        """Refuse the call while audit events cannot be stored."""
        if self.failing:
            raise ATHError(
                ErrorCode.INTERNAL_ERROR,
                "the audit store is unavailable, so proxy calls are refused",
                details={"reason": "audit_unavailable"},
                status=503,
            )

    async def _run(self) -> None:
        assert self._queue is not None
        queue = self._queue
        while True:
            batch = [await queue.get()]
            if self._linger and queue.qsize() < self._batch:
                await asyncio.sleep(self._linger)
            while len(batch) < self._batch and not queue.empty():
                batch.append(queue.get_nowait())
            while True:
                try:
                    await self._engine.audit_log.record_many(batch)
                except Exception:
                    self.failing = True
                    _log.exception("audit store write failed; retrying in 1 s")
                    await asyncio.sleep(1)
                    continue
                break
            self.failing = False
            for _ in batch:
                queue.task_done()

    async def drain(self) -> None:
        """Wait (at most 5 s) until queued events are written (for shutdown and tests)."""
        if self._queue is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), 5.0)

    async def close(self) -> None:
        """Write what is queued, then stop."""
        await self.drain()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
            self._queue = None
