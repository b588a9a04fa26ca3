"""``ath demo``: start the servers, tell the story, print the table; optionally keep serving."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

import httpx
from rich.console import Console

from athkit.agent import ATHClientError
from athkit.demo._handshake import HandshakeStory
from athkit.demo._mailstory import MailStory
from athkit.demo._native import NativeStory
from athkit.demo._report import JsonReporter, Reporter, RichReporter, Step, Summary
from athkit.demo._stack import gateway_stack, native_stack
from athkit.demo._story import Story, StoryError
from athkit.protocol import ADMIN_PREFIX, APP_DISCOVERY_PATH, GATEWAY_DISCOVERY_PATH

ATH_IN_ONE_SENTENCE = (
    "ATH, the Agent Trust Handshake, lets an AI agent act for a person only when the service "
    "has approved that agent and the person has consented, and gives it exactly what both "
    "allowed."
)
NATIVE_INTRO = (
    "The ATH Shop (a native ATH service), its OAuth server and the agents' identity hosts are "
    "running on this machine with a temporary database. ShopBot has a fresh ES256 key; every "
    "attestation below is verified for real."
)
MCP_INTRO = (
    "The ATH Shop serves its tools (search products, view the cart, add to cart, place an "
    "order) as an MCP server behind ATH; ShopBot is an MCP client (the official mcp SDK) with a "
    "fresh ES256 key. Its OAuth server and the agents' identity hosts run on this machine with "
    "a temporary database; every attestation and every tool call is checked for real."
)
GATEWAY_INTRO = (
    "Example Mail (an OAuth server and a mail API that know nothing of ATH), the ATH gateway "
    "in front of it and the agents' identity hosts are running on this machine with a "
    "temporary database. MailBot has a fresh ES256 key; every attestation below is verified "
    "for real."
)


@dataclass(frozen=True)
class DemoOptions:
    """What ``ath demo`` was asked to do."""

    json: bool = False
    browser: bool = False
    serve: bool = False
    gateway: bool = False
    mcp: bool = False


@dataclass(frozen=True)
class _Running:
    story: HandshakeStory
    intro: str
    urls: dict[str, str]
    explore: dict[str, str]


def _reporter(options: DemoOptions, out: IO[str]) -> Reporter:
    if options.json:
        return JsonReporter(out)
    # A pipe or a log file gets $COLUMNS (else 100); a terminal its own width.
    columns = os.environ.get("COLUMNS", "")
    width = None if out.isatty() else int(columns) if columns.isdigit() else 100
    return RichReporter(Console(file=out, highlight=False, width=width))


@contextlib.contextmanager
def _start(options: DemoOptions, story: Story, password: str | None) -> Iterator[_Running]:
    if options.gateway:
        with gateway_stack(password=password) as g:
            yield _Running(
                MailStory(g, story, browser=options.browser),
                GATEWAY_INTRO,
                {
                    "ATH gateway": g.gateway_url,
                    "Example Mail OAuth": g.oauth_url,
                    "Example Mail API": g.mail_url,
                    "MailBot identity": g.mailbot_id,
                },
                {
                    "Gateway catalog": g.gateway_url + GATEWAY_DISCOVERY_PATH,
                    "Gateway health": f"{g.gateway_url}/readyz",
                    "Example Mail OAuth": g.oauth_url,
                    "Admin token": g.admin_token,
                    "Log in as": f"{g.username} / {g.password}",
                },
            )
        return
    with native_stack(password=password, mcp=options.mcp) as n:
        if options.mcp:
            from athkit.demo._mcpstory import McpStory

            chosen: HandshakeStory = McpStory(n, story, browser=options.browser)
        else:
            chosen = NativeStory(n, story, browser=options.browser)
        yield _Running(
            chosen,
            MCP_INTRO if options.mcp else NATIVE_INTRO,
            {
                "ATH Shop": n.shop_url,
                "OAuth server": n.oauth_url,
                "ShopBot identity": n.shopbot_id,
                **({"Shop MCP endpoint": f"{n.shop_url}/mcp"} if options.mcp else {}),
            },
            {
                "Shop": n.shop_url,
                "Connected agents": f"{n.shop_url}/account/agents",
                "Discovery": n.shop_url + APP_DISCOVERY_PATH,
                **({"MCP endpoint": f"{n.shop_url}/mcp"} if options.mcp else {}),
                "OAuth server": n.oauth_url,
                "Admin token": n.admin_token,
                "Log in as": f"{n.username} / {n.password}",
            },
        )


def _serving_text(running: _Running, connected: bool) -> str:
    agent = running.story.cast.role.agent_name
    service = running.story.cast.base_url
    admin = running.explore.get("Admin token", "")
    lines = [
        "Everything keeps running; press Ctrl-C to stop."
        + (f" {agent} holds a token again, so Connected agents lists it." if connected else ""),
        "",
        'Next, in another terminal (README "The ath command line"):',
        f"  export ATH_SERVICE={service}",
        '  ath discover --server "$ATH_SERVICE"',
        f'  curl -H "Authorization: Bearer {admin}" {service}{ADMIN_PREFIX}/agents',
    ]
    return "\n".join(lines)


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
    mode = "gateway" if options.gateway else "mcp" if options.mcp else "native"
    story = Story(reporter, mode, started=started)
    with _start(options, story, password) as running:
        reporter.banner(f"{ATH_IN_ONE_SENTENCE}\n\n{running.intro}", running.urls)
        connected = False
        try:
            running.story.run()
            if options.serve and not options.browser:
                connected = running.story.keep_connected()
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
            running.story.close()
        summary = story.finish()
        if options.serve:
            reporter.banner(_serving_text(running, connected), running.explore, kind="serving")
            waiter = stop or threading.Event()
            try:
                while not waiter.wait(0.5):
                    pass
            except KeyboardInterrupt:
                pass
    return summary
