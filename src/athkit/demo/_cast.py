"""Who plays in a demo story (the provider, the implementer, the agent, the sketchy agent,
Alice, the operator), and the closing table's scenarios."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from athkit.demo._stack import Stack
from athkit.protocol import PrivateKey

#: The closing table's scenarios: (whether the user consented, whether the service approved).
SCENARIOS: dict[str, tuple[bool, bool]] = {
    "Known agent, user approves": (True, True),
    "Known agent, action under operator review": (True, False),
    "Known agent, after the user revoked it": (False, True),
    "Unknown agent tricks user (unregistered)": (True, False),
    "Unknown agent tricks user (forged key)": (True, False),
    "Known agent, user declines": (False, True),
    "Known agent calls a tool the shop never approved": (False, False),
}


@dataclass(frozen=True)
class Role:
    """What a story's text says of its players: the provider, who implements ATH for it
    ("the shop", "the gateway"), where the person logs in, and the agent's name and developer."""

    provider_id: str
    implementer: str
    login_site: str
    agent_name: str
    developer: Mapping[str, str]


@dataclass(frozen=True)
class Cast:
    """Who plays in a story, and where the implementer (shop or gateway) lives."""

    base_url: str
    provider_id: str
    implementer: str  # "the shop", "the gateway"
    login_site: str  # where the person logs in: "the shop's OAuth server"
    login_url: str  # its base URL
    agent_name: str
    agent_id: str
    agent_key: PrivateKey
    developer: Mapping[str, str]
    sketchy_id: str
    sketchy_key: PrivateKey
    username: str
    password: str
    admin_token: str

    @classmethod
    def of(
        cls, role: Role, stack: Stack, base_url: str, agent_id: str, agent_key: PrivateKey
    ) -> Cast:
        """The cast of ``role`` played on ``stack`` (the implementer at ``base_url``; the
        story's agent ``agent_id`` signing with ``agent_key``)."""
        return cls(
            base_url=base_url,
            provider_id=role.provider_id,
            implementer=role.implementer,
            login_site=role.login_site,
            login_url=stack.oauth_url,
            agent_name=role.agent_name,
            agent_id=agent_id,
            agent_key=agent_key,
            developer=role.developer,
            sketchy_id=stack.sketchy_id,
            sketchy_key=stack.sketchy_key,
            username=stack.username,
            password=stack.password,
            admin_token=stack.admin_token,
        )
