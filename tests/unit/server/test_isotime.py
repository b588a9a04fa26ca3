"""ISO 8601 at the edges of the admin API and the console."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from athkit.server import parse_instant, to_iso

NOON = datetime(2026, 11, 29, 12, 0, tzinfo=UTC).timestamp()


def test_to_iso_is_utc_with_z_and_milliseconds() -> None:
    assert to_iso(NOON + 0.25) == "2026-11-29T12:00:00.250Z"
    assert to_iso(None) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-11-29", NOON - 12 * 3600),
        ("2026-11-29T12:00:00Z", NOON),
        ("2026-11-29T12:00:00z", NOON),
        ("2026-11-29T13:00:00+01:00", NOON),
        ("2026-11-29T12:00", NOON),  # no offset: UTC
        ("2026-11-29 12:00:00", NOON),
        (str(int(NOON)), NOON),  # POSIX seconds still work
    ],
)
def test_parse_instant_accepts_dates_datetimes_and_seconds(raw: str, expected: float) -> None:
    assert parse_instant(raw) == expected


@pytest.mark.parametrize("raw", ["", "yesterday", "2026-13-01", "nan", "inf", "1e300", "x" * 100])
def test_parse_instant_refuses_the_rest(raw: str) -> None:
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_instant(raw)
