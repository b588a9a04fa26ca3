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

import pytest

from athkit.gateway import config_from_mapping, create_gateway_app, nginx_config
from athkit.testing import (
    NginxHandle,
    ServerHandle,
    free_port,
    nginx_binary,
    run_nginx,
    serve_in_thread,
)
from tests.integration.gateway.harness import GatewayWorld, open_world, start_backends

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
    (tmp / "check_secret").write_text(CHECK_SECRET)
    nginx_port, athkit_port = free_port(), free_port()
    base = f"http://127.0.0.1:{nginx_port}"  # what agents and browsers use
    with contextlib.ExitStack() as stack:
        backends = start_backends(stack, tmp, base)
        backends.mapping["listen"] = f"127.0.0.1:{athkit_port}"
        backends.mapping["forward_auth"] = {"secret_file": str(tmp / "check_secret")}
        config = config_from_mapping(backends.mapping)
        app = create_gateway_app(config, clock=backends.clock)
        athkit_server = stack.enter_context(serve_in_thread(app, port=athkit_port))
        snippet = nginx_config(config, CHECK_SECRET, listen=f"127.0.0.1:{nginx_port}")
        nginx = stack.enter_context(
            run_nginx(snippet, tmp / "nginx", port=nginx_port, workers=workers)
        )
        world = open_world(stack, base, app, backends)
        yield ForwardAuthWorld(world, f"http://127.0.0.1:{athkit_port}", athkit_server, nginx)
