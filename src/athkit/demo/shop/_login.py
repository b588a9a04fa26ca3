"""The storefront's own login: the shop is an OAuth 2.0 client of its OAuth server.

Authorization code + PKCE S256 (RFC 7636), the code exchanged server-side with a form-encoded
request and ``client_secret_basic`` (RFC 6749 §4.1.3, §2.3.1), the person's id and name read
from ``/userinfo``.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

import httpx

from athkit.protocol import code_challenge_s256

LOGIN_SCOPE = "profile"
_MAX_BYTES = 64 * 1024


class LoginError(Exception):
    """The OAuth server refused or failed; the message is safe to show."""


@dataclass(frozen=True)
class LoggedInUser:
    """Who logged in."""

    user_id: str
    name: str


@dataclass(frozen=True)
class LoginClient:
    """The shop's confidential OAuth client for human login."""

    issuer: str
    client_id: str
    client_secret: str
    redirect_uri: str

    def authorization_url(self, *, state: str, code_verifier: str) -> str:
        """Where to send the browser to log in."""
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.client_id,
                "redirect_uri": self.redirect_uri,
                "scope": LOGIN_SCOPE,
                "state": state,
                "code_challenge": code_challenge_s256(code_verifier),
                "code_challenge_method": "S256",
            }
        )
        return f"{self.issuer}/authorize?{query}"

    async def finish(
        self, http: httpx.AsyncClient, *, code: str, code_verifier: str
    ) -> LoggedInUser:
        """Exchange the code and read the user's profile."""
        try:
            token_response = await http.post(
                f"{self.issuer}/token",
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": self.redirect_uri,
                    "code_verifier": code_verifier,
                },
                auth=(self.client_id, self.client_secret),
            )
            if token_response.status_code != 200 or len(token_response.content) > _MAX_BYTES:
                raise LoginError("the login server refused the authorization code")
            body = token_response.json()
            access_token = body.get("access_token") if isinstance(body, dict) else None
            if not isinstance(access_token, str):
                raise LoginError("the login server answered without an access token")
            profile_response = await http.get(
                f"{self.issuer}/userinfo", headers={"Authorization": f"Bearer {access_token}"}
            )
            if profile_response.status_code != 200 or len(profile_response.content) > _MAX_BYTES:
                raise LoginError("the login server did not say who logged in")
            profile = profile_response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise LoginError("the login server could not be reached or answered nonsense") from exc
        sub = profile.get("sub") if isinstance(profile, dict) else None
        if not isinstance(sub, str) or not sub:
            raise LoginError("the login server did not say who logged in")
        name = profile.get("name")
        return LoggedInUser(user_id=sub, name=name if isinstance(name, str) and name else sub)
