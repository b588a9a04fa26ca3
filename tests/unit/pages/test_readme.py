"""The README's "Pages a person opens" example runs as written, and its images exist."""

from __future__ import annotations

import re

from tests.docs import README, python_blocks

HEADING = "Pages a person opens"


def test_pages_example_runs() -> None:
    blocks = python_blocks(HEADING)
    assert len(blocks) == 1
    exec(compile(blocks[0], "README:pages", "exec"), {"__name__": "readme_pages"})  # noqa: S102


def test_every_readme_image_exists() -> None:
    images = re.findall(r"!\[[^\]]+\]\(([^)]+)\)", README.read_text(encoding="utf-8"))
    assert "docs/images/completion.png" in images
    for image in images:
        assert (README.parent / image).is_file(), image
