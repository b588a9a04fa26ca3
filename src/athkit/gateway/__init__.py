"""Gateway mode: ATH in front of services that know nothing of ATH (ATH §1, §3, §4.6).

The gateway is the engine (``athkit.server``) plus what only a gateway needs: provider
configuration, the scope-checked proxy, the catalog, per-agent rate limits, health and metrics.
"""

from athkit.gateway._config import (
    ENV_PREFIX,
    ApprovalConfig,
    ConfigError,
    GatewayConfig,
    Problem,
    ProviderConfig,
    ProxyConfig,
    RateLimitConfig,
    VerifierConfig,
    check_config,
    config_from_mapping,
    load_config,
)
from athkit.gateway._ratelimit import (
    MemoryRateLimiter,
    RateDecision,
    RateLimiter,
    RateLimiterUnavailable,
    RedisRateLimiter,
)

__all__ = [
    "ENV_PREFIX",
    "ApprovalConfig",
    "ConfigError",
    "GatewayConfig",
    "MemoryRateLimiter",
    "Problem",
    "ProviderConfig",
    "ProxyConfig",
    "RateDecision",
    "RateLimitConfig",
    "RateLimiter",
    "RateLimiterUnavailable",
    "RedisRateLimiter",
    "VerifierConfig",
    "check_config",
    "config_from_mapping",
    "load_config",
]
