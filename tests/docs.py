"""Run README examples as written: pull the fenced ```python blocks out of one section."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"

_FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def python_blocks(heading: str, markdown: str | None = None) -> list[str]:
    """The ```python blocks under the heading whose text is ``heading`` (e.g. "Build an agent").

    The section runs until the next heading of the same or a higher level. Raises ``LookupError``
    if the heading is missing, so a renamed section cannot silently skip its examples.
    """
    text = README.read_text(encoding="utf-8") if markdown is None else markdown
    match = re.search(rf"^(#+)[ \t]+{re.escape(heading)}[ \t]*$", text, re.MULTILINE)
    if match is None:
        raise LookupError(f"no heading {heading!r} in the README")
    level = len(match.group(1))
    end = re.compile(rf"^#{{1,{level}}}[ \t]", re.MULTILINE).search(text, match.end())
    section = text[match.end() : end.start() if end else len(text)]
    return list(_FENCE.findall(section))
