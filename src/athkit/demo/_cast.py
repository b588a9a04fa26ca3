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
    """Who plays in a story: the ``role``'s players on ``stack``, the implementer (shop or
    gateway) at ``base_url``, and the story's agent ``agent_id`` signing with ``agent_key``."""

    role: Role
    stack: Stack
    base_url: str
    agent_id: str
    agent_key: PrivateKey
