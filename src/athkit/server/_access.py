"""The one access check of ATH §4.6, for every caller: the native guard, the gateway proxy and
the forward-auth check endpoint.

For one API call (method, path, bearer token, ``X-ATH-Agent-ID``, provider):

1. the token is a valid ATH token — ``TOKEN_INVALID`` (reason ``missing_token``,
   ``malformed_token``, ``unknown_token``), ``TOKEN_REVOKED``, ``TOKEN_EXPIRED``;
2. ``X-ATH-Agent-ID`` is present and equals the token's agent — ``AGENT_IDENTITY_MISMATCH``
   (``missing_agent_id``, ``agent_mismatch``);
3. the provider is the token's — ``PROVIDER_MISMATCH`` (``provider_mismatch``);
4. a scope of the token allows the method and path, through a scope → route map (or, for a
   route that names its scopes, the token holds every one) — ``SCOPE_NOT_APPROVED``
   (``scope_violation``, audited as ``scope_violation``);
5. the agent is within its rate limit (ATH §6) — ``RATE_LIMITED`` (``rate_limited``, with
   ``Retry-After``), or 503 ``INTERNAL_ERROR`` (``rate_limiter_unavailable``) when the shared
   counter store is down (fail closed).

Steps 1–3 are :meth:`ATHEngine.validate_token` (read from the store on every call, so a
revocation bites on the next one). Every refusal is audited, and carries its response headers
(RFC 6750 §3: ``WWW-Authenticate: Bearer ...`` on 401 and on ``insufficient_scope``), so every
renderer answers it the same way.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

from athkit.protocol import ATHError, ErrorCode, ScopeRouteMap
from athkit.server._engine import ATHEngine
from athkit.server._ratelimit import RateLimiter, RateLimiterUnavailable
from athkit.server._records import TokenInfo


class RateRule(Protocol):
    """Per-agent limits: a default and overrides by agent_id."""

    @property
    def requests(self) -> int:
        """Requests allowed per window."""
        ...

    @property
    def window_seconds(self) -> float:
        """The window's length."""
        ...

    @property
    def agents(self) -> dict[str, int]:
        """Overrides by agent_id."""
        ...


@dataclass(frozen=True, slots=True)
class AccessGranted:
    """A call that passed: the token behind it and the scope that allowed it."""

    token: TokenInfo
    scope: str


def bearer_token(authorization: str | None) -> str | None:
    """The credential of an ``Authorization: Bearer <token>`` header value, if that is what it
    is (RFC 6750 §2.1: the scheme is case-insensitive)."""
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not value:
        return None
    return value


def _challenge(exc: ATHError, required: Collection[str] = ()) -> ATHError:
    # RFC 6750 §3: a request without credentials gets a bare challenge; a bad token
    # error="invalid_token"; a token lacking scope error="insufficient_scope" with the scopes.
    if "WWW-Authenticate" in exc.headers:
        return exc
    if exc.details.get("reason") == "missing_token":
        exc.headers["WWW-Authenticate"] = 'Bearer realm="ath"'
    elif exc.status == 401:
        exc.headers["WWW-Authenticate"] = (
            f'Bearer realm="ath", error="invalid_token", error_description="{exc.code.value}"'
        )
    elif exc.code is ErrorCode.SCOPE_NOT_APPROVED:
        scope = " ".join(s for s in required if s.isprintable() and '"' not in s)
        exc.headers["WWW-Authenticate"] = (
            f'Bearer realm="ath", error="insufficient_scope", scope="{scope}"'
        )
    return exc


