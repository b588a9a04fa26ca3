"""The shared page look and the browser/API-client negotiation."""

from __future__ import annotations

import pytest

from athkit.pages import (
    PAGE_HEADERS,
    ath_error_page,
    explain,
    message_page,
    status_page,
    wants_html,
)
from athkit.protocol import ATHError, ErrorCode

CHROMIUM = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"
FIREFOX = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.mark.parametrize(
    ("accept", "html"),
    [
        (CHROMIUM, True),
        (FIREFOX, True),
        ("text/html", True),
        ("application/json, text/html;q=0.9", False),  # JSON ranked first
        ("text/html, application/json", False),  # a tie keeps JSON
        ("*/*", False),  # httpx, curl, requests
        ("", False),
        (None, False),
        ("application/json", False),
        ("text/*", False),  # not named: a wildcard never selects HTML
        ("text/html;q=0", False),
        ("text/html;q=abc", False),
        ("text/html;q=0.5, application/*;q=0.1", True),
        (",,,;;;", False),
    ],
)
def test_wants_html(accept: str | None, html: bool) -> None:
    assert wants_html(accept) is html


def test_hostile_accept_header_is_bounded() -> None:
    assert wants_html("a/b," * 100_000 + "text/html") is False  # past the first 32 items


def test_error_page_says_what_happened_and_what_to_do() -> None:
    exc = ATHError(ErrorCode.SESSION_EXPIRED, "expired", details={"reason": "session_expired"})
    page = ath_error_page(exc)
    body = page.body.decode()
    assert page.status_code == 400
    assert "This link has expired" in body
    assert "ask it to connect again" in body
    assert "SESSION_EXPIRED" in body
    for name, value in PAGE_HEADERS.items():
        assert page.headers[name] == value


def test_reason_wins_over_code_and_unknown_codes_fall_back() -> None:
    used = ATHError(ErrorCode.SESSION_NOT_FOUND, "x", details={"reason": "session_used"})
    assert explain(used).title == "This link was already used"
    assert explain(ATHError(ErrorCode.SESSION_NOT_FOUND, "x")).title == "This link is not valid"
    other = explain(ATHError(ErrorCode.INVALID_CLIENT, "wrong client secret"))
    assert other.message == "wrong client secret"


def test_text_is_escaped() -> None:
    body = message_page("<b>t</b>", "<script>x</script>", advice="a&b").body.decode()
    assert "<script>x" not in body and "&lt;script&gt;x" in body
    assert "&lt;b&gt;t" in body and "a&amp;b" in body


def test_status_pages() -> None:
    assert "Page not found" in status_page(404).body.decode()
    assert "cannot be used that way" in status_page(405).body.decode()
    page = status_page(404, links=[("Home", "/")], site="Shop")
    assert 'href="/"' in page.body.decode() and "· Shop</title>" in page.body.decode()


def test_unknown_tone_is_refused() -> None:
    with pytest.raises(ValueError, match="tone"):
        message_page("t", "m", tone="loud")
