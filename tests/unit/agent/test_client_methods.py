"""The clients' methods are the core's operations: same names, signatures, docstrings and
result types, awaited on AsyncATHClient and blocking on ATHClient. No network here."""

from __future__ import annotations

import inspect
import textwrap
from pathlib import Path

import pytest
from mypy import api as mypy_api

from athkit.agent import AsyncATHClient, ATHClient, generate_key
from athkit.agent._client import _Common, _Operation
from athkit.agent._core import ClientCore

AGENT = "http://127.0.0.1:1/.well-known/agent.json"
OPERATIONS = {
    "discover",
    "register",
    "status",
    "authorize",
    "exchange_token",
    "revoke",
    "proxy",
    "request",
}
# Operations of the core that the clients do not expose: proxy() and request() are its faces.
INTERNAL = {"api_call"}


def _core_operations() -> set[str]:
    return {
        name
        for name, member in vars(ClientCore).items()
        if not name.startswith("_")
        and inspect.isfunction(member)
        and str(inspect.signature(member).return_annotation).startswith("Operation[")
    }


def test_every_core_operation_is_a_method_of_both_clients() -> None:
    listed = {name for name, value in vars(_Common).items() if isinstance(value, _Operation)}
    assert listed == OPERATIONS
    assert _core_operations() == OPERATIONS | INTERNAL


async def test_async_methods_are_coroutine_functions_with_the_core_signature() -> None:
    async with AsyncATHClient(
        "http://127.0.0.1:1", agent_id=AGENT, private_key=generate_key()
    ) as client:
        for name in OPERATIONS:
            method = getattr(client, name)
            core = getattr(client._core, name)
            assert inspect.ismethod(method) and method.__self__ is client, name
            assert inspect.iscoroutinefunction(method), name
            assert inspect.signature(method) == inspect.signature(core), name
            assert method.__doc__ == core.__doc__ and method.__doc__, name
            assert method.__name__ == name
            unbound = getattr(AsyncATHClient, name)
            assert inspect.iscoroutinefunction(unbound) and unbound is method.__func__, name


def test_sync_methods_are_plain_functions_with_the_core_signature() -> None:
    with ATHClient("http://127.0.0.1:1", agent_id=AGENT, private_key=generate_key()) as client:
        for name in OPERATIONS:
            method = getattr(client, name)
            core = getattr(client._core, name)
            assert inspect.ismethod(method) and method.__self__ is client, name
            assert inspect.isfunction(method.__func__), name
            assert not inspect.iscoroutinefunction(method), name
            assert inspect.signature(method) == inspect.signature(core), name
            assert method.__doc__ == core.__doc__ and method.__doc__, name
            unbound = getattr(ATHClient, name)
            assert not inspect.iscoroutinefunction(unbound) and unbound is method.__func__, name


@pytest.mark.timeout(300)
def test_user_code_sees_the_core_result_types(tmp_path: Path) -> None:
    """mypy --strict over a user's snippet: awaited on one client, direct on the other, and
    wrong arguments or a wrong await are errors."""
    snippet = tmp_path / "user.py"
    snippet.write_text(
        textwrap.dedent(
            """\
            from typing import assert_type

            import httpx

            from athkit.agent import AsyncATHClient, ATHClient
            from athkit.protocol import (
                AppDiscovery, GatewayDiscovery, RegisterResponse, TokenResponse
            )

            DEV = {"name": "Acme", "id": "acme"}


            async def use(a: AsyncATHClient, s: ATHClient) -> None:
                assert_type(await a.discover(), GatewayDiscovery | AppDiscovery)
                assert_type(s.discover(), GatewayDiscovery | AppDiscovery)
                assert_type(await a.register({"p": ["r"]}, developer=DEV), RegisterResponse)
                assert_type(s.register({"p": ["r"]}, developer=DEV), RegisterResponse)
                assert_type(s.exchange_token("c", "s"), TokenResponse)
                assert_type(s.revoke(), None)
                assert_type(await a.proxy("p", "GET", "/x", params={}), httpx.Response)
                assert_type(s.request("GET", "/x"), httpx.Response)
                s.discover(1)  # error 1
                await s.discover()  # error 2
                await a.proxy("p", "GET", "/x", bogus=1)  # error 3
            """
        )
    )
    root = Path(__file__).resolve().parents[3]
    stdout, stderr, _ = mypy_api.run(
        ["--config-file", str(root / "pyproject.toml"), "--strict", str(snippet)]
    )
    errors = [line for line in stdout.splitlines() if ": error:" in line]
    lines = snippet.read_text().splitlines()
    flagged = sorted(int(line.split(":")[1]) for line in errors)
    expected = [n for n, text in enumerate(lines, 1) if "# error" in text]
    assert flagged == expected, stdout + stderr
