"""ISO 8601 for people and JSON: what the admin API and the console show, and what their
time filters accept.

The engine keeps POSIX seconds (floats); these helpers sit at the edges. A filter accepts a date
(``2026-11-29``, the start of that day in UTC), a date-time with an offset or ``Z``
(``2026-11-29T16:00:00+01:00``), a date-time without one (read as UTC), or — for callers written
against the first admin API — POSIX seconds (``1795000000``).
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime


def to_iso(ts: float | None) -> str | None:
    """POSIX seconds as ``2026-11-29T16:34:01.250Z`` (UTC, milliseconds); ``None`` stays."""
    if ts is None:
        return None
    moment = datetime.fromtimestamp(ts, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_instant(raw: str) -> float:
    """POSIX seconds of an ISO 8601 date or date-time (or of POSIX seconds themselves).

    Raises ``ValueError`` with a message naming the accepted forms.
    """
    text = raw.strip()
    if not text or len(text) > 64:
        raise ValueError(_FORMS)
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(number) or not -1e11 < number < 1e11:
            raise ValueError(_FORMS)
        return number
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
        moment = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise ValueError(_FORMS) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


_FORMS = (
    "expected an ISO 8601 date (2026-11-29) or date-time (2026-11-29T16:00:00Z), or POSIX seconds"
)
