"""Redirect URI matching: one rule for the ATH engine (ATH §4.1, §4.4) and the OAuth server.

RFC 6749 §3.1.2.3: a presented redirect URI must equal a registered one, character for
character. One exception, RFC 8252 §7.3: for a loopback IP literal (``127.0.0.1`` or ``[::1]``,
never the name ``localhost``, §8.3) any port is accepted, because command-line clients listen on
an ephemeral one — the scheme (``http``), host, path and query must still be the registered
ones. A fragment or userinfo in the presented URI never matches.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

_LOOPBACK_LITERALS = ("127.0.0.1", "::1")


def redirect_matches(registered: str, presented: str) -> bool:
    """Whether ``presented`` may be redirected to, given one ``registered`` URI."""
    got = urlsplit(presented)
    if got.fragment or "#" in presented or got.username is not None or got.password is not None:
        return False
    if registered == presented:
        return True
    reg = urlsplit(registered)
    try:
        reg.port, got.port  # noqa: B018 -- a malformed port raises here
    except ValueError:
        return False
    return (
        reg.scheme == "http"
        and got.scheme == "http"
        and reg.hostname in _LOOPBACK_LITERALS
        and got.hostname == reg.hostname
        and reg.username is None
        and (got.path, got.query) == (reg.path, reg.query)
    )


def redirect_uri_allowed(presented: str, registered: Iterable[str]) -> bool:
    """Whether ``presented`` matches any of the ``registered`` URIs (see the module)."""
    return any(redirect_matches(uri, presented) for uri in registered)
