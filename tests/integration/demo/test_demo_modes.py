"""``ath demo --serve`` and ``--browser``, run in-process (the person's part played over HTTP)."""

from __future__ import annotations

import io
import json
import threading
import time
import webbrowser
from typing import Any

import httpx
import pytest

from athkit.demo import DemoOptions, Summary, run_demo
from athkit.testing import drive_consent

PASSWORD = "demo-password-for-tests"


class _Lines(io.StringIO):
    """A stream the test can read JSON lines from while the demo writes them."""

    def objects(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.getvalue().splitlines() if line.strip()]


def test_serve_keeps_the_servers_up_until_stopped() -> None:
    out, stop = _Lines(), threading.Event()
    result: list[Summary] = []
    thread = threading.Thread(
        target=lambda: result.append(
            run_demo(DemoOptions(json=True, serve=True), out, stop, password=PASSWORD)
        )
    )
    thread.start()
    try:
        deadline = time.monotonic() + 60
        serving: dict[str, Any] | None = None
        while serving is None and time.monotonic() < deadline and thread.is_alive():
            serving = next((o for o in out.objects() if o["type"] == "serving"), None)
            time.sleep(0.1)
        assert serving is not None, out.getvalue()[-2000:]
        urls = serving["urls"]
        assert urls["Log in as"] == f"alice / {PASSWORD}"
        assert httpx.get(urls["Shop"]).status_code == 200
        discovery = httpx.get(urls["Discovery"]).json()
        assert discovery["app_id"] == "athshop"
        # A person can log in and finds ShopBot on Connected agents: --serve connects it again
        # after the story revoked it (issue 17: the page is not empty).
        with httpx.Client(timeout=10) as browser:
            page = drive_consent(
                browser,
                urls["Connected agents"].replace("/account/agents", "/login?next=/account/agents"),
                username="alice",
                password=PASSWORD,
            )
            assert isinstance(page, httpx.Response)
            assert "ShopBot" in page.text and "No agent holds access" not in page.text
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert result and result[0].ok


def test_browser_mode_waits_for_the_person_at_the_consent_page(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    opened: list[str] = []

    def person_at_the_browser(url: str, *args: object, **kwargs: object) -> bool:
        # Plays the person: logs in, unticks cart:read, allows; the browser then follows the
        # redirect to ShopBot's loopback listener, as a real one would.
        opened.append(url)

        def act() -> None:
            with httpx.Client(timeout=10) as browser:
                drive_consent(
                    browser,
                    url,
                    username="alice",
                    password=PASSWORD,
                    scopes=["products:read", "cart:write", "orders:read", "orders:write"],
                )

        threading.Thread(target=act, daemon=True).start()
        return True

    monkeypatch.setattr(webbrowser, "open", person_at_the_browser)
    out = _Lines()
    summary = run_demo(DemoOptions(json=True, browser=True), out, password=PASSWORD)
    objects = out.objects()
    assert summary.ok, [o for o in objects if o.get("ok") is False]
    assert len(opened) == 2  # the first consent, and the one after the operator's approval
    waits = [o for o in objects if o["type"] == "waiting"]
    assert len(waits) == 2
    assert "alice" in waits[0]["text"]
    steps = {o["step"]: o for o in objects if o["type"] == "step"}
    assert steps["token"]["scopes"] == ["products:read", "cart:write", "orders:read"]
