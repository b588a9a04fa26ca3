"""The operator's side: review and change registrations (approve, deny, suspend, reinstate,
set scopes), list and revoke tokens, read the audit trail. Used by the admin API and the
console alike."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from athkit.protocol import ErrorCode
from athkit.server._audit import AuditContext
from athkit.server._core import EngineCore, ath_error
from athkit.server._records import (
    AgentRecord,
    AgentState,
    AuditEvent,
    ProviderApproval,
    TokenRecord,
)
from athkit.server._stores import AuditQuery


class OperatorActions(EngineCore):
    """Every administrative action on registrations, tokens and the audit trail."""

    async def list_agents(self, status: AgentState | None = None) -> list[AgentRecord]:
        """Every registration (optionally only one status)."""
        return await self._run(AuditContext("agent_updated"), self.stores.agents.list(status))

    async def get_agent(self, client_id: str) -> AgentRecord:
        """One registration; ``AGENT_NOT_REGISTERED`` if unknown."""

        async def work() -> AgentRecord:
            agent = await self.stores.agents.get(client_id)
            if agent is None:
                raise ath_error(
                    ErrorCode.AGENT_NOT_REGISTERED, "unknown client_id", reason="unknown_client"
                )
            return agent

        return await self._run(AuditContext("agent_updated", client_id=client_id), work())

    async def approve_agent(self, client_id: str) -> AgentRecord:
        """Approve a registration: scopes awaiting review become approved, the status
        ``approved``, and the approval lifetime restarts."""

        def change(agent: AgentRecord) -> None:
            for approval in agent.providers:
                approval.approved_scopes.extend(
                    s for s in approval.pending_scopes if s not in approval.approved_scopes
                )
                approval.pending_scopes = []
            agent.status = (
                "approved" if any(a.approved_scopes for a in agent.providers) else ("denied")
            )
            agent.status_reason = None
            agent.approval_expires = self.clock.now() + self.policy.approval_lifetime(
                agent.providers
            )

        return await self._change_agent(client_id, change, "approved by operator")

    async def deny_agent(self, client_id: str, reason: str = "denied by operator") -> AgentRecord:
        """Deny a registration (pending or not); every live token of the agent dies."""

        def change(agent: AgentRecord) -> None:
            for approval in agent.providers:
                approval.denied_scopes.extend(
                    s for s in approval.pending_scopes if s not in approval.denied_scopes
                )
                if approval.pending_scopes:
                    approval.denial_reason = reason
                approval.pending_scopes = []
            agent.status = "denied"
            agent.status_reason = reason

        return await self._change_agent(client_id, change, reason, revoke_by="operator")

    async def suspend_agent(
        self, client_id: str, reason: str = "suspended by operator"
    ) -> AgentRecord:
        """ATH §6: suspend a compromised agent; all its tokens die at once and it cannot
        authorize or exchange again until reinstated."""

        def change(agent: AgentRecord) -> None:
            agent.status = "suspended"
            agent.status_reason = reason

        return await self._change_agent(client_id, change, reason, revoke_by="suspension")

    async def reinstate_agent(self, client_id: str) -> AgentRecord:
        """Lift a suspension or denial: the agent is approved again for its approved scopes."""

        def change(agent: AgentRecord) -> None:
            agent.status = (
                "approved" if any(a.approved_scopes for a in agent.providers) else ("denied")
            )
            agent.status_reason = None

        return await self._change_agent(client_id, change, "reinstated by operator")

    async def set_approved_scopes(
        self, client_id: str, provider_id: str, scopes: Sequence[str]
    ) -> AgentRecord:
        """Set the approved scopes of one provider for an agent; live tokens holding a scope
        that is no longer approved are revoked."""
        provider = self._provider(provider_id)
        if provider is None:
            raise ath_error(
                ErrorCode.INVALID_REQUEST, f"unknown provider {provider_id!r}", field="provider_id"
            )
        unknown = [s for s in scopes if s not in provider.scopes]
        if unknown:
            raise ath_error(
                ErrorCode.INVALID_REQUEST, f"scopes not offered: {unknown}", field="scopes"
            )
        # The provider's policy is the operator's own ceiling: a scope it never grants to agents
        # is not granted by hand either (change the policy first).
        never = [s for s in scopes if s in provider.never]
        if never:
            raise ath_error(
                ErrorCode.INVALID_REQUEST,
                f"scopes never granted to agents by provider {provider_id!r}: {never}",
                field="scopes",
            )
        wanted = list(dict.fromkeys(scopes))

        def change(agent: AgentRecord) -> None:
            approval = agent.provider(provider_id)
            if approval is None:
                approval = ProviderApproval(provider_id, list(wanted), [], [], [], None)
                agent.providers.append(approval)
            approval.approved_scopes = list(wanted)
            approval.denied_scopes = [s for s in approval.requested_scopes if s not in wanted]
            approval.pending_scopes = []
            approval.denial_reason = "not approved by operator" if approval.denied_scopes else None
            if agent.status in ("pending", "denied") and not any(
                a.pending_scopes for a in agent.providers
            ):
                agent.status = (
                    "approved" if any(a.approved_scopes for a in agent.providers) else ("denied")
                )
                agent.approval_expires = self.clock.now() + self.policy.approval_lifetime(
                    agent.providers
                )

        agent = await self._change_agent(client_id, change, f"scopes of {provider_id} set")

        async def narrow() -> None:
            now = self.clock.now()
            for token in await self.stores.tokens.list(
                client_id=client_id, provider_id=provider_id, active_at=now, limit=100_000
            ):
                if any(s not in wanted for s in token.scopes):
                    await self._revoke_one(token, "operator")

        await self._run(AuditContext("agent_updated", client_id=client_id), narrow())
        return agent

    async def _change_agent(
        self,
        client_id: str,
        change: Callable[[AgentRecord], None],
        reason: str,
        *,
        revoke_by: str | None = None,
    ) -> AgentRecord:
        async def work() -> AgentRecord:
            agent = await self.stores.agents.get(client_id)
            if agent is None:
                raise ath_error(
                    ErrorCode.AGENT_NOT_REGISTERED, "unknown client_id", reason="unknown_client"
                )
            change(agent)
            agent.updated_at = self.clock.now()
            await self.stores.agents.update(agent)
            revoked = 0
            if revoke_by is not None:
                revoked = await self.stores.tokens.revoke_matching(
                    self.clock.now(), revoke_by, client_id=client_id
                )
            await self.audit(
                "agent_updated",
                agent_id=agent.agent_id,
                client_id=client_id,
                effective_scopes=[s for a in agent.providers for s in a.approved_scopes],
                denied_scopes=[s for a in agent.providers for s in a.denied_scopes],
                reason=reason,
                details={"agent_status": agent.status, "tokens_revoked": revoked},
            )
            if revoked:
                await self.audit(
                    "token_revoked",
                    agent_id=agent.agent_id,
                    client_id=client_id,
                    reason=reason,
                    details={"tokens": revoked},
                )
            return agent

        return await self._run(AuditContext("agent_updated", client_id=client_id), work())

    async def list_tokens(
        self,
        *,
        client_id: str | None = None,
        user_id: str | None = None,
        provider_id: str | None = None,
        active_only: bool = True,
        limit: int = 100,
    ) -> list[TokenRecord]:
        """Issued tokens (hashes and metadata only), newest first."""
        work = self.stores.tokens.list(
            client_id=client_id,
            user_id=user_id,
            provider_id=provider_id,
            active_at=self.clock.now() if active_only else None,
            limit=max(1, min(limit, 1000)),
        )
        return await self._run(AuditContext("agent_updated"), work)

    async def revoke_token_admin(self, token_id: str) -> bool:
        """Revoke one token by its id (operator); ``False`` if unknown or already revoked."""

        async def work() -> bool:
            token = await self.stores.tokens.get(token_id)
            return token is not None and await self._revoke_one(token, "operator")

        return await self._run(AuditContext("agent_updated"), work())

    async def query_audit(
        self,
        *,
        agent_id: str | None = None,
        user_id: str | None = None,
        provider_id: str | None = None,
        event: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 100,
        before_id: int | None = None,
    ) -> list[AuditEvent]:
        """Audit events, newest first; ``before_id`` pages on (events older than that id)."""
        query = AuditQuery(
            agent_id=agent_id,
            user_id=user_id,
            provider_id=provider_id,
            event=event,
            since=since,
            until=until,
            limit=max(1, min(limit, 1000)),
            before_id=before_id,
        )

        async def work() -> list[AuditEvent]:
            return list(await self.stores.audit.query(query))

        return await self._run(AuditContext("agent_updated"), work())
