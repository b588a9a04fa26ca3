"""``ath demo``: start the servers, tell the story, print the table; optionally keep serving."""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass
from typing import IO

import httpx
from rich.console import Console

from athkit.agent import ATHClientError
from athkit.demo._native import NativeStory
from athkit.demo._report import JsonReporter, Reporter, RichReporter, Step, Summary
from athkit.demo._stack import native_stack
from athkit.demo._story import Story, StoryError

INTRO = (
    "The ATH Shop (a native ATH service), its OAuth server and the agents' identity "
    "hosts are running on this machine with a temporary database. ShopBot has a fresh ES256 "
    "key; every attestation below is verified for real."
)


@dataclass(frozen=True)
class DemoOptions:
    """What ``ath demo`` was asked to do."""

    json: bool = False
    browser: bool = False
    serve: bool = False
    gateway: bool = False


def _reporter(options: DemoOptions, out: IO[str]) -> Reporter:
    if options.json:
        return JsonReporter(out)
    # A pipe or a log file gets 100 columns rather than rich's 80, so codes are not cut.
    width = None if out.isatty() else 100
    return RichReporter(Console(file=out, highlight=False, width=width))


def run_demo(
    options: DemoOptions,
    out: IO[str] | None = None,
    stop: threading.Event | None = None,
    *,
    password: str | None = None,
) -> Summary:
    """Run the whole story once; with ``serve``, keep the servers up until ``stop`` (Ctrl-C).

    ``password`` is the demo user's (random when not given; printed with ``--browser`` and
    ``--serve``, where a person logs in).
    """
    started = time.monotonic()
    out = out or sys.stdout
    reporter = _reporter(options, out)
    with native_stack(password=password) as stack:
        reporter.banner(
            INTRO,
            {
                "ATH Shop": stack.shop_url,
                "OAuth server": stack.oauth_url,
                "ShopBot identity": stack.shopbot_id,
            },
        )
        story = Story(reporter, "native", started=started)
        native = NativeStory(stack, story, browser=options.browser)
        try:
            native.run()
        except (StoryError, ATHClientError, httpx.HTTPError) as exc:
            # A step that could not even be attempted ends the story, never with a traceback.
            story.record(
                Step(
                    step="aborted",
                    title="The story stopped",
                    ok=False,
                    outcome="error",
                    received=[str(exc)],
                )
            )
        finally:
            native.close()
        summary = story.finish()
        if options.serve:
            reporter.banner(
                "Everything keeps running. Explore in a browser; press Ctrl-C to stop.",
                {
                    "Shop": stack.shop_url,
                    "Connected agents": f"{stack.shop_url}/account/agents",
                    "Discovery": f"{stack.shop_url}/.well-known/ath-app.json",
                    "OAuth server": stack.oauth_url,
                    "Log in as": f"{stack.username} / {stack.password}",
                },
                kind="serving",
            )
            waiter = stop or threading.Event()
            try:
                while not waiter.wait(0.5):
                    pass
            except KeyboardInterrupt:
                pass
    return summary
