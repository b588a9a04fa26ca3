"""``ath config``: named servers, the default agent id, key path, name and developer."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from athkit.agent import (
    ServerEntry,
    check_default_headers,
)
from athkit.cli._agent_output import Output, handles_errors
from athkit.cli._options import (
    JsonOpt,
    Setup,
    parse_headers,
)

# --- config ----------------------------------------------------------------------------------

config_app = typer.Typer(
    name="config", help="Named servers, default agent id and key path.", no_args_is_help=True
)

_SETTINGS = {
    "agent-id": "agent_id",
    "key-path": "key_path",
    "name": "name",
    "developer-name": "developer_name",
    "developer-id": "developer_id",
    "default-server": "default_server",
}


def _show_config(out: Output, setup: Setup) -> None:
    cfg = setup.config
    data = cfg.model_dump(mode="json", exclude_none=True)
    data["config_dir"] = str(setup.directory)
    for entry in data.get("servers", {}).values():
        if "headers" in entry:  # values may be credentials (a gateway's session header)
            entry["headers"] = sorted(entry["headers"])

    def render(console: Console) -> None:
        console.print(f"Config directory: [bold]{escape(str(setup.directory))}[/]")
        for setting, attr in _SETTINGS.items():
            value = getattr(cfg, attr)
            console.print(f"  {setting:15} {escape(str(value)) if value else '[dim]unset[/]'}")
        table = Table(title="Servers")
        for column in ("name", "url", "mode", "headers", ""):
            table.add_column(column)
        for name, entry in sorted(cfg.servers.items()):
            mark = "default" if name == cfg.default_server else ""
            names = ", ".join(sorted(entry.headers or {}))
            table.add_row(escape(name), escape(entry.url), entry.mode, escape(names), mark)
        console.print(table)

    out.result(data, render)


def _save_and_show(setup: Setup, json_output: bool) -> None:
    setup.config.save(setup.directory)
    _show_config(Output(json_output), setup)


def _setting(name: str) -> str:
    """The AgentConfig attribute behind a setting's name on the command line."""
    attr = _SETTINGS.get(name)
    if attr is None:
        raise ValueError(f"unknown setting {name!r}; one of: {', '.join(_SETTINGS)}")
    return attr


@config_app.command("show")
@handles_errors()
def config_show(json_output: JsonOpt = False) -> None:
    """Show the configuration."""
    _show_config(Output(json_output), Setup.load())


@config_app.command("set-server")
@handles_errors()
def config_set_server(
    name: Annotated[str, typer.Argument(help="A short name, e.g. shop.")],
    url: Annotated[str, typer.Argument(help="The base URL.")],
    mode: Annotated[str, typer.Option("--mode", help="auto | gateway | native")] = "auto",
    default: Annotated[bool, typer.Option("--default", help="Make it the default.")] = False,
    header: Annotated[
        list[str] | None,
        typer.Option(
            "--header", "-H", help="'Name: value' to send on every request to it (repeatable)."
        ),
    ] = None,
    json_output: JsonOpt = False,
) -> None:
    """Add or change a named server (``--header`` replaces its saved headers)."""
    if "://" in name:
        raise ValueError("the NAME comes first, then the URL")
    setup = Setup.load()
    headers = check_default_headers(parse_headers(header))
    setup.config.servers = {
        **setup.config.servers,
        name: ServerEntry.model_validate({"url": url, "mode": mode, "headers": headers or None}),
    }
    if default or setup.config.default_server is None:
        setup.config.default_server = name
    _save_and_show(setup, json_output)


@config_app.command("remove-server")
@handles_errors()
def config_remove_server(name: str, json_output: JsonOpt = False) -> None:
    """Forget a named server (its stored credentials stay in the credential store)."""
    setup = Setup.load()
    if name not in setup.config.servers:
        raise ValueError(f"no server named {name!r}")
    setup.config.servers = {k: v for k, v in setup.config.servers.items() if k != name}
    if setup.config.default_server == name:
        setup.config.default_server = None
    _save_and_show(setup, json_output)


@config_app.command("set")
@handles_errors()
def config_set(
    setting: Annotated[str, typer.Argument(help=", ".join(_SETTINGS))],
    value: Annotated[str, typer.Argument()],
    json_output: JsonOpt = False,
) -> None:
    """Set a default (agent-id, key-path, name, developer-name, developer-id, default-server)."""
    setup = Setup.load()
    attr = _setting(setting)
    if attr == "default_server" and value not in setup.config.servers:
        raise ValueError(f"no server named {value!r}; add it with `ath config set-server`")
    if attr == "key_path":
        value = str(Path(value).expanduser().resolve())
    setattr(setup.config, attr, value)
    _save_and_show(setup, json_output)


@config_app.command("unset")
@handles_errors()
def config_unset(setting: str, json_output: JsonOpt = False) -> None:
    """Clear a default."""
    setup = Setup.load()
    attr = _setting(setting)
    setattr(setup.config, attr, None)
    _save_and_show(setup, json_output)


def register_commands(app: typer.Typer) -> None:
    """Add the ``ath config`` group to the ``ath`` app."""
    app.add_typer(config_app, name="config")
