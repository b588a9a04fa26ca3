"""``approve_while_reviewing``: an agent may use its auto-approved scopes while others await
review (the ATH Shop's story), without changing the default of holding it ``pending``."""

from __future__ import annotations

from athkit.protocol import ProviderScopes
from athkit.server import ApprovalPolicy, ProviderSettings


def _provider(**extra: object) -> ProviderSettings:
    return ProviderSettings(
        provider_id="shop",
        display_name="Shop",
        authorization_endpoint="https://auth.test/authorize",
        token_endpoint="https://auth.test/token",
        client_id="shop",
        client_secret="s" * 32,
        scopes=["products:read", "orders:write"],
        auto_approve=["products:read"],
        review=["orders:write"],
        **extra,
    )


AGENT = "https://bot.test/.well-known/agent.json"
BOTH = [ProviderScopes(provider_id="shop", scopes=["products:read", "orders:write"])]
REVIEW_ONLY = [ProviderScopes(provider_id="shop", scopes=["orders:write"])]


def test_by_default_a_review_scope_keeps_the_agent_pending() -> None:
    policy = ApprovalPolicy([_provider()])
    assert policy.status(policy.decide(AGENT, BOTH)) == "pending"


def test_approve_while_reviewing_approves_the_auto_scopes_at_once() -> None:
    policy = ApprovalPolicy([_provider(approve_while_reviewing=True)])
    decisions = policy.decide(AGENT, BOTH)
    assert decisions[0].approved_scopes == ["products:read"]
    assert decisions[0].pending_scopes == ["orders:write"]
    assert policy.status(decisions) == "approved"


def test_with_nothing_auto_approved_the_agent_still_waits() -> None:
    policy = ApprovalPolicy([_provider(approve_while_reviewing=True)])
    assert policy.status(policy.decide(AGENT, REVIEW_ONLY)) == "pending"
