"""How ``ath`` agent commands speak: rich on a terminal, JSON with ``--json``, and exit codes.

Exit codes (documented in the README, "Build an agent"):

    0  success
    2  user error: bad arguments, missing or broken configuration, key or credential file
    3  refused: the server answered an ATH error (or the stored credentials cannot be used —
       not registered, not authorized, token expired), or an API call answered HTTP >= 400
    4  network failure: the server could not be reached or did not answer in time
    130 interrupted (Ctrl-C)
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from athkit.agent import ATHClientError, CredentialStoreError

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_REFUSED = 3
EXIT_NETWORK = 4
EXIT_INTERRUPTED = 130

P = ParamSpec("P")
R = TypeVar("R")


class Output:
    """Rich text for people, one JSON document on stdout for scripts."""

    def __init__(self, json_mode: bool) -> None:
        self.json_mode = json_mode
        self.console = Console(highlight=False)
        self.stderr = Console(stderr=True, highlight=False)

    def result(self, data: Any, render: Callable[[Console], None] | None = None) -> None:
        """Print the command's result: ``render`` on a terminal, ``data`` as JSON otherwise."""
        if self.json_mode or render is None:
            typer.echo(json.dumps(data, indent=2, sort_keys=True, default=str))
        else:
            render(self.console)

    def info(self, message: str) -> None:
        """A progress note on stderr (never mixed into JSON output)."""
        self.stderr.print(message, soft_wrap=True)

    def error(self, code: str, message: str, **extra: Any) -> None:
        """Report a failure on stdout as JSON, or in red on stderr."""
        if self.json_mode:
            body = {"code": code, "message": message, **{k: v for k, v in extra.items() if v}}
            typer.echo(json.dumps({"error": body}, indent=2, sort_keys=True, default=str))
        else:
            status = extra.get("status")
            where = f" (HTTP {status})" if status else ""
            self.stderr.print(
                f"[bold red]Error[/] [red]{escape(code)}{where}[/]: {escape(message)}",
                soft_wrap=True,
            )
            hint = extra.get("hint")
            if hint:
                self.stderr.print(f"[bold]Next:[/] {escape(str(hint))}", soft_wrap=True)


def handles_errors(json_param: str = "json_output") -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Turn every expected failure into a message and the documented exit code.

    No traceback reaches the user for anything but a bug.
    """

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            out = Output(bool(kwargs.get(json_param, False)))
            try:
                return fn(*args, **kwargs)
            except ATHClientError as exc:
                hint = next_step(exc)
                out.error(exc.code, exc.message, status=exc.status, details=exc.details, hint=hint)
                raise typer.Exit(EXIT_NETWORK if exc.is_network_error else EXIT_REFUSED) from None
            except CredentialStoreError as exc:
                out.error("CONFIG_ERROR", str(exc))
                raise typer.Exit(EXIT_USAGE) from None
            except ValueError as exc:
                out.error("USAGE_ERROR", str(exc))
                raise typer.Exit(EXIT_USAGE) from None
            except KeyboardInterrupt:
                out.error("INTERRUPTED", "stopped by Ctrl-C")
                raise typer.Exit(EXIT_INTERRUPTED) from None

        return wrapper

    return decorate


def next_step(exc: ATHClientError) -> str | None:
    """What to do after a refusal, in ``ath`` commands (``None`` when nothing helps)."""
    details = exc.details
    reason = details.get("reason")
    if exc.code == "SCOPE_NOT_APPROVED" and reason == "scope_violation":
        need = [str(s) for s in details.get("required_scopes") or []]
        if not need:
            return "no scope allows this call at all: check the method and path"
        return (
            f"the token lacks {' or '.join(need)}: ask the user for it with "
            f"`ath authorize [PROVIDER] --scope {need[0]}` (`ath status` shows what the agent "
            "may ask for)"
        )
    if exc.code == "SCOPE_NOT_APPROVED" and reason == "scope_not_approved":
        unknown = [str(s) for s in details.get("unknown_scopes") or []]
        if unknown:
            return f"check the spelling of {', '.join(unknown)}: `ath discover` lists the scopes"
        return (
            "the service has not approved those scopes for this agent: `ath status` shows what it "
            "approved and what awaits review; ask the service's operator for the rest"
        )
    if exc.code == "SCOPE_NOT_APPROVED" and reason == "empty_intersection":
        return "the user allowed none of the approved scopes: run `ath authorize` again"
    if exc.code in ("TOKEN_REVOKED", "TOKEN_EXPIRED", "NOT_AUTHORIZED"):
        return "get a new token: `ath authorize [PROVIDER] --scope ...`"
    if exc.code in ("NOT_REGISTERED", "AGENT_NOT_REGISTERED"):
        return "register first: `ath register --scope ...` (gateway: --provider P=scopes)"
    if exc.code == "AGENT_UNAPPROVED":
        return "the service's operator has not approved the agent yet: `ath status` shows it"
    if exc.code == "NETWORK_ERROR":
        return "check the server address (`ath config show`) and that the server runs"
    return None
