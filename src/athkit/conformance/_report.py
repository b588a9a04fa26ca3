"""The conformance report three ways: a rich table for a terminal, JSON, and one HTML file."""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from athkit.conformance._results import ConformanceReport

_STYLE = {"pass": "green", "fail": "bold red", "skip": "yellow"}


def print_report(report: ConformanceReport, console: Console) -> None:
    """The table of checks and a one-line verdict."""
    table = Table(title=f"ATH conformance: {escape(report.target)} ({report.mode or '?'} mode)")
    for column in ("check", "spec", "what is checked", "result", "detail"):
        table.add_column(column, overflow="fold")
    for r in report.results:
        style = _STYLE[r.outcome]
        table.add_row(
            r.id, r.section, escape(r.title), f"[{style}]{r.outcome}[/]", escape(r.detail)
        )
    console.print(table)
    verdict = "[green]conformant[/]" if report.ok else "[bold red]NOT conformant[/]"
    console.print(
        f"{report.count('pass')} passed, {report.count('fail')} failed, "
        f"{report.count('skip')} skipped in {report.duration:.1f} s "
        f"(consent: {report.driver}): {verdict}"
    )


def report_json(report: ConformanceReport) -> str:
    """The report as one JSON document."""
    return json.dumps(report.to_dict(), indent=2)


def report_html(report: ConformanceReport) -> str:
    """A standalone HTML page (no scripts, no external resources)."""
    when = datetime.fromtimestamp(report.started, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    rows = "\n".join(
        f'<tr class="{r.outcome}"><td><code>{html.escape(r.id)}</code></td>'
        f"<td>{html.escape(r.section)}</td><td>{html.escape(r.title)}</td>"
        f"<td>{r.outcome}</td><td>{html.escape(r.detail)}</td></tr>"
        for r in report.results
    )
    verdict = "conformant" if report.ok else "NOT conformant"
    target = html.escape(report.target)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>ATH conformance: {target}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #1d2330; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ text-align: left; padding: .35rem .5rem; border-bottom: 1px solid #e6e8ec;
          vertical-align: top; }}
tr.pass td:nth-child(4) {{ color: #1b5e2b; }} tr.fail td:nth-child(4) {{ color: #9b1c1c;
font-weight: 600; }} tr.skip td:nth-child(4) {{ color: #8a6d00; }}
</style></head><body>
<h1>ATH 0.1 conformance</h1>
<p id="summary"><strong>{target}</strong> ({html.escape(report.mode or "?")} mode),
consent by the {html.escape(report.driver)} driver, {when}:
{report.count("pass")} passed, {report.count("fail")} failed, {report.count("skip")} skipped
— <strong>{verdict}</strong>.</p>
<table><thead><tr><th>check</th><th>spec</th><th>what is checked</th><th>result</th>
<th>detail</th></tr></thead><tbody>
{rows}
</tbody></table></body></html>
"""
