"""Gateway mode: ATH in front of services that know nothing of ATH (ATH §1, §3, §4.6).

The gateway is the engine (``athkit.server``) plus what only a gateway needs: provider
configuration, the scope-checked proxy, the forward-auth check endpoint for an existing proxy
(with an nginx configuration generator), the catalog, per-agent rate limits, health and metrics.
"""

from athkit.config import ConfigError, Problem
from athkit.gateway._app import GatewayApp, create_gateway_app
from athkit.gateway._catalog import catalog
from athkit.gateway._check import CheckApp
from athkit.gateway._config import ENV_PREFIX, check_config, config_from_mapping, load_config
from athkit.gateway._metrics import GatewayMetrics
from athkit.gateway._nginx import nginx_config
from athkit.gateway._proxy import HOP_BY_HOP, ProxyApp
from athkit.gateway._schema import (
    ApprovalConfig,
    ForwardAuthConfig,
    GatewayConfig,
    ProviderConfig,
    ProxyConfig,
    RateLimitConfig,
    VerifierConfig,
)
from athkit.gateway._settings import (
    GatewayProviderSettings,
    GatewaySettings,
    fetch_issuer_metadata,
    resolve_settings,
)
from athkit.server._ratelimit import (
    MemoryRateLimiter,
    RateDecision,
    RateLimiter,
    RateLimiterUnavailable,
    RedisRateLimiter,
)

__all__ = [
    "ENV_PREFIX",
    "HOP_BY_HOP",
    "ApprovalConfig",
    "CheckApp",
    "ConfigError",
    "ForwardAuthConfig",
    "GatewayApp",
    "GatewayConfig",
    "GatewayMetrics",
    "GatewayProviderSettings",
    "GatewaySettings",
    "MemoryRateLimiter",
    "Problem",
    "ProviderConfig",
    "ProxyApp",
    "ProxyConfig",
    "RateDecision",
    "RateLimitConfig",
    "RateLimiter",
    "RateLimiterUnavailable",
    "RedisRateLimiter",
    "VerifierConfig",
    "catalog",
    "check_config",
    "config_from_mapping",
    "create_gateway_app",
    "fetch_issuer_metadata",
    "load_config",
    "nginx_config",
    "resolve_settings",
]
