"""Backing-service faults as ATH errors: 503, naming the service, never a 500 or a traceback.

A store whose database cannot answer — unreachable, restarting, hung past the configured timeout,
out of pool connections — raises ``ATHError(INTERNAL_ERROR)`` with HTTP status 503 and a message
naming the service, so the engine fails closed (nothing issued, nothing allowed) and the client
knows to retry later. Bugs and bad data (integrity or programming errors) are not faults of the
service and keep their own handling.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    IntegrityError,
    ProgrammingError,
)
from sqlalchemy.exc import (
    TimeoutError as PoolTimeoutError,
)

from athkit.protocol import ATHError, ErrorCode

_log = logging.getLogger("athkit.server")

_P = ParamSpec("_P")
_T = TypeVar("_T")

_NOT_FAULTS = (IntegrityError, ProgrammingError, DataError)
_FAULTS = (DBAPIError, PoolTimeoutError, OSError, TimeoutError)


def service_unavailable(service: str, reason: str) -> ATHError:
    """The 503 answered while ``service`` (``"the database"``, ``"Redis"``) cannot answer."""
    return ATHError(
        ErrorCode.INTERNAL_ERROR,
        f"{service} is unavailable, so the request was refused and nothing was changed; "
        "try again shortly",
        details={"reason": reason},
        status=503,
    )


def _data_exception(exc: BaseException) -> bool:
    """SQLSTATE class 22 (data exception): the input, not the service — e.g. PostgreSQL's
    22021 for a NUL character, which it cannot store in text."""
    sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return isinstance(sqlstate, str) and sqlstate.startswith("22")


def database_call(
    method: Callable[_P, Coroutine[Any, Any, _T]],
) -> Callable[_P, Coroutine[Any, Any, _T]]:
    """Decorate a SQL store method: a database fault becomes the database's 503."""

    @functools.wraps(method)
    async def call(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        try:
            return await method(*args, **kwargs)
        except _NOT_FAULTS:
            raise
        except _FAULTS as exc:
            if _data_exception(exc):
                raise ATHError(
                    ErrorCode.INVALID_REQUEST,
                    "the request holds a value the database cannot store or compare "
                    "(such as a NUL character)",
                    details={"reason": "unstorable_value"},
                ) from None
            # The exception text may hold the URL (with a password): log its type only.
            _log.error("database unavailable: %s", type(exc).__name__)
            raise service_unavailable("the database", "database_unavailable") from None

    return call
