"""The long random run, briefly: the README's commands are the real ones, and a few seconds of
it against the shared servers end with zero 5xx and printed counts."""

from __future__ import annotations

import shlex

from tests.docs import code_blocks
from tests.robustness._world import World
from tests.robustness.longrun import build_parser, run_random


def test_readme_commands_are_the_real_ones() -> None:
    (block,) = code_blocks("Hostile input and races", "bash")
    properties, longrun = block.strip().splitlines()
    assert properties.split()[:2] == ["ATH_LONG_PROPERTIES=1", ".venv/bin/pytest"]
    assert "tests/robustness" in properties
    args = shlex.split(longrun)
    assert args[:3] == [".venv/bin/python", "-m", "tests.robustness.longrun"]
    assert build_parser().parse_args(args[3:]).seconds == 300


def test_a_short_random_run_has_no_5xx(world: World) -> None:
    report = run_random(world, seconds=4)
    text = report.render()
    print(text)
    assert report.sent > 20
    assert report.ok, text
    assert "5xx answers: 0; failed checks: 0" in text
