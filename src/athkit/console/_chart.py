"""A small server-drawn SVG bar chart (no JavaScript): two series per hour, side by side."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape

from markupsafe import Markup

_W, _H, _PAD, _AXIS = 720, 160, 24, 16


def hourly_counts(timestamps: Sequence[float], start: float, hours: int = 24) -> list[int]:
    """How many of ``timestamps`` fall in each hour from ``start`` (older first)."""
    counts = [0] * hours
    for ts in timestamps:
        slot = int((ts - start) // 3600)
        if 0 <= slot < hours:
            counts[slot] += 1
    return counts


def bar_chart(start: float, series: Sequence[tuple[str, str, Sequence[int]]]) -> Markup:
    """An SVG of ``(label, colour, counts per hour)`` series from ``start``; each bar carries a
    ``<title>`` with its hour and count, so the numbers are readable without a script."""
    hours = max((len(counts) for _, _, counts in series), default=0)
    top = max((max(counts, default=0) for _, _, counts in series), default=0) or 1
    slot = (_W - 2 * _PAD) / max(hours, 1)
    bar = max(slot / (len(series) + 1), 1.0)
    plot_h = _H - _PAD - _AXIS
    parts = [
        f'<svg class="chart" role="img" aria-label="handshakes and denials per hour" '
        f'viewBox="0 0 {_W} {_H}" width="100%" xmlns="http://www.w3.org/2000/svg">',
        f'<line x1="{_PAD}" y1="{_PAD + plot_h}" x2="{_W - _PAD}" y2="{_PAD + plot_h}" '
        'stroke="#9aa3b2"/>',
        f'<text x="{_PAD - 4}" y="{_PAD + 4}" text-anchor="end">{top}</text>',
        f'<text x="{_PAD - 4}" y="{_PAD + plot_h}" text-anchor="end">0</text>',
    ]
    for hour in range(hours):
        x0 = _PAD + hour * slot
        moment = datetime.fromtimestamp(start + hour * 3600, UTC)
        if hour % 3 == 0:
            parts.append(
                f'<text x="{x0 + slot / 2:.1f}" y="{_H - 4}" text-anchor="middle">'
                f"{moment:%H}h</text>"
            )
        for i, (label, colour, counts) in enumerate(series):
            value = counts[hour] if hour < len(counts) else 0
            height = plot_h * value / top
            x = x0 + (i + 0.5) * bar
            y = _PAD + plot_h - height
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{height:.1f}" '
                f'fill="{escape(colour)}"><title>{escape(label)} {moment:%Y-%m-%d %H}:00 UTC: '
                f"{value}</title></rect>"
            )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - built from numbers and escaped labels only
