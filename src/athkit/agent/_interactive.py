"""``authorize_interactive``: the whole user-side step for a command-line agent (ATH §4.3–§4.5).

Listen on a loopback port, send the user's browser to the authorization URL, catch the
redirect, check ``state``, exchange the code, store the token.
"""

from __future__ import annotations

import asyncio
import sys
import webbrowser
from collections.abc import Callable, Sequence

from athkit.agent._client import AsyncATHClient, ATHClient
from athkit.agent._core import new_state
from athkit.agent._loopback import LoopbackListener
from athkit.protocol import TokenResponse

Opener = Callable[[str], object]
"""Opens an authorization URL; returns ``False`` when it could not (then the URL is shown)."""
UrlNotice = Callable[[str, bool], None]
"""Told the URL and whether a browser (or ``opener``) took it."""

DEFAULT_TIMEOUT = 300.0


def _print_url(url: str, opened: bool) -> None:
    if not opened:
        print(f"Open this URL in a browser to authorize the agent:\n\n  {url}\n", file=sys.stderr)


def _open(url: str, opener: Opener | None, open_browser: bool) -> bool:
    if opener is not None:
        return opener(url) is not False
    if not open_browser:
        return False
    try:
        return webbrowser.open(url)
    except webbrowser.Error:
        return False


def authorize_interactive(
    client: ATHClient,
    provider_id: str | None,
    scopes: Sequence[str],
    *,
    open_browser: bool = True,
    opener: Opener | None = None,
    on_url: UrlNotice = _print_url,
    timeout: float = DEFAULT_TIMEOUT,
    resource: str | None = None,
) -> TokenResponse:
    """Run the user's consent and store the resulting token; returns it.

    The agent must be registered with the redirect URI ``http://127.0.0.1/callback`` (the
    default of :meth:`ATHClient.register`). ``opener`` replaces the browser (tests pass a
    function that completes the consent forms); with ``open_browser=False`` or when no browser
    is available, ``on_url`` shows the URL for the user to open. Raises
    :class:`ATHClientError` (``USER_DENIED``, ``STATE_MISMATCH``, ``AUTHORIZATION_TIMEOUT`` or
    the server's code); the listener is closed on every path, Ctrl-C included.
    """
    state = new_state()
    with LoopbackListener(state) as listener:
        pending = client.authorize(
            provider_id,
            scopes,
            user_redirect_uri=listener.redirect_uri,
            state=state,
            resource=resource,
        )
        on_url(pending.authorization_url, _open(pending.authorization_url, opener, open_browser))
        code = listener.wait(timeout)
    return client.exchange_token(code, pending.ath_session_id)


async def authorize_interactive_async(
    client: AsyncATHClient,
    provider_id: str | None,
    scopes: Sequence[str],
    *,
    open_browser: bool = True,
    opener: Opener | None = None,
    on_url: UrlNotice = _print_url,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 (same signature as the sync twin)
    resource: str | None = None,
) -> TokenResponse:
    """:func:`authorize_interactive` for :class:`AsyncATHClient`; ``opener`` runs in a thread."""
    state = new_state()
    with LoopbackListener(state) as listener:
        pending = await client.authorize(
            provider_id,
            scopes,
            user_redirect_uri=listener.redirect_uri,
            state=state,
            resource=resource,
        )
        opened = await asyncio.to_thread(_open, pending.authorization_url, opener, open_browser)
        on_url(pending.authorization_url, opened)
        code = await listener.wait_async(timeout)
    return await client.exchange_token(code, pending.ath_session_id)
