"""The protocol's words on the wire, each said once: endpoint paths (ATH §8) and header names.

Servers route by these, clients build URLs from them, and the gateway's forward-auth contract
(nginx ``auth_request``, Envoy ``ext_authz``) uses the header names below.
"""

from __future__ import annotations

# ATH §3 discovery documents.
GATEWAY_DISCOVERY_PATH = "/.well-known/ath.json"
APP_DISCOVERY_PATH = "/.well-known/ath-app.json"
# The agent's identity document, by convention (ATH §2).
IDENTITY_DOCUMENT_PATH = "/.well-known/agent.json"

# ATH §8 endpoints, all under one prefix (the browser-binding cookie's path).
ENDPOINTS_PREFIX = "/ath/"
REGISTER_PATH = "/ath/agents/register"
AGENTS_PATH = "/ath/agents/"  # + {client_id}
AUTHORIZE_PATH = "/ath/authorize"
CONSENT_PATH = "/ath/consent/"  # + {ath_session_id}: the link for the user's browser (ours)
CALLBACK_PATH = "/ath/callback"
TOKEN_PATH = "/ath/token"
REVOKE_PATH = "/ath/revoke"
PROXY_PREFIX = "/ath/proxy/"  # + {provider_id}/{path}
CHECK_PATH = "/ath/check"  # forward-auth (ours)
ADMIN_PREFIX = "/ath/admin"  # the operator's admin API (ours)
USER_GRANTS_PATH = "/ath/user/grants"  # the signed-in user's agents (ours)
USER_REVOKE_PATH = "/ath/user/revoke"  # the signed-in user cuts an agent off (ours)
OPENAPI_PATH = "/ath/openapi.json"  # the native endpoints' OpenAPI document (ours)

# Headers.
AGENT_ID_HEADER = "X-ATH-Agent-ID"  # ATH §4.6: the calling agent's agent_id
ATTESTATION_HEADER = "X-ATH-Attestation"  # ATH §4.2: status read with an attestation (ours)
CHECK_SECRET_HEADER = "X-ATH-Check-Secret"  # the proxy's secret on forward-auth checks
ERROR_HEADER = "X-ATH-Error"  # a forward-auth refusal as one JSON line
UPSTREAM_AUTHORIZATION_HEADER = "X-ATH-Upstream-Authorization"  # credentials for the upstream
# Who the check allowed, told to the service behind a forward-auth proxy (with AGENT_ID_HEADER).
CLIENT_ID_HEADER = "X-ATH-Client-ID"
USER_ID_HEADER = "X-ATH-User-ID"
SCOPES_HEADER = "X-ATH-Scopes"  # space-separated
# Every header of the protocol starts so; an agent's own headers may not.
RESERVED_HEADER_PREFIX = "X-ATH-"
