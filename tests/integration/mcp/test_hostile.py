"""Property test: hostile requests to the ATH-guarded MCP endpoint (``mount_mcp``) never get a
5xx, get the documented error shape, and are answered in bounded time."""

from __future__ import annotations

import httpx
from hypothesis import given

from tests.integration.mcp.conftest import McpNative
from tests.robustness._hostile import Probe, check_answer, probes
from tests.robustness._world import Credentials, Endpoint, World


def test_hostile_mcp_requests_never_5xx(mcp_native: McpNative) -> None:
    world = World(
        endpoints=[Endpoint("mcp", mcp_native.url, m, "/mcp") for m in ("GET", "POST", "DELETE")],
        credentials=Credentials(),
        servers={"mcp": mcp_native.url},
    )
    with httpx.Client(timeout=30) as http:

        @given(probe=probes(world))
        def run(probe: Probe) -> None:
            response, seconds = probe.send(http)
            check_answer(probe, response, seconds)

        run()
