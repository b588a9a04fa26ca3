"""Console test helpers: operator accounts made the way the CLI makes them, sign-in over HTTP."""

from __future__ import annotations

import asyncio
import re
import time

import httpx

from athkit.console import ConsoleStore
from athkit.storage import create_database

OPERATOR = "ops-ann"
OPERATOR_PASSWORD = "a long operator passphrase"
MARKUP_NAME = '<script>alert("name")</script><b>Mallory</b>'
MARKUP_PURPOSE = "<img src=x onerror=alert(1)> reads <i>everything</i>"
MARKUP_DEVELOPER = "<u>Evil</u> & Co"


def add_operator(database_url: str, deployment: str, name: str, password: str) -> None:
    """Create an operator account in ``database_url`` for ``deployment`` (own connection)."""

    async def run() -> None:
        db = create_database(database_url)
        try:
            await ConsoleStore(db, time.time).create_operator(deployment, name, password)
        finally:
            await db.dispose()

    asyncio.run(run())


def hidden(html: str, name: str) -> str:
    """The value of the first hidden input called ``name``."""
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"no {name} field in page"
    return match.group(1)


def sign_in(
    http: httpx.Client, base: str, name: str = OPERATOR, password: str = OPERATOR_PASSWORD
) -> httpx.Response:
    """Open the sign-in page and post the form (with its CSRF value) as a browser would."""
    page = http.get(f"{base}/admin/login")
    assert page.status_code == 200, page.text
    return http.post(
        f"{base}/admin/login",
        data={
            "csrf": hidden(page.text, "csrf"),
            "next": "/admin/",
            "username": name,
            "password": password,
        },
    )


def csrf_of(http: httpx.Client, url: str) -> str:
    """The session's CSRF token, read from a console page."""
    page = http.get(url)
    assert page.status_code == 200, page.text
    return hidden(page.text, "csrf")
