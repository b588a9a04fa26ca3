"""The completion page (ATH §4.4, our decision): where the user's browser ends when the agent
gave no redirect URI of its own — or gave the implementer's own callback, the public SDKs'
default. It shows the one-time ATH code, a copy button, and the exact command or SDK call that
hands the code to the agent.

The page keeps the shared look (``athkit.pages``) and its security headers; the one inline
script (the copy button) is allowed by its hash in the Content-Security-Policy, nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shlex
from functools import lru_cache

from jinja2 import Environment, PackageLoader
from starlette.responses import HTMLResponse

from athkit.pages import PAGE_HEADERS, page_templates, render_page

# Copies the code from the button's data attribute; says so (or says to select it by hand).
COPY_SCRIPT = (
    "document.getElementById('copy-code').addEventListener('click',function(e){"
    "var s=document.getElementById('copy-status'),c=e.currentTarget.dataset.copy;"
    "if(!navigator.clipboard){s.textContent='Select the code and copy it.';return;}"
    "navigator.clipboard.writeText(c).then(function(){s.textContent='Copied.';},"
    "function(){s.textContent='Select the code and copy it.';});});"
)
_SCRIPT_HASH = base64.b64encode(hashlib.sha256(COPY_SCRIPT.encode()).digest()).decode()
COMPLETION_CSP = f"{PAGE_HEADERS['Content-Security-Policy']}; script-src 'sha256-{_SCRIPT_HASH}'"


@lru_cache(maxsize=1)
def _templates() -> Environment:
    return page_templates(PackageLoader("athkit.server", "templates"))


def cli_command(base_url: str, session_id: str, code: str) -> str:
    """The ``ath`` command that exchanges ``code`` for a token."""
    return shlex.join(
        ["ath", "authorize", "--server", base_url, "--session", session_id, "--code", code]
    )


def sdk_call(session_id: str, code: str) -> str:
    """The SDK call that exchanges ``code`` (same signature in athkit and ath-sdk)."""
    return f"client.exchange_token({json.dumps(code)}, {json.dumps(session_id)})"


def completion_page(
    *,
    base_url: str,
    session_id: str,
    code: str,
    agent_name: str | None,
    minutes: int,
) -> HTMLResponse:
    """The HTML page that shows the one-time code and how to hand it to the agent."""
    agent = agent_name or "the agent"
    return render_page(
        _templates(),
        "athkit/completion.html",
        headers={"Content-Security-Policy": COMPLETION_CSP},
        title="Authorization complete",
        message=f"You allowed {agent} access.",
        agent=agent,
        code=code,
        minutes=max(1, minutes),
        session_id=session_id,
        base_url=base_url,
        cli_command=cli_command(base_url, session_id, code),
        sdk_call=sdk_call(session_id, code),
        script=COPY_SCRIPT,
    )
