"""A small but real OAuth 2.0 authorization server, with agent-aware consent.

Authorization code grant with mandatory PKCE S256, login and consent pages, a form-encoded
token endpoint with rotating refresh tokens, userinfo, revocation (RFC 7009), introspection
(RFC 7662) and metadata (RFC 8414). When the authorization request carries an ``ath_context``
signed by the client (see :func:`athkit.protocol.create_consent_context`), the consent page shows
the agent and its developer and offers only the scopes the service approved for it.
"""

from athkit.oauthserver._app import create_oauth_app, server_metadata
from athkit.oauthserver._config import (
    ClientConfig,
    OAuthServerConfig,
    UserConfig,
    check_oauth_config,
)
from athkit.oauthserver._passwords import hash_password, verify_password

__all__ = [
    "ClientConfig",
    "OAuthServerConfig",
    "UserConfig",
    "check_oauth_config",
    "create_oauth_app",
    "hash_password",
    "server_metadata",
    "verify_password",
]
