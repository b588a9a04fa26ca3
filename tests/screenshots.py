"""Where browser tests put their screenshots.

The README shows pages from ``docs/images/``. Browser tests always take their screenshots (so a
page that cannot render fails), into a temporary directory; with ``ATH_UPDATE_SCREENSHOTS=1``
they write them to ``docs/images/`` instead, which is how the README's images are refreshed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Page

DOCS_IMAGES = Path(__file__).resolve().parents[1] / "docs" / "images"


def screenshot(page: Page, name: str, tmp_dir: Path) -> Path:
    """Save a PNG of ``page`` as ``name`` and return its path."""
    folder = DOCS_IMAGES if os.environ.get("ATH_UPDATE_SCREENSHOTS") == "1" else tmp_dir
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    page.screenshot(path=str(target), full_page=True)
    assert target.stat().st_size > 1000, f"{target} is empty"
    return target
