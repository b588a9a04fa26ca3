"""``ath conformance URL``: run the conformance kit against any ATH server."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from athkit.conformance import (
    BrowserDriver,
    ConformanceConfig,
    ConsentDriver,
    FollowRedirectsDriver,
    FormsDriver,
    print_report,
    report_html,
    report_json,
    run_conformance,
)

EXIT_NOT_CONFORMANT = 1
EXIT_USAGE = 2


def parse_headers(values: list[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for value in values:
        name, sep, content = value.partition(":")
        if not sep or not name.strip():
            raise typer.BadParameter(f"--header wants 'Name: value', got {value!r}")
        headers[name.strip()] = content.strip()
    return headers


def _driver(consent: str, username: str | None, password: str | None) -> ConsentDriver:
    if consent == "forms":
        if not username or not password:
            raise typer.BadParameter(
                "--consent forms signs in as a test user: give --username and --password "
                "(or ATH_CONFORMANCE_USERNAME / ATH_CONFORMANCE_PASSWORD)"
            )
        return FormsDriver(username, password)
    if consent == "follow":
        return FollowRedirectsDriver()
    if consent == "browser":
        return BrowserDriver(announce=lambda text: typer.echo(text, err=True))
    raise typer.BadParameter(f"--consent is forms, follow or browser, not {consent!r}")


def conformance(
    url: Annotated[str, typer.Argument(help="The server's base URL (gateway or native).")],
    consent: Annotated[
        str,
        typer.Option(
            "--consent",
            help="forms (athkit's login and consent forms), follow (a provider that approves "
            "by redirects alone) or browser (you consent in your browser).",
        ),
    ] = "forms",
    username: Annotated[
        str | None,
        typer.Option("--username", envvar="ATH_CONFORMANCE_USERNAME", help="Test user (forms)."),
    ] = None,
    password: Annotated[
        str | None,
        typer.Option("--password", envvar="ATH_CONFORMANCE_PASSWORD", help="Its password (forms)."),
    ] = None,
    provider: Annotated[
        str | None, typer.Option("--provider", help="Provider to test (default: the first).")
    ] = None,
    scope: Annotated[
        list[str] | None,
        typer.Option("--scope", help="Scopes to request (repeatable; default: all offered)."),
    ] = None,
    call: Annotated[
        str | None,
        typer.Option(
            "--call",
            help="A protected API call the scopes allow, 'METHOD /path' (proxy path or under "
            "api_base); enables the token-binding, proxy and revocation-effect checks.",
        ),
    ] = None,
    header: Annotated[
        list[str] | None,
        typer.Option("--header", "-H", help="'Name: value' on every request (repeatable)."),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    html_path: Annotated[
        Path | None, typer.Option("--html", help="Also write the report as an HTML file.")
    ] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds per request.")] = 20.0,
) -> None:
    """Check an ATH server against every MUST of ATH 0.1 (black box, over HTTP).

    Agent identity documents are served on 127.0.0.1 during the run, so the server must be
    allowed to fetch loopback http identity URLs (a development setting). Exit status 0 when no
    check failed, 1 when one did, 2 for bad arguments.
    """
    if not url.startswith(("http://", "https://")):
        raise typer.BadParameter("URL must start with http:// or https://")
    api_call: tuple[str, str] | None = None
    if call is not None:
        method, _, path = call.strip().partition(" ")
        if not method or not path.strip().startswith("/"):
            raise typer.BadParameter("--call wants 'METHOD /path', e.g. 'GET /messages'")
        api_call = (method.upper(), path.strip())
    scopes = [s for item in scope or [] for s in item.split(",") if s] or None
    config = ConformanceConfig(
        url=url,
        consent=_driver(consent, username, password),
        provider=provider,
        scopes=scopes,
        call=api_call,
        headers=parse_headers(header or []),
        timeout=timeout,
    )
    report = run_conformance(config)
    if html_path is not None:
        html_path.write_text(report_html(report), encoding="utf-8")
    if json_output:
        sys.stdout.write(report_json(report) + "\n")
    else:
        print_report(report, Console())
        if html_path is not None:
            typer.echo(f"HTML report: {html_path}")
    raise typer.Exit(0 if report.ok else EXIT_NOT_CONFORMANT)


def register_commands(app: typer.Typer) -> None:
    """Add ``ath conformance`` to the CLI."""
    app.command(name="conformance")(conformance)
