"""Content negotiation between a person's browser and an API client (RFC 9110 §12.5.1).

A browser asks for ``text/html`` by name and ranks it above everything else; an API client sends
``application/json``, ``*/*`` or nothing. Only the first gets an HTML page: a tie, a wildcard or
a missing header keeps the JSON body of ATH §7, so no script ever receives HTML it did not ask
for.
"""

from __future__ import annotations

_MAX_ITEMS = 32  # a hostile Accept header cannot make us parse for long


def _ranges(accept: str) -> dict[str, float]:
    ranges: dict[str, float] = {}
    for item in accept.split(",")[:_MAX_ITEMS]:
        media, *params = (part.strip() for part in item.split(";"))
        if not media:
            continue
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    quality = 0.0
        media = media.lower()
        ranges[media] = max(quality, ranges.get(media, 0.0))
    return ranges


def _quality(ranges: dict[str, float], media: str) -> float:
    if media in ranges:
        return ranges[media]
    major = media.split("/")[0]
    if f"{major}/*" in ranges:
        return ranges[f"{major}/*"]
    return ranges.get("*/*", 0.0)


def wants_html(accept: str | None) -> bool:
    """True when the ``Accept`` header names ``text/html`` and prefers it to JSON.

    >>> wants_html("text/html,application/xhtml+xml,*/*;q=0.8")
    True
    >>> wants_html("*/*"), wants_html(None), wants_html("application/json, text/html;q=0.9")
    (False, False, False)
    """
    if not accept:
        return False
    ranges = _ranges(accept)
    html = ranges.get("text/html", 0.0)
    if html <= 0.0:
        return False
    return html > _quality(ranges, "application/json")
