"""Shared test configuration."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, settings

# Property tests stay bounded in the default run; ATH_LONG_PROPERTIES=1 runs many more examples
# (with --timeout=0: a test then takes longer than the suite's per-test timeout).
settings.register_profile(
    "athkit",
    max_examples=60,
    deadline=None,  # each test bounds its own request time, measured on the server's answer
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.register_profile("athkit-long", parent=settings.get_profile("athkit"), max_examples=2000)
settings.load_profile("athkit-long" if os.environ.get("ATH_LONG_PROPERTIES") == "1" else "athkit")

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """Debian's Chromium driven by Playwright (sync API), headless; one per test module.

    Skipped when /usr/bin/chromium is missing, unless ATH_REQUIRE_BROWSER=1 (then it fails).
    Use it from plain ``def`` tests.
    """
    if not CHROMIUM.exists():
        if os.environ.get("ATH_REQUIRE_BROWSER") == "1":
            pytest.fail(f"ATH_REQUIRE_BROWSER=1 but {CHROMIUM} is missing")
        pytest.skip(f"{CHROMIUM} is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def browser_page(chromium: Browser) -> Iterator[Page]:
    """A fresh page in its own browser context (its own cookies), closed after the test."""
    context = chromium.new_context()
    context.set_default_timeout(15_000)
    try:
        yield context.new_page()
    finally:
        context.close()
