"""How ``ath demo`` tells its story: prose on a terminal (rich), or JSON lines for scripts.

Each step is recorded once as a ``Step`` and handed to a reporter; the final table is built
from what the steps measured, never from constants.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import IO, Any, Protocol

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text


@dataclass
class Step:
    """One step of the story and what it measured."""

    step: str
    title: str
    ok: bool
    outcome: str
    code: str | None = None
    scopes: list[str] | None = None
    details: dict[str, Any] = field(default_factory=dict)
    sent: list[str] = field(default_factory=list)
    received: list[str] = field(default_factory=list)
    why: str = ""


@dataclass
class Row:
    """One line of the closing table."""

    scenario: str
    user_consents: bool
    service_approved: bool
    result: str
    code: str | None
    effective_scopes: list[str]
    step: str


@dataclass
class Summary:
    """The end of a run."""

    ok: bool
    mode: str
    rows: list[Row]
    elapsed_seconds: float
    failed_steps: list[str]


class Reporter(Protocol):
    """Receives the story as it happens."""

    def banner(self, text: str, urls: dict[str, str], kind: str = "start") -> None:
        """What runs where (``kind``: "start", "waiting" for a person, "serving")."""
        ...

    def step(self, step: Step) -> None:
        """One step, as it completes."""
        ...

    def summary(self, summary: Summary) -> None:
        """The closing table."""
        ...


class JsonReporter:
    """One JSON object per line: ``{"type": "step", ...}`` then ``{"type": "summary", ...}``."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def _emit(self, obj: dict[str, Any]) -> None:
        self._stream.write(json.dumps(obj, sort_keys=True) + "\n")
        self._stream.flush()

    def banner(self, text: str, urls: dict[str, str], kind: str = "start") -> None:
        """The servers' URLs."""
        self._emit({"type": kind, "text": text, "urls": urls})

    def step(self, step: Step) -> None:
        """One step, without the prose."""
        data = asdict(step)
        for prose in ("sent", "received", "why", "title"):
            data.pop(prose)
        self._emit({"type": "step", **data})

    def summary(self, summary: Summary) -> None:
        """The table rows and the verdict."""
        self._emit({"type": "summary", **asdict(summary)})


class RichReporter:
    """A readable account on a terminal."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._count = 0

    def banner(self, text: str, urls: dict[str, str], kind: str = "start") -> None:
        """A panel: the opening, a wait for the person, or what keeps running."""
        lines = Text(text + "\n\n")
        for name, url in urls.items():
            lines.append(f"  {name:<22}", style="bold")
            lines.append(url + "\n", style="cyan")
        title = {"start": "ATH demo", "waiting": "Your turn", "serving": "Still running"}
        self._console.print(Panel(lines, title=title.get(kind, "ATH demo"), border_style="blue"))

    def step(self, step: Step) -> None:
        """A numbered step: what was sent, what came back, why."""
        self._count += 1
        mark = "[green]✓[/]" if step.ok else "[red]✗ unexpected[/]"
        self._console.print(f"\n[bold]{self._count:>2}. {step.title}[/]  {mark}")
        grid = Table.grid(padding=(0, 1))
        grid.add_column(width=5, justify="right", style="dim")
        grid.add_column()
        for line in step.sent:
            grid.add_row("→", Text(line))
        for line in step.received:
            grid.add_row("←", Text(line))
        if step.why:
            grid.add_row("", Text(step.why, style="italic"))
        self._console.print(grid)

    def summary(self, summary: Summary) -> None:
        """The closing table, every row measured in this run."""
        table = Table(
            title="What ATH decided in this run (each row measured live)", show_lines=True
        )
        # Codes and scopes are never split inside a word: at 80 columns the result column keeps
        # room for the longest code in parentheses, and lines break only between words.
        table.add_column("Scenario", ratio=3)
        table.add_column("Consent?", no_wrap=True)
        table.add_column("Approved?", no_wrap=True)
        table.add_column("ATH result", ratio=4, min_width=len("(AGENT_NOT_REGISTERED)"))
        for row in summary.rows:
            if row.result == "access":
                result = f"[green]access[/] ({', '.join(row.effective_scopes)})"
            else:
                verb = "blocked" if row.result == "blocked" else "no access"
                result = f"[red]{verb}[/] ({row.code})"
            table.add_row(
                row.scenario,
                "yes" if row.user_consents else "no",
                "yes" if row.service_approved else "no",
                result,
            )
        self._console.print()
        self._console.print(table)
        verdict = (
            f"[green]All steps behaved as ATH requires[/] ({summary.elapsed_seconds:.1f} s)."
            if summary.ok
            else f"[red]Unexpected outcome in: {', '.join(summary.failed_steps)}[/]"
        )
        self._console.print(verdict)
