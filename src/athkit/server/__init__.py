"""The ATH implementer engine, shared by native services and the gateway.

``ATHEngine`` holds the handshake (ATH §2–§7) as plain async methods over small interfaces:
stores (``EngineStores``: memory or SQL), an attestation verifier, the approval policy, the OAuth
bridge to the provider, the audit log and a clock. Configuration is ``ServerSettings`` plus one
``ProviderSettings`` per provider.
"""

from athkit.protocol import redirect_uri_allowed
from athkit.server._access import AccessCheck, AccessGranted, RateRule, bearer_token
from athkit.server._admin import agent_json, audit_json, create_admin_routes, token_json
from athkit.server._app import ath_error_handler, create_native_app, unexpected_error_handler
from athkit.server._assembly import BuiltEngine, build_engine
from athkit.server._audit import AUDIT_LOGGER, AuditLog
from athkit.server._clock import Clock, ClockLike, ManualClock, SystemClock, TimeSource, time_source
from athkit.server._consent import SignedConsentContext
from athkit.server._crypto import TokenCipher
from athkit.server._engine import (
    ACCESS_TOKEN_PREFIX,
    ATHEngine,
    CallbackResult,
    ConsentStart,
)
from athkit.server._fetch import FetchPolicy, IdentityFetcher
from athkit.server._forward_auth import NativeCheckApp
from athkit.server._guard import ATHPrincipal, ATHScopeMiddleware, authenticate, require_scopes
from athkit.server._heap import FrozenStartupHeap
from athkit.server._isotime import parse_instant, to_iso
from athkit.server._memory import (
    MemoryAgentStore,
    MemoryAuditStore,
    MemoryGrantStore,
    MemorySessionStore,
    MemoryTokenStore,
    memory_stores,
)
from athkit.server._nul import RefuseNul
from athkit.server._oauth import HttpOAuthBridge, OAuthBridge, ProviderTokenSet, add_query
from athkit.server._openapi import openapi_document
from athkit.server._policy import ApprovalPolicy, agent_domain, overall_status
from athkit.server._ports import AgentVerifier, ConsentContextFactory, VerifiedAgentLike
from athkit.server._ratelimit import (
    MemoryRateLimiter,
    RateDecision,
    RateLimiter,
    RateLimiterUnavailable,
    RedisRateLimiter,
)
from athkit.server._records import (
    AgentRecord,
    AgentState,
    AuditEvent,
    AuditEventName,
    ProviderApproval,
    ProviderCredentials,
    ProviderGrant,
    SessionRecord,
    SessionState,
    TokenInfo,
    TokenRecord,
    UserGrant,
)
from athkit.server._replay import (
    LayeredReplayStore,
    MemoryReplayStore,
    RedisReplayStore,
    ReplayStore,
    SqlReplayStore,
)
from athkit.server._routes import UserAuthenticator, basic_credentials, create_ath_routes
from athkit.server._schema import check_server_schema, migrate_server_schema
from athkit.server._settings import (
    MAX_SESSION_LIFETIME,
    MAX_TOKEN_LIFETIME,
    ApprovalRules,
    ProviderDescription,
    ProviderSettings,
    RateLimitSettings,
    ServerSettings,
)
from athkit.server._sql import (
    SqlAgentStore,
    SqlAuditStore,
    SqlGrantStore,
    SqlSessionStore,
    SqlTokenStore,
    open_sql_stores,
    sql_stores,
)
from athkit.server._stores import (
    AgentStore,
    AuditQuery,
    AuditStore,
    DuplicateAgentError,
    EngineStores,
    GrantStore,
    SessionStore,
    TokenQuery,
    TokenStore,
)
from athkit.server._vault import ProviderVault
from athkit.server._verifier import AttestationVerifier, VerifiedAgent
from athkit.server._web import error_parts, read_form, read_json_object

__all__ = [
    "ACCESS_TOKEN_PREFIX",
    "AUDIT_LOGGER",
    "MAX_SESSION_LIFETIME",
    "MAX_TOKEN_LIFETIME",
    "ATHEngine",
    "ATHPrincipal",
    "ATHScopeMiddleware",
    "AccessCheck",
    "AccessGranted",
    "AgentRecord",
    "AgentState",
    "AgentStore",
    "AgentVerifier",
    "ApprovalPolicy",
    "ApprovalRules",
    "AttestationVerifier",
    "AuditEvent",
    "AuditEventName",
    "AuditLog",
    "AuditQuery",
    "AuditStore",
    "BuiltEngine",
    "CallbackResult",
    "Clock",
    "ClockLike",
    "ConsentContextFactory",
    "ConsentStart",
    "DuplicateAgentError",
    "EngineStores",
    "FetchPolicy",
    "FrozenStartupHeap",
    "GrantStore",
    "HttpOAuthBridge",
    "IdentityFetcher",
    "LayeredReplayStore",
    "ManualClock",
    "MemoryAgentStore",
    "MemoryAuditStore",
    "MemoryGrantStore",
    "MemoryRateLimiter",
    "MemoryReplayStore",
    "MemorySessionStore",
    "MemoryTokenStore",
    "NativeCheckApp",
    "OAuthBridge",
    "ProviderApproval",
    "ProviderCredentials",
    "ProviderDescription",
    "ProviderGrant",
    "ProviderSettings",
    "ProviderTokenSet",
    "ProviderVault",
    "RateDecision",
    "RateLimitSettings",
    "RateLimiter",
    "RateLimiterUnavailable",
    "RateRule",
    "RedisRateLimiter",
    "RedisReplayStore",
    "RefuseNul",
    "ReplayStore",
    "ServerSettings",
    "SessionRecord",
    "SessionState",
    "SessionStore",
    "SignedConsentContext",
    "SqlAgentStore",
    "SqlAuditStore",
    "SqlGrantStore",
    "SqlReplayStore",
    "SqlSessionStore",
    "SqlTokenStore",
    "SystemClock",
    "TimeSource",
    "TokenCipher",
    "TokenInfo",
    "TokenQuery",
    "TokenRecord",
    "TokenStore",
    "UserAuthenticator",
    "UserGrant",
    "VerifiedAgent",
    "VerifiedAgentLike",
    "add_query",
    "agent_domain",
    "agent_json",
    "ath_error_handler",
    "audit_json",
    "authenticate",
    "basic_credentials",
    "bearer_token",
    "build_engine",
    "check_server_schema",
    "create_admin_routes",
    "create_ath_routes",
    "create_native_app",
    "error_parts",
    "memory_stores",
    "migrate_server_schema",
    "open_sql_stores",
    "openapi_document",
    "overall_status",
    "parse_instant",
    "read_form",
    "read_json_object",
    "redirect_uri_allowed",
    "require_scopes",
    "sql_stores",
    "time_source",
    "to_iso",
    "token_json",
    "unexpected_error_handler",
]
