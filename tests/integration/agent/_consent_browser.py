"""A stand-in for the user's browser, for ``BROWSER=<this script>``: completes the real login
and consent forms of our OAuth server over HTTP (``athkit.oauthserver.drive_consent``).

Python's ``webbrowser`` runs ``$BROWSER URL`` and waits for it, exactly as it would run a real
browser; the redirect lands on the agent's loopback listener like a browser's would.
Environment: ``ATH_TEST_USER``, ``ATH_TEST_PASSWORD``, ``ATH_TEST_CONSENT`` (scopes to leave
ticked, space-separated; empty = all), ``ATH_TEST_ALLOW`` (``0`` presses Deny).
"""

from __future__ import annotations

import os
import sys

import httpx

from athkit.testing import drive_consent


def main() -> int:
    """Drive the consent for the URL in ``argv[1]``; 0 once the redirect was delivered."""
    wanted = os.environ.get("ATH_TEST_CONSENT", "").split()
    with httpx.Client(timeout=20) as http:
        result = drive_consent(
            http,
            sys.argv[1],
            username=os.environ["ATH_TEST_USER"],
            password=os.environ["ATH_TEST_PASSWORD"],
            scopes=wanted or None,
            allow=os.environ.get("ATH_TEST_ALLOW", "1") != "0",
        )
    if isinstance(result, str) or result.status_code >= 400:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
