"""Configured agent_ids (per-agent rate limits, development trusted keys) are kept in canonical
form, so the canonical sub of a verified attestation finds them (ATH §2)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from athkit.protocol import create_attestation, generate_private_key, public_key_to_pem
from athkit.server import AttestationVerifier, MemoryReplayStore, RateLimitSettings


def test_rate_limit_keys_are_canonical() -> None:
    settings = RateLimitSettings(agents={"HTTPS://Agent.Example:443/agent.json": 5})
    assert settings.agents == {"https://agent.example/agent.json": 5}
    with pytest.raises(ValidationError, match="not an agent_id"):
        RateLimitSettings(agents={"https://agent.example/../agent.json": 5})


async def test_trusted_key_under_another_spelling_still_verifies() -> None:
    key = generate_private_key()
    canonical = "https://agent.example/agent.json"
    async with AttestationVerifier(
        replay_store=MemoryReplayStore(),
        trusted_keys={"https://AGENT.example:443/agent.json": public_key_to_pem(key.public_key())},
    ) as verifier:
        token = create_attestation(key, agent_id=canonical, audience="https://svc.example")
        found = await verifier.verify(token, audience="https://svc.example")
    assert found.agent_id == canonical
