"""The README mentions only ``ath`` commands that exist (every ``ath ...`` in its code, blocks
and inline, resolves to a real command and subcommand)."""

from __future__ import annotations

import re
import shlex

import typer

from athkit.cli import app
from tests.docs import README


def _mentions() -> list[list[str]]:
    text = README.read_text(encoding="utf-8")
    found: list[str] = []
    for block in re.findall(r"^```(?:bash|sh|console)?\n(.*?)^```", text, re.M | re.S):
        found += [line.split("#", 1)[0].strip() for line in block.splitlines()]
    found += re.findall(r"`(ath [^`]+)`", text)
    words = []
    for line in found:
        if not line.startswith("ath "):
            continue
        try:
            parts = shlex.split(line.replace("|", " "))
        except ValueError:
            parts = line.split()
        words.append(parts[1:3])
    return words


def test_every_ath_command_in_the_readme_exists() -> None:
    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    mentions = _mentions()
    assert len(mentions) > 20
    missing = []
    for words in mentions:
        if not words or words[0].startswith("-"):
            continue
        command = commands.get(words[0])
        sub = getattr(command, "commands", None)
        if command is None or (
            sub is not None
            and len(words) > 1
            and re.fullmatch(r"[a-z][a-z-]*", words[1])
            and words[1] not in sub
        ):
            missing.append(" ".join(words))
    assert not missing, f"the README mentions commands that do not exist: {sorted(set(missing))}"