class AccessCheck:
    """ATH §4.6 steps 1–4 and the per-agent rate limit, audited (see the module docstring).

    ``limiter`` and ``rate`` are optional: without them no rate limit applies.
    """

    def __init__(
        self,
        engine: ATHEngine,
        *,
        limiter: RateLimiter | None = None,
        rate: RateRule | None = None,
    ) -> None:
        self.engine = engine
        self.limiter = limiter
        self.rate = rate

    async def check(
        self,
        *,
        method: str,
        path: str,
        token: str | None,
        agent_id: str | None,
        provider_id: str | None,
        route_map: ScopeRouteMap | None = None,
        required: Sequence[str] | None = None,
    ) -> AccessGranted:
        """Decide one call: :class:`AccessGranted`, or an audited :class:`ATHError` with its
        response headers. ``route_map`` (full paths as the caller sees them) or ``required``
        (every one of these scopes) says what the call needs; with neither, any valid token
        passes step 4. ``provider_id=None`` skips step 3 (a service with several providers
        that serves them all)."""
        engine = self.engine
        if token is None:
            exc = ATHError(
                ErrorCode.TOKEN_INVALID,
                "send the ATH access token as 'Authorization: Bearer <token>'",
                details={"reason": "missing_token"},
            )
            await engine.audit(
                "access_denied",
                provider_id=provider_id,
                reason="missing_token",
                code=exc.code.value,
                details={"method": method, "path": path},
            )
            raise _challenge(exc)
        try:
            # ATH §4.6 steps 1-3, in this order, audited by the engine.
            info = await engine.validate_token(
                token, agent_id=agent_id if agent_id is not None else "", provider_id=provider_id
            )
        except ATHError as exc:
            raise _challenge(exc) from None
        scope = self._allowing_scope(info, method, path, route_map, required)
        if scope is None:
            need = self._needed(method, path, route_map, required)
            raise _challenge(await self._scope_violation(info, method, path, need), need)
        if self.limiter is not None and self.rate is not None:
            await self._within_rate(info, method, path)
        return AccessGranted(info, scope)

    @staticmethod
    def _allowing_scope(
        info: TokenInfo,
        method: str,
        path: str,
        route_map: ScopeRouteMap | None,
        required: Sequence[str] | None,
    ) -> str | None:
        if route_map is not None:
            return route_map.allowing_scope(method, path, info.scopes)
        if required:
            return required[0] if all(s in info.scopes for s in required) else None
        return info.scopes[0] if info.scopes else ""

    @staticmethod
    def _needed(
        method: str, path: str, route_map: ScopeRouteMap | None, required: Sequence[str] | None
    ) -> list[str]:
        if route_map is not None:
            return list(route_map.scopes_allowing(method, path))
        return list(required or ())

    async def _scope_violation(
        self, info: TokenInfo, method: str, path: str, need: list[str]
    ) -> ATHError:
        # ATH §4.6 step 4: a request that matches no mapping of the token's scopes is refused.
        exc = ATHError(
            ErrorCode.SCOPE_NOT_APPROVED,
            f"the token does not allow {method} {path}"
            + (f"; it needs one of: {', '.join(need)}" if need else "; no scope allows it"),
            details={
                "reason": "scope_violation",
                "method": method,
                "path": path,
                "required_scopes": need,
                "token_scopes": list(info.scopes),
            },
        )
        await self.engine.audit_token(
            "scope_violation",
            info,
            requested_scopes=need,
            effective_scopes=list(info.scopes),
            denied_scopes=[s for s in need if s not in info.scopes],
            reason="scope_violation",
            code=exc.code.value,
            details={"method": method, "path": path},
        )
        return exc

    async def _within_rate(self, info: TokenInfo, method: str, path: str) -> None:
        # ATH §6: rate-limit per agent.
        assert self.limiter is not None and self.rate is not None
        limit = self.rate.agents.get(info.agent_id, self.rate.requests)
        window = self.rate.window_seconds
        try:
            decision = await self.limiter.hit(info.agent_id, limit, window)
        except RateLimiterUnavailable as exc:
            error = ATHError(
                ErrorCode.INTERNAL_ERROR,
                f"rate limiting is unavailable, so calls are refused: {exc}",
                details={"reason": "rate_limiter_unavailable"},
                status=503,
            )
        else:
            if decision.allowed:
                return
            retry = max(1, int(decision.retry_after + 0.999))
            error = ATHError(
                ErrorCode.RATE_LIMITED,
                f"rate limit of {limit} requests per {window:g} s reached; retry in {retry} s",
                details={"reason": "rate_limited", "retry_after": retry, "limit": limit},
                headers={"Retry-After": str(retry)},
            )
        await self.engine.audit_token(
            "access_denied",
            info,
            requested_scopes=list(info.scopes),
            reason=str(error.details["reason"]),
            code=error.code.value,
            details={"method": method, "path": path},
        )
        raise error
