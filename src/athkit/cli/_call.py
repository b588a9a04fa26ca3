"""``ath call``: one call to the protected API, through the gateway proxy or to the native
service's ``api_base``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console

from athkit.cli._agent_output import EXIT_OK, EXIT_REFUSED, Output, handles_errors
from athkit.cli._options import Connection, JsonOpt, ProviderOpt, connects, parse_headers


def _read_data(data: str | None) -> bytes | None:
    if data is None:
        return None
    if data == "@-":
        return sys.stdin.buffer.read()
    if data.startswith("@"):
        try:
            return Path(data[1:]).read_bytes()
        except OSError as exc:
            raise ValueError(f"cannot read {data[1:]}: {exc.strerror}") from None
    return data.encode()


def _body_of(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


@handles_errors()
@connects
def call(
    *,
    method: Annotated[str, typer.Argument(help="HTTP method, e.g. GET.")],
    path: Annotated[str, typer.Argument(help="API path, e.g. /messages.")],
    provider: ProviderOpt = None,
    data: Annotated[
        str | None, typer.Option("--data", "-d", help="Request body; @file or @- for stdin.")
    ] = None,
    query: Annotated[
        list[str] | None, typer.Option("--query", "-q", help="name=value (repeatable).")
    ] = None,
    connection: Connection,
    json_output: JsonOpt = False,
) -> None:
    """Call the protected API: the gateway proxy, or the native service's api_base."""
    # -H goes on every request to the server; a Content-Type only on the API call itself.
    every = parse_headers(connection.header)
    headers = {k: every.pop(k) for k in list(every) if k.lower() == "content-type"}
    body = _read_data(data)
    if body is not None and not headers:
        try:
            json.loads(body)
            headers["Content-Type"] = "application/json"
        except ValueError:
            headers["Content-Type"] = "application/octet-stream"
    params: list[tuple[str, str]] = []
    for item in query or []:
        name, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--query wants name=value, got {item!r}")
        params.append((name, value))
    with connection.client(headers=every) as client:
        if client.mode is None:
            client.discover()
        target = provider
        if client.mode == "gateway" and target is None:
            held = client.store.tokens(client.base_url, client.agent_id)
            if len(held) != 1:
                raise ValueError("name the provider with --provider (gateway mode)")
            target = held[0][1].provider_id
        if client.mode == "gateway":
            assert target is not None
            response = client.proxy(
                target, method, path, params=params, headers=headers, content=body
            )
        else:
            response = client.request(
                method, path, provider_id=target, params=params, headers=headers, content=body
            )
    out = Output(json_output)
    result = {
        "status": response.status_code,
        "headers": dict(response.headers),
        "body": _body_of(response),
    }

    def render(console: Console) -> None:
        style = "green" if response.status_code < 400 else "red"
        out.stderr.print(f"[{style}]HTTP {response.status_code}[/]")
        if isinstance(result["body"], str):
            typer.echo(result["body"])
        else:
            console.print_json(data=result["body"])

    out.result(result, render)
    raise typer.Exit(EXIT_OK if response.status_code < 400 else EXIT_REFUSED)


def register_commands(app: typer.Typer) -> None:
    """Add these commands to the ``ath`` app."""
    for command in (call,):
        app.command(command.__name__)(command)
