"""The service as its own process on a SQLite file: SIGKILL, restart, nothing lost."""

from __future__ import annotations

from pathlib import Path

import httpx

from athkit.testing import free_port
from tests.integration.native.harness import service_process, surroundings


def test_sigkill_and_restart_lose_nothing(tmp_path: Path) -> None:
    base = f"http://127.0.0.1:{free_port()}"
    with surroundings(base) as around, httpx.Client(timeout=10) as http:
        config = around.service_config(base, f"sqlite:///{tmp_path / 'service.db'}")
        config_file = tmp_path / "service.json"
        config_file.write_text(config.to_json(), encoding="utf-8")
        world = around.world(base, http)
        agent = world.new_agent("durable")

        with service_process(config_file, base) as process:
            client_id, secret = world.registered(agent)
            live = world.full_flow(agent, client_id, secret, ["orders:read"])["access_token"]
            dead = world.full_flow(agent, client_id, secret, ["orders:read"])["access_token"]
            used = agent.attest(base, world.clock)
            assert world.authorize(agent, client_id, ["orders:read"], attestation=used).is_success
            revoke = http.post(
                f"{base}/ath/revoke",
                json={"token": dead, "client_id": client_id, "client_secret": secret},
            )
            assert revoke.status_code == 200
            assert world.api(live, agent).status_code == 200
            process.kill()  # SIGKILL: no shutdown hooks, no flush
            process.wait(timeout=10)
            assert process.returncode == -9

        with service_process(config_file, base):
            assert world.api(live, agent).status_code == 200
            revoked = world.api(dead, agent)
            assert revoked.status_code == 401 and revoked.json()["code"] == "TOKEN_REVOKED"
            status = http.get(f"{base}/ath/agents/{client_id}", auth=(client_id, secret))
            assert status.status_code == 200 and status.json()["agent_status"] == "approved"
            # The jti replay store survived too: the attestation used before the kill is spent.
            replay = world.authorize(agent, client_id, ["orders:read"], attestation=used)
            assert replay.status_code == 401 and replay.json()["code"] == "INVALID_ATTESTATION"
            events = {e["event"] for e in world.audit(agent_id=agent.agent_id)}
            assert {"agent_registered", "access_granted", "token_revoked"} <= events
