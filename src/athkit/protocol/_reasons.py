"""Every ``details.reason`` an athkit server may answer (and record in its audit trail), in one
table: the machine-readable word for *why*, next to the ATH code that says *what*.

The README lists this table; a test checks that every reason the code raises is here. Reasons
written with a placeholder stand for a family (``agent_{status}``: ``agent_pending``,
``agent_denied``, ``agent_suspended``).
"""

from __future__ import annotations

REASONS: dict[str, str] = {
    # Request bodies and parameters (INVALID_REQUEST, 400/413/415).
    "schema": "the body does not fit the endpoint's schema; details.field names the field",
    "malformed_json": "the body is not JSON",
    "malformed_body": "the body could not be read as the declared content type",
    "not_json": "a JSON endpoint received something else",
    "not_an_object": "the body is JSON but not an object",
    "body_too_large": "the body is larger than the server accepts (413)",
    "unsupported_media_type": "the Content-Type is not one the endpoint reads (415)",
    "encoding": "the body is not UTF-8",
    "too_large": "the JSON document is larger than allowed",
    "too_deep": "the JSON document nests deeper than allowed",
    "too_many_items": "a JSON array or object has more members than allowed",
    "string_too_long": "a JSON string is longer than allowed",
    "number_too_long": "a JSON number has more digits than allowed",
    "number_out_of_range": "a JSON number is not finite or out of range",
    "duplicate_key": "a JSON object names the same key twice",
    "duplicate_field": "a form names the same field twice",
    "bad_character": "a value holds a character it may not (control or lone surrogate)",
    "bad_type": "a value has the wrong type",
    "form_{problem}": "a form body broke one of the bounds above (form_too_large, ...)",
    "parameter_too_long": "a query parameter is longer than allowed",
    "nul_in_url": "the URL's path or query holds a NUL character",
    "bad_redirect_uri": "a redirect URI is not an absolute http(s) URL without fragment",
    "redirect_uri_not_registered": "user_redirect_uri is not among the registered ones",
    # Attestations and identity documents (INVALID_ATTESTATION 401, AGENT_IDENTITY_MISMATCH).
    "malformed": "the attestation is not a compact JWS",
    "bad_base64": "a JWS segment is not base64url",
    "bad_json": "the JWS header or payload is not a JSON object",
    "bad_header": "the JWS header carries unsupported parameters (crit)",
    "bad_algorithm": "alg is not ES256 (none, HS256 and RS256 are refused)",
    "bad_signature": "the signature does not verify with the agent's published key",
    "bad_public_key": "the identity document's key is not a P-256 public key",
    "bad_claim": "a claim has the wrong type or is too long",
    "missing_{claim}": "a required claim is missing (missing_sub, missing_aud, missing_exp, ...)",
    "expired": "exp has passed",
    "wrong_audience": "aud is not this endpoint's URL",
    "wrong_issuer": "iss is neither the agent_id nor its origin",
    "iat_out_of_range": "iat is more than five minutes in the past",
    "iat_in_future": "iat is in the future (beyond the allowed clock skew)",
    "lifetime_too_long": "the attestation lives longer than one hour",
    "replayed_jti": "this jti was already used",
    "replay_store_unavailable": "the replay store cannot be reached, so nothing is accepted",
    "sub_mismatch": "the attestation's sub is not the agent_id it should be",
    "agent_id_not_canonical": "the agent_id is not in canonical form",
    "identity_fetch_refused": "the identity document's URL is not one the server may fetch",
    "identity_fetch_failed": "the identity document could not be fetched",
    "identity_document_invalid": "the identity document is not a valid ATH identity document",
    "timeout": "a fetch or backing service did not answer in time",
    # Registration and approval (AGENT_*, PROVIDER_NOT_APPROVED, SCOPE_NOT_APPROVED).
    "duplicate_agent_id": "this agent_id is already registered (409)",
    "unknown_client": "no registration has this client_id",
    "not_own_registration": "the registration belongs to another agent",
    "agent_{status}": "the registration is pending, denied or suspended (agent_pending, ...)",
    "approval_expired": "the agent's approval has expired",
    "provider_not_approved": "the agent is not approved for this provider",
    "scope_not_approved": "a requested scope is outside the approved ones",
    "empty_intersection": "approved ∩ consented ∩ requested is empty: no token",
    # Client authentication (INVALID_CLIENT 401).
    "bad_client_credentials": "wrong client_id or client_secret",
    "unauthenticated": "the call needs client credentials or an attestation",
    "admin_auth": "the admin API needs its bearer admin token",
    "check_secret": "the forward-auth check answers only the proxy holding its secret",
    "cross_origin": "a browser form was posted from another origin",
    "user_not_authenticated": "the user's own pages need the user signed in",
    # Sessions, state and codes (SESSION_*, STATE_MISMATCH, USER_DENIED, OAUTH_ERROR).
    "unknown_session": "no ATH session has this id (for this client)",
    "session_expired": "the ATH session outlived its ten minutes",
    "session_used": "the session already went past this step (single use)",
    "session_orphaned": "the session's agent or provider is gone",
    "consent_incomplete": "the user has not finished consent yet",
    "wrong_code": "the ATH authorization code does not match the session",
    "wrong_code_challenge": "the signed consent context belongs to another request",
    "missing_state": "the callback carries no state",
    "wrong_state": "the callback's state matches no session",
    "browser_binding": "another browser than the one that opened the consent link",
    "missing_code": "the callback carries neither code nor error",
    "user_denied": "the user refused consent",
    "provider_error": "the provider's authorization failed",
    "user_reauthorization_required": "the provider token is unusable: the user consents again",
    "provider_token_refreshed": "the provider refused its token, now refreshed: send again",
    "refresh_in_progress": "another instance is refreshing the provider token: try again",
    "credential_in_response": "the provider's answer echoed the gateway's credential: withheld",
    "invalid_provider_token": "the provider rejected the token it issued",
    # API calls (TOKEN_*, AGENT_IDENTITY_MISMATCH, PROVIDER_MISMATCH, SCOPE_NOT_APPROVED, 429).
    "missing_token": "no Authorization: Bearer token",
    "malformed_token": "the bearer token is not an ATH access token",
    "invalid_token": "the bearer token is not valid",
    "unknown_token": "no such ATH access token",
    "token_expired": "the ATH access token has expired",
    "token_revoked": "the ATH access token was revoked",
    "missing_agent_id": "no X-ATH-Agent-ID header",
    "agent_mismatch": "X-ATH-Agent-ID is not the token's agent",
    "provider_mismatch": "the token belongs to another provider",
    "scope_violation": "no scope of the token allows this call (method and path, or tool)",
    "no_scope": "the call is allowed by no scope at all",
    "revoke_not_owner": "an agent tried to revoke another agent's token (audited, answered 200)",
    "rate_limited": "the agent exceeded its rate limit (429, Retry-After)",
    "rate_limiter_unavailable": "the rate limiter's store is down, so calls are refused (503)",
    "not_a_proxy_path": "forward-auth was asked about a path outside /ath/proxy/",
    "invalid_mcp_message": "an MCP request is not a JSON-RPC message the gateway can check",
    "unstorable_value": "a value the database cannot store or compare (e.g. NUL), 400",
    # Backing services (INTERNAL_ERROR, 503).
    "audit_unavailable": "the audit store is down, so decisions are refused",
    "database_unavailable": "the database is down or did not answer in time (message names it)",
    "check_unavailable": "the forward-auth check did not answer, so the proxy refused the call",
}


def is_known_reason(reason: str) -> bool:
    """Whether ``reason`` is in :data:`REASONS`, directly or as a member of a family."""
    if reason in REASONS:
        return True
    for key in REASONS:
        prefix, brace, _ = key.partition("{")
        if brace and reason.startswith(prefix) and len(reason) > len(prefix):
            return True
    return False
