"""``ath demo --serve``: after the story it prints the next commands (the service URL to export,
an ath command, the admin API with a curl line that works) and keeps the agent connected, so
the shop's Connected agents page is not empty."""

from __future__ import annotations

import io
import json
import threading
import time

import httpx

from athkit.demo import DemoOptions, run_demo
from athkit.testing import drive_consent


def test_serve_prints_next_commands_and_keeps_an_agent_connected() -> None:
    out = io.StringIO()
    stop = threading.Event()
    done: list[object] = []
    runner = threading.Thread(
        target=lambda: done.append(
            run_demo(DemoOptions(json=True, serve=True), out, stop, password="pw-for-the-test")
        ),
        daemon=True,
    )
    runner.start()
    try:
        deadline = time.monotonic() + 120
        serving: dict[str, object] | None = None
        while serving is None:
            assert time.monotonic() < deadline and runner.is_alive(), out.getvalue()[-2000:]
            for line in out.getvalue().splitlines():
                event = json.loads(line)
                if event["type"] == "serving":
                    serving = event
            time.sleep(0.2)
        text, urls = str(serving["text"]), serving["urls"]
        assert isinstance(urls, dict)
        shop = urls["Shop"]
        assert f"export ATH_SERVICE={shop}" in text
        assert 'ath discover --server "$ATH_SERVICE"' in text
        assert "ShopBot holds a token again" in text
        curl = next(line for line in text.splitlines() if line.strip().startswith("curl"))
        token = curl.split("Bearer ", 1)[1].split('"', 1)[0]
        agents = httpx.get(
            f"{shop}/ath/admin/agents", headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        assert agents.status_code == 200 and agents.json()["agents"], agents.text
        with httpx.Client(timeout=10) as alice:
            page = drive_consent(
                alice,
                f"{shop}/login?next=/account/agents",
                username="alice",
                password="pw-for-the-test",
            )
        assert not isinstance(page, str) and page.status_code == 200
        assert "ShopBot" in page.text and "products:read" in page.text
    finally:
        stop.set()
        runner.join(timeout=30)
    assert done and getattr(done[0], "ok", False)
