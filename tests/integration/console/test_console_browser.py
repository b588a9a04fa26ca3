"""The console in Debian's Chromium, against a real gateway world on 127.0.0.1.

An operator signs in, approves a pending agent with a subset of its scopes, suspends an agent,
revokes a token and filters the audit log; a user signs in through the provider's own OAuth
login and revokes an agent on Connected agents. Each time, the agent's next call shows it.

Screenshots of each page go to ``$ATH_SCREENSHOTS`` when set (the README's come from
``ATH_SCREENSHOTS=docs/images``), else to the test's temporary directory.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.integration.console.helpers import OPERATOR, OPERATOR_PASSWORD, add_operator
from tests.integration.gateway.harness import USERS, GatewayWorld, running_gateway_world
from tests.integration.native.harness import PASSWORD

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayWorld]:
    with running_gateway_world(tmp_path_factory.mktemp("console-browser")) as running:
        add_operator(running.app.settings.database_url, running.base, OPERATOR, OPERATOR_PASSWORD)
        yield running


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = os.environ.get("ATH_SCREENSHOTS")
    path = Path(target) if target else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _snap(page: Page, shots: Path, name: str) -> None:
    page.set_viewport_size({"width": 1200, "height": 800})
    page.screenshot(path=str(shots / f"console-{name}.png"), full_page=True)


def _sign_in(page: Page, world: GatewayWorld, path: str = "/admin/") -> None:
    page.goto(f"{world.base}{path}")
    # No session: the console sends the browser to its sign-in page first.
    assert "/admin/login" in page.url
    page.locator("#username").fill(OPERATOR)
    page.locator("#password").fill(OPERATOR_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name="Sign out").wait_for()
    assert page.url.endswith(path)


def test_approve_a_subset_and_the_token_holds_exactly_it(
    world: GatewayWorld, browser_page: Page, shots: Path
) -> None:
    agent = world.new_agent()
    registration = world.register(
        agent, {"mail": ["mail:read", "mail:send"], "cal": ["cal:read", "cal:write"]}
    )
    assert registration["agent_status"] == "pending"
    page = browser_page
    page.goto(f"{world.base}/admin/login")
    _snap(page, shots, "sign-in")
    _sign_in(page, world, "/admin/review")
    card = page.locator(f"section.review[data-client-id='{registration['client_id']}']")
    assert card.locator(".agent-name").inner_text() == f"{agent.name} agent"
    assert agent.agent_id in card.locator(".identity-document").inner_text()
    _snap(page, shots, "review")
    # Approve mail:read and cal:read only.
    card.locator("input[value='mail mail:send']").uncheck()
    card.locator("input[value='cal cal:write']").uncheck()
    card.get_by_role("button", name="Approve ticked scopes").click()
    page.get_by_text("Scopes set.").wait_for()

    shown = world.admin("GET", f"/agents/{registration['client_id']}").json()
    assert shown["status"] == "approved"
    approved = {p["provider_id"]: p["approved_scopes"] for p in shown["providers"]}
    assert approved == {"mail": ["mail:read"], "cal": ["cal:read"]}
    mail = world.connect(agent, registration, "mail", ["mail:read"])
    cal = world.connect(agent, registration, "cal", ["cal:read"])
    assert mail["effective_scopes"] == ["mail:read"]
    assert cal["effective_scopes"] == ["cal:read"]
    refused = world.authorize(agent, registration["client_id"], "cal", ["cal:read", "cal:write"])
    assert refused.status_code == 403 and refused.json()["code"] == "SCOPE_NOT_APPROVED"
    assert refused.json()["details"]["denied_scopes"] == ["cal:write"]
    sent = world.call(mail["access_token"], agent, "POST", "/mail/messages", content=b"{}")
    assert sent.status_code == 403 and sent.json()["code"] == "SCOPE_NOT_APPROVED"


def test_suspend_an_agent_and_its_next_call_fails(
    world: GatewayWorld, browser_page: Page, shots: Path
) -> None:
    agent = world.new_agent()
    registration = world.register(agent, {"mail": ["mail:read"]})
    token = world.connect(agent, registration, "mail", ["mail:read"])["access_token"]
    assert world.call(token, agent, "GET", "/mail/messages").status_code == 200
    page = browser_page
    _sign_in(page, world, "/admin/agents")
    row = page.locator(f"#agents tr[data-client-id='{registration['client_id']}']")
    assert row.locator(".token-count").inner_text() == "1"
    _snap(page, shots, "agents")
    row.locator(".agent-name").click()
    page.locator("#reason").fill("key leaked in a public repository")
    _snap(page, shots, "agent")
    page.get_by_role("button", name="Suspend").click()
    page.get_by_text("Suspended.").wait_for()
    assert "key leaked in a public repository" in page.content()

    dead = world.call(token, agent, "GET", "/mail/messages")
    assert dead.status_code == 401 and dead.json()["code"] == "TOKEN_REVOKED"
    again = world.authorize(agent, registration["client_id"], "mail", ["mail:read"])
    assert again.status_code == 403 and again.json()["code"] == "AGENT_UNAPPROVED"


def test_revoke_one_token_from_the_tokens_page(
    world: GatewayWorld, browser_page: Page, shots: Path
) -> None:
    agent = world.new_agent()
    registration = world.register(agent, {"mail": ["mail:read"], "cal": ["cal:read"]})
    mail = world.connect(agent, registration, "mail", ["mail:read"])["access_token"]
    cal = world.connect(agent, registration, "cal", ["cal:read"], user="bob")["access_token"]
    page = browser_page
    _sign_in(page, world, f"/admin/tokens?client_id={registration['client_id']}")
    rows = page.locator("#tokens tr[data-token-id]")
    assert rows.count() == 2
    _snap(page, shots, "tokens")
    rows.filter(has_text=USERS["alice"]).get_by_role("button", name="Revoke").click()
    page.get_by_text("Revoked.").wait_for()
    assert page.locator("#tokens tr[data-token-id]").count() == 1

    dead = world.call(mail, agent, "GET", "/mail/messages")
    assert dead.status_code == 401 and dead.json()["code"] == "TOKEN_REVOKED"
    # The other token (bob's, at cal) still works.
    assert world.call(cal, agent, "GET", "/cal/messages").status_code == 200


def test_filter_the_audit_log_to_one_agent(
    world: GatewayWorld, browser_page: Page, shots: Path
) -> None:
    first, second = world.new_agent(), world.new_agent()
    for agent in (first, second):
        registration = world.register(agent, {"mail": ["mail:read"]})
        world.connect(agent, registration, "mail", ["mail:read"])
    page = browser_page
    _sign_in(page, world, "/admin/audit")
    page.locator("input[name=agent_id]").fill(first.agent_id)
    page.get_by_role("button", name="Filter").click()
    page.locator("#audit tr.event").first.wait_for()
    agents = page.locator("#audit tr.event td.agent").all_inner_texts()
    assert agents and set(agents) == {first.agent_id}
    events = set(page.locator("#audit tr.event td:nth-child(2)").all_inner_texts())
    assert {"agent_registered", "authorization_started", "access_granted"} <= events
    _snap(page, shots, "audit")
    # The export holds the same events as JSON lines.
    with page.expect_download() as download:
        page.get_by_role("link", name="Export JSON lines").click()
    lines = Path(download.value.path()).read_text().splitlines()
    assert lines and all(f'"agent_id":"{first.agent_id}"' in line for line in lines)
    # The overview and providers pages, for the README.
    page.get_by_role("link", name="Overview").click()
    assert int(page.locator("#handshakes").inner_text()) >= 2
    assert page.locator("svg.chart rect").count() == 48
    _snap(page, shots, "overview")
    page.get_by_role("link", name="Providers").click()
    mail = page.locator("section[data-provider-id=mail]")
    assert "reachable (HTTP" in mail.locator(".reachability").inner_text()
    assert "mail-gateway-client-secret" not in page.content()
    _snap(page, shots, "providers")


def test_a_user_revokes_an_agent_on_connected_agents(
    world: GatewayWorld, browser_page: Page, shots: Path
) -> None:
    agent = world.new_agent()
    registration = world.register(agent, {"mail": ["mail:read"], "cal": ["cal:read"]})
    mail = world.connect(agent, registration, "mail", ["mail:read"])["access_token"]
    cal = world.connect(agent, registration, "cal", ["cal:read"])["access_token"]
    page = browser_page
    page.goto(f"{world.base}/account/agents")
    page.get_by_role("link", name="Sign in with Test Mail").click()
    # The provider's own login page (our OAuth server), then its consent to "profile".
    page.locator("#username").fill("alice")
    page.locator("#password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.locator("button[value=allow]").click()
    table = page.locator("#connected-agents")
    table.wait_for()
    row = table.locator(f"tr[data-client-id='{registration['client_id']}']")
    assert row.locator(".agent-name").inner_text() == f"{agent.name} agent"
    assert "mail:read" in row.inner_text() and "UTC" in row.inner_text()
    assert "cal:read" not in table.inner_text()  # only what the user holds at this provider
    _snap(page, shots, "connected-agents")
    row.get_by_role("button", name="Revoke").click()
    page.get_by_text("Revoked.").wait_for()
    assert page.locator(f"tr[data-client-id='{registration['client_id']}']").count() == 0

    dead = world.call(mail, agent, "GET", "/mail/messages")
    assert dead.status_code == 401 and dead.json()["code"] == "TOKEN_REVOKED"
    # Signed in at mail, the user revoked mail only: the agent's calendar token still works.
    assert world.call(cal, agent, "GET", "/cal/messages").status_code == 200
