"""What a person is told when an ATH step they reached in a browser fails.

The ATH JSON error (ATH §7) speaks to the agent's developer; the page speaks to the user who
clicked a link. Each entry says what happened and what to do next, keyed by the error's
``details.reason`` first and its code second.
"""

from __future__ import annotations

from dataclasses import dataclass

from athkit.protocol import ATHError, ErrorCode


@dataclass(frozen=True)
class Explanation:
    """A page's heading, what happened, and what the reader can do about it."""

    title: str
    message: str
    advice: str


_NEW_LINK = "Go back to the agent and ask it to connect again; it will give you a new link."

_BY_REASON: dict[str, Explanation] = {
    "unknown_session": Explanation(
        "This link is not valid",
        "This authorization link does not belong to any request we know of.",
        "Check that you copied the whole link. " + _NEW_LINK,
    ),
    "session_expired": Explanation(
        "This link has expired",
        "Authorization links work for 10 minutes, and this one is older.",
        _NEW_LINK,
    ),
    "session_used": Explanation(
        "This link was already used",
        "Each authorization link works once, and this one has been used.",
        "If you already allowed the agent, there is nothing more to do here. Otherwise, go "
        "back to the agent and ask it to connect again; it will give you a new link.",
    ),
    "session_orphaned": Explanation(
        "This request can no longer be completed",
        "The agent's registration changed after it asked for your consent.",
        _NEW_LINK,
    ),
    "browser_binding": Explanation(
        "This link was opened in another browser",
        "For your safety an authorization link works only in the browser that opened it first.",
        "Finish in that browser, or ask the agent for a new link and open it here.",
    ),
    "missing_state": Explanation(
        "The sign-in did not come back complete",
        "The answer from the sign-in page is missing the data that ties it to your request.",
        _NEW_LINK,
    ),
    "wrong_state": Explanation(
        "The sign-in did not match your request",
        "The answer from the sign-in page belongs to another request, or was altered.",
        _NEW_LINK,
    ),
    "user_denied": Explanation(
        "Access not granted",
        "You did not allow the agent access.",
        "Nothing was shared. You can close this window.",
    ),
}

_BY_CODE: dict[ErrorCode, Explanation] = {
    ErrorCode.SESSION_NOT_FOUND: _BY_REASON["unknown_session"],
    ErrorCode.SESSION_EXPIRED: _BY_REASON["session_expired"],
    ErrorCode.STATE_MISMATCH: _BY_REASON["wrong_state"],
    ErrorCode.USER_DENIED: _BY_REASON["user_denied"],
    ErrorCode.OAUTH_ERROR: Explanation(
        "The sign-in service failed",
        "The service where you sign in did not complete the request.",
        "Try again in a few minutes. " + _NEW_LINK,
    ),
    ErrorCode.INTERNAL_ERROR: Explanation(
        "Something went wrong on our side",
        "The server could not complete your request. Nothing was shared.",
        "Try again in a few minutes. If it keeps happening, tell the service's operator.",
    ),
    ErrorCode.RATE_LIMITED: Explanation(
        "Too many requests",
        "This agent made too many requests in a short time.",
        "Wait a minute and try again.",
    ),
}

_NOT_FOUND = Explanation(
    "Page not found",
    "There is no page at this address.",
    "Check the address, or start again from the home page.",
)

_FALLBACK = Explanation(
    "This request could not be completed",
    "The server refused the request.",
    "Go back to the application you came from and start again.",
)


def explain(exc: ATHError) -> Explanation:
    """The page text for ``exc``: its reason's entry, else its code's, else a general one."""
    reason = exc.details.get("reason")
    if isinstance(reason, str) and reason in _BY_REASON:
        return _BY_REASON[reason]
    if exc.code in _BY_CODE:
        return _BY_CODE[exc.code]
    if exc.status == 404:
        return _NOT_FOUND
    return Explanation(_FALLBACK.title, exc.message[:300] or _FALLBACK.message, _FALLBACK.advice)


def explain_status(status: int) -> Explanation:
    """The page text for a bare HTTP status (no ATH error behind it: unknown page, bad method)."""
    if status == 404:
        return _NOT_FOUND
    if status == 405:
        return Explanation(
            "This page cannot be used that way",
            "The address exists, but not for this kind of request.",
            "Open it with a normal link, or start again from the home page.",
        )
    if status >= 500:
        return _BY_CODE[ErrorCode.INTERNAL_ERROR]
    return _FALLBACK
