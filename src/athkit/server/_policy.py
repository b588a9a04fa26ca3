"""The app-side approval policy (ATH §4.1, Phase A), from provider configuration.

Per provider: ``auto_approve`` scopes are approved at once; ``review`` scopes leave the agent
``pending`` until an operator decides; ``never`` scopes and scopes the provider does not offer are
denied with a reason. Agent-domain allow/deny lists can refuse a provider outright.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from urllib.parse import urlsplit

from athkit.protocol import ProviderScopes
from athkit.server._records import AgentState, ProviderApproval
from athkit.server._settings import ProviderSettings


def agent_domain(agent_id: str) -> str:
    """The host of an agent_id URL, lower-cased."""
    return (urlsplit(agent_id).hostname or "").lower()


def _domain_listed(domain: str, listed: Iterable[str]) -> bool:
    for entry in listed:
        entry = entry.lower().lstrip(".")
        if domain == entry or domain.endswith("." + entry):
            return True
    return False


class ApprovalPolicy:
    """Decides registrations from a list of providers."""

    def __init__(self, providers: Sequence[ProviderSettings]) -> None:
        self._providers = {p.provider_id: p for p in providers}

    def provider(self, provider_id: str) -> ProviderSettings | None:
        """The configured provider with this id."""
        return self._providers.get(provider_id)

    @property
    def providers(self) -> list[ProviderSettings]:
        """Every configured provider."""
        return list(self._providers.values())

    def decide(self, agent_id: str, requested: Sequence[ProviderScopes]) -> list[ProviderApproval]:
        """One decision per requested provider (repeats of a provider are merged)."""
        merged: dict[str, list[str]] = {}
        for item in requested:
            merged.setdefault(item.provider_id, [])
            for scope in item.scopes:
                if scope not in merged[item.provider_id]:
                    merged[item.provider_id].append(scope)
        return [self._decide_one(agent_id, pid, scopes) for pid, scopes in merged.items()]

    def _decide_one(self, agent_id: str, provider_id: str, scopes: list[str]) -> ProviderApproval:
        provider = self._providers.get(provider_id)
        if provider is None:
            return ProviderApproval(provider_id, scopes, [], list(scopes), [], "unknown provider")
        domain = agent_domain(agent_id)
        if _domain_listed(domain, provider.denied_agent_domains):
            return ProviderApproval(
                provider_id, scopes, [], list(scopes), [], f"agent domain {domain} is denied"
            )
        if provider.allowed_agent_domains is not None and not _domain_listed(
            domain, provider.allowed_agent_domains
        ):
            return ProviderApproval(
                provider_id, scopes, [], list(scopes), [], f"agent domain {domain} is not allowed"
            )
        approved: list[str] = []
        pending: list[str] = []
        denied: list[str] = []
        reasons: list[str] = []
        for scope in scopes:
            if scope in provider.auto_approve:
                approved.append(scope)
            elif scope in provider.review:
                pending.append(scope)
            elif scope in provider.never:
                denied.append(scope)
                if "never granted to agents" not in reasons:
                    reasons.append("never granted to agents")
            else:
                denied.append(scope)
                reason = (
                    "not offered by the provider"
                    if scope not in provider.scopes
                    else "not approved by policy"
                )
                if reason not in reasons:
                    reasons.append(reason)
        return ProviderApproval(
            provider_id,
            scopes,
            approved,
            denied,
            pending,
            "; ".join(reasons) if reasons else None,
        )

    def status(self, decisions: Sequence[ProviderApproval]) -> AgentState:
        """The registration's ``agent_status`` for these decisions (see :func:`overall_status`)."""
        return overall_status(
            decisions,
            [p.provider_id for p in self._providers.values() if p.approve_while_reviewing],
        )

    def approval_lifetime(self, decisions: Sequence[ProviderApproval]) -> float:
        """Seconds until the approval expires: the shortest lifetime among known providers."""
        lifetimes = [
            self._providers[d.provider_id].approval_lifetime.total_seconds()
            for d in decisions
            if d.provider_id in self._providers
        ]
        return min(lifetimes) if lifetimes else 0.0


def overall_status(
    decisions: Sequence[ProviderApproval], approve_while_reviewing: Iterable[str] = ()
) -> AgentState:
    """``pending`` if any scope awaits review, else ``approved`` if any scope was approved,
    else ``denied``. Providers named in ``approve_while_reviewing`` do not hold an agent
    ``pending`` for their review scopes once some of their scopes were approved."""
    partial = set(approve_while_reviewing)
    if any(
        d.pending_scopes and not (d.approved_scopes and d.provider_id in partial) for d in decisions
    ):
        return "pending"
    if any(d.approved_scopes for d in decisions):
        return "approved"
    return "denied"
