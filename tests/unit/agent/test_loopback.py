"""The one-shot redirect listener, hit over real HTTP."""

from __future__ import annotations

import socket

import httpx
import pytest

from athkit.agent import ATHClientError, LoopbackListener


def _port_closed(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_redirect_with_matching_state_yields_the_code() -> None:
    with LoopbackListener("s" * 43) as listener:
        assert listener.redirect_uri.startswith("http://127.0.0.1:")
        assert httpx.get(listener.redirect_uri.replace("/callback", "/x")).status_code == 404
        page = httpx.get(listener.redirect_uri, params={"code": "c0de", "state": "s" * 43})
        assert page.status_code == 200 and "close this window" in page.text
        assert '<h1 id="page-title">Authorization complete</h1>' in page.text  # the shared look
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["referrer-policy"] == "no-referrer"
        assert listener.wait(5) == "c0de"
    assert _port_closed(listener.port)


def test_wrong_state_is_refused() -> None:
    with LoopbackListener("expected-state-value-123") as listener:
        page = httpx.get(listener.redirect_uri, params={"code": "c", "state": "forged"})
        assert page.status_code == 400
        with pytest.raises(ATHClientError) as info:
            listener.wait(5)
    assert info.value.code == "STATE_MISMATCH"


def test_denied_consent_is_user_denied() -> None:
    with LoopbackListener("st") as listener:
        httpx.get(listener.redirect_uri, params={"error": "access_denied", "state": "st"})
        with pytest.raises(ATHClientError) as info:
            listener.wait(5)
    assert info.value.code == "USER_DENIED"


async def test_timeout_closes_the_listener() -> None:
    with pytest.raises(ATHClientError) as info, LoopbackListener("st") as listener:
        await listener.wait_async(0.2)
    assert info.value.code == "AUTHORIZATION_TIMEOUT"
    assert _port_closed(listener.port)
