"""The gateway world of ``harness.py`` with a real nginx in front: forward-auth.

nginx (Debian's, started by ``athkit.testing.run_nginx`` on a free loopback port, with the
configuration ``ath gateway nginx-config`` prints) is the gateway's public address: agents and
browsers talk only to it. It forwards the ATH endpoints to athkit, asks athkit's ``/ath/check``
about every ``/ath/proxy/...`` call and forwards allowed ones to the provider APIs itself. athkit
listens on a port of its own, which the tests also use to compare with the built-in proxy.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from athkit.gateway import config_from_mapping, create_gateway_app, nginx_config
from athkit.oauthserver import create_oauth_app
from athkit.protocol import generate_private_key, private_key_to_pem
from athkit.testing import (
    NginxHandle,
    ServerHandle,
    free_port,
    nginx_binary,
    run_nginx,
    serve_in_thread,
)
from tests.integration.gateway.harness import (
    LIMITED_AGENT,
    GatewayWorld,
    OffsetClock,
    gateway_mapping,
    introspecting_check,
    oauth_config,
)
from tests.integration.gateway.upstream import create_upstream_app
from tests.integration.native.harness import IdentityHost

CHECK_SECRET = "forward-auth-shared-secret-0123456789-abcdef"


def require_nginx() -> None:
    """Skip without nginx, unless ATH_REQUIRE_SERVICES=1 (CI installs it): then fail."""
    if nginx_binary() is None:
        if os.environ.get("ATH_REQUIRE_SERVICES") == "1":
            pytest.fail("ATH_REQUIRE_SERVICES=1 but nginx is not installed")
        pytest.skip("nginx is not installed (apt-get install nginx)")


@dataclass
class ForwardAuthWorld:
    """The gateway world seen through nginx (``world``), plus athkit's own address."""

    world: GatewayWorld
    athkit: str
    athkit_server: ServerHandle
    nginx: NginxHandle


@contextlib.contextmanager
def running_forward_auth_world(tmp: Path, *, workers: int = 1) -> Iterator[ForwardAuthWorld]:
    """Providers, identity host, athkit on its own port and nginx in front of it all."""
    clock = OffsetClock()
    context_key = generate_private_key()
    (tmp / "consent_key.pem").write_bytes(private_key_to_pem(context_key))
    (tmp / "check_secret").write_text(CHECK_SECRET)
    nginx_port, athkit_port = free_port(), free_port()
    base = f"http://127.0.0.1:{nginx_port}"  # what agents and browsers use
    athkit = f"http://127.0.0.1:{athkit_port}"
    oauth_ports = {"mail": free_port(), "cal": free_port()}
    oauth_urls = {pid: f"http://127.0.0.1:{port}" for pid, port in oauth_ports.items()}
    identities = IdentityHost()
    with contextlib.ExitStack() as stack:
        for pid, port in oauth_ports.items():
            lifetime = 300 if pid == "mail" else 3600
            config = oauth_config(pid, port, base, context_key, lifetime)
            stack.enter_context(serve_in_thread(create_oauth_app(config, clock=clock), port=port))
        upstreams = {
            pid: stack.enter_context(
                serve_in_thread(
                    create_upstream_app(introspecting_check(pid, url), name=f"{pid}-api")
                )
            )
            for pid, url in oauth_urls.items()
        }
        agents = stack.enter_context(serve_in_thread(identities.app))
        limited_id = f"{agents.url}/agents/{LIMITED_AGENT}/agent.json"
        mapping = gateway_mapping(
            base, tmp, oauth_urls, {p: u.url for p, u in upstreams.items()}, limited_id
        )
        mapping["listen"] = f"127.0.0.1:{athkit_port}"
        mapping["forward_auth"] = {"secret_file": str(tmp / "check_secret")}
        config = config_from_mapping(mapping)
        app = create_gateway_app(config, clock=clock)
        athkit_server = stack.enter_context(serve_in_thread(app, port=athkit_port))
        snippet = nginx_config(config, CHECK_SECRET, listen=f"127.0.0.1:{nginx_port}")
        nginx = stack.enter_context(
            run_nginx(snippet, tmp / "nginx", port=nginx_port, workers=workers)
        )
        world = GatewayWorld(base, app, clock, identities, agents.url, upstreams, httpx.Client())
        world.http = stack.enter_context(
            httpx.Client(timeout=10, event_hooks={"response": [world._record]})
        )
        yield ForwardAuthWorld(world, athkit, athkit_server, nginx)
