"""Run README examples as written: pull the fenced ```python blocks out of one section."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks(heading: str, markdown: str | None = None) -> list[str]:
    """The ```python blocks under the heading whose text is ``heading`` (e.g. "Build an agent").

    The section runs until the next heading of the same or a higher level. Raises ``LookupError``
    if the heading is missing, so a renamed section cannot silently skip its examples.
    """
    return code_blocks(heading, "python", markdown)


def code_blocks(heading: str, language: str, markdown: str | None = None) -> list[str]:
    """Like :func:`python_blocks`, for fenced blocks of any ``language`` (e.g. ``bash``)."""
    text = README.read_text(encoding="utf-8") if markdown is None else markdown
    section = _section(heading, text)
    fence = re.compile(
        rf"^```{re.escape(language)}[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL
    )
    return list(fence.findall(section))


def _section(heading: str, text: str) -> str:
    # Walk line by line so that a "# comment" inside a code block is not taken for a heading.
    level: int | None = None
    lines: list[str] = []
    in_fence = False
    for line in text.splitlines(keepends=True):
        if line.startswith("```"):
            in_fence = not in_fence
        match = None if in_fence else re.match(r"^(#+)[ \t]+(.*?)[ \t]*$", line)
        if level is None:
            if match and match.group(2) == heading:
                level = len(match.group(1))
            continue
        if match and len(match.group(1)) <= level:
            break
        lines.append(line)
    if level is None:
        raise LookupError(f"no heading {heading!r} in the README")
    return "".join(lines)
