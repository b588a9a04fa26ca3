"""The console over plain HTTP: sign-in, sessions, CSRF, throttling, escaping, and one
deployment's operator against another's data. A real gateway world on 127.0.0.1."""

from __future__ import annotations

import calendar
import contextlib
import html
import json
import re
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from typer.testing import CliRunner

from athkit.cli import app as cli_app
from athkit.console import mount_console
from athkit.server import ServerSettings, create_native_app, memory_stores
from athkit.storage import create_database
from athkit.testing import drive_consent, free_port, serve_in_thread
from tests.integration.console.helpers import (
    MARKUP_DEVELOPER,
    MARKUP_NAME,
    MARKUP_PURPOSE,
    OPERATOR,
    OPERATOR_PASSWORD,
    add_operator,
    csrf_of,
    hidden,
    sign_in,
)
from tests.integration.gateway.harness import USERS, GatewayWorld, running_gateway_world
from tests.integration.native.harness import PASSWORD


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayWorld]:
    with running_gateway_world(tmp_path_factory.mktemp("console-http")) as running:
        add_operator(running.app.settings.database_url, running.base, OPERATOR, OPERATOR_PASSWORD)
        yield running


def _client() -> httpx.Client:
    return httpx.Client(timeout=10, follow_redirects=False)


def _status(world: GatewayWorld, client_id: str) -> str:
    return str(world.admin("GET", f"/agents/{client_id}").json()["status"])


def _audit(world: GatewayWorld, **query: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = world.admin(
        "GET", "/audit", params={"limit": 200, **query}
    ).json()["events"]
    return events


def test_without_a_session_every_page_redirects_to_sign_in(world: GatewayWorld) -> None:
    agent = world.new_agent()
    client_id = world.register(agent, {"mail": ["mail:read"]})["client_id"]
    with _client() as http:
        for path in (
            "/admin/",
            "/admin/review",
            "/admin/agents",
            "/admin/tokens",
            "/admin/providers",
            "/admin/audit?agent_id=x",
            "/admin/audit.jsonl",
        ):
            response = http.get(f"{world.base}{path}")
            assert response.status_code == 303, path
            assert response.headers["location"].startswith("/admin/login?next=%2Fadmin%2F")
        # A forged POST without a session changes nothing.
        forged = http.post(f"{world.base}/admin/agents/{client_id}/suspend", data={"csrf": "x"})
        assert forged.status_code == 303 and "/admin/login" in forged.headers["location"]
    assert _status(world, client_id) == "approved"


def test_sign_in_sets_a_strict_httponly_cookie_and_is_audited(world: GatewayWorld) -> None:
    with _client() as http:
        signed = sign_in(http, world.base)
        assert signed.status_code == 303 and signed.headers["location"] == "/admin/"
        cookie = next(
            h for h in signed.headers.get_list("set-cookie") if h.startswith("ath_console_")
        )
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/admin" in cookie
        home = http.get(f"{world.base}/admin/")
        assert home.status_code == 200 and "Overview" in home.text
        assert "script-src" not in home.headers["content-security-policy"]  # no script at all
        assert home.headers["x-frame-options"] == "DENY"
        # Sign out: the old cookie no longer opens anything.
        old = dict(http.cookies)
        out = http.post(f"{world.base}/admin/logout", data={"csrf": hidden(home.text, "csrf")})
        assert out.status_code == 303
    with _client() as replay:
        for name, value in old.items():
            replay.cookies.set(name, value, path="/admin")
        assert replay.get(f"{world.base}/admin/").status_code == 303
    events = _audit(world, event="operator_signed_in")
    assert events and events[0]["details"]["operator"] == OPERATOR


def test_a_form_without_its_csrf_token_is_refused(world: GatewayWorld) -> None:
    agent = world.new_agent()
    client_id = world.register(agent, {"mail": ["mail:read"]})["client_id"]
    with _client() as http:
        sign_in(http, world.base)
        url = f"{world.base}/admin/agents/{client_id}/suspend"
        for data in ({}, {"csrf": "not-the-token"}, {"csrf": ""}):
            refused = http.post(url, data=data)
            assert refused.status_code == 403 and "form has expired" in refused.text
        assert _status(world, client_id) == "approved"
        # The same form with the session's token works.
        token = csrf_of(http, f"{world.base}/admin/agents/{client_id}")
        done = http.post(url, data={"csrf": token, "reason": "leaked key"})
        assert done.status_code == 303
    assert _status(world, client_id) == "suspended"
    refusals = _audit(world, event="access_denied")
    assert any(e["reason"] == "console form without its CSRF token" for e in refusals)
    actions = _audit(world, event="operator_action", agent_id=agent.agent_id)
    assert actions[0]["details"] == {"operator": OPERATOR, "action": "suspend"}


def test_sign_in_is_throttled_after_repeated_failures(world: GatewayWorld) -> None:
    add_operator(world.app.settings.database_url, world.base, "ops-bob", "bob's long passphrase")
    with _client() as http:
        for _ in range(5):
            wrong = sign_in(http, world.base, "ops-bob", "not the passphrase")
            assert wrong.status_code == 401 and "Wrong name or password" in wrong.text
        blocked = sign_in(http, world.base, "ops-bob", "bob's long passphrase")
        assert blocked.status_code == 429 and "Too many failed sign-ins" in blocked.text
        # Another operator is not locked out by bob's failures.
        assert sign_in(http, world.base).status_code == 303
    failures = [
        e
        for e in _audit(world, event="operator_sign_in_failed")
        if e["details"]["operator"] == "ops-bob"
    ]
    assert len(failures) == 6 and failures[0]["reason"] == "too many failed sign-ins; throttled"


def test_the_sign_in_form_needs_its_own_csrf_value(world: GatewayWorld) -> None:
    with _client() as http:
        refused = http.post(
            f"{world.base}/admin/login",
            data={"csrf": "guess", "username": OPERATOR, "password": OPERATOR_PASSWORD},
        )
        assert refused.status_code == 403
        assert not any(c.startswith("ath_console_") and "login" not in c for c in http.cookies)


def test_no_page_renders_agent_supplied_markup(world: GatewayWorld) -> None:
    agent = world.new_agent()
    world.identities.documents[agent.name]["name"] = MARKUP_NAME
    response = world.http.post(
        f"{world.base}/ath/agents/register",
        json={
            "agent_id": agent.agent_id,
            "agent_attestation": agent.attest(world.base, world.clock),
            "developer": {"name": MARKUP_DEVELOPER, "id": "<dev>"},
            "requested_providers": [{"provider_id": "mail", "scopes": ["mail:read", "mail:send"]}],
            "purpose": MARKUP_PURPOSE,
            "redirect_uris": ["http://127.0.0.1:9/cb"],
        },
    )
    assert response.status_code == 201, response.text
    client_id = response.json()["client_id"]
    with _client() as http:
        sign_in(http, world.base)
        pages = [
            "/admin/review",
            "/admin/agents",
            f"/admin/agents/{client_id}",
            "/admin/tokens",
            f"/admin/audit?agent_id={agent.agent_id}",
        ]
        for path in pages:
            html = http.get(f"{world.base}{path}").text
            for raw in (MARKUP_NAME, MARKUP_PURPOSE, MARKUP_DEVELOPER, "<script", "<img", "<dev>"):
                assert raw not in html, f"{raw!r} unescaped on {path}"
        review = http.get(f"{world.base}/admin/review").text
        assert "&lt;script&gt;alert(&#34;name&#34;)&lt;/script&gt;" in review
        assert "&lt;img src=x onerror=alert(1)&gt;" in review
        assert "&lt;u&gt;Evil&lt;/u&gt; &amp; Co" in review


@contextlib.contextmanager
def _other_deployment(world: GatewayWorld) -> Iterator[str]:
    """A second deployment (a native service) whose console shares the gateway's database."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    app = create_native_app(
        ServerSettings(base_url=base, secret_key="n" * 40, name="Other service"),
        stores=memory_stores(),
    )
    db = create_database(world.app.settings.database_url)
    mount_console(app, db=db)
    with serve_in_thread(app, port=port):
        yield base


def test_an_operator_of_one_deployment_cannot_act_on_anothers_data(world: GatewayWorld) -> None:
    agent = world.new_agent()
    client_id = world.register(agent, {"mail": ["mail:read"]})["client_id"]
    with _other_deployment(world) as other:
        with _client() as http:
            # The gateway's operator is unknown there, though the accounts share a database.
            assert sign_in(http, other).status_code == 401
        add_operator(world.app.settings.database_url, other, "ops-other", "other long passphrase")
        with _client() as gateway_http, _client() as other_http:
            assert sign_in(gateway_http, world.base).status_code == 303
            # The gateway's session cookie, presented to the other deployment, opens nothing.
            for name, value in gateway_http.cookies.items():
                other_http.cookies.set(name, value, path="/admin")
            assert other_http.get(f"{other}/admin/agents").status_code == 303
            other_http.cookies.clear()
            assert (
                sign_in(other_http, other, "ops-other", "other long passphrase").status_code == 303
            )
            token = csrf_of(other_http, f"{other}/admin/agents")
            # The other operator names the gateway's agent: it does not exist there.
            refused = other_http.post(
                f"{other}/admin/agents/{client_id}/suspend", data={"csrf": token}
            )
            assert refused.status_code == 403 and "unknown client_id" in refused.text
            assert client_id not in other_http.get(f"{other}/admin/agents").text
            # And its CSRF token is worthless at the gateway.
            crossed = gateway_http.post(
                f"{world.base}/admin/agents/{client_id}/suspend", data={"csrf": token}
            )
            assert crossed.status_code == 403
    assert _status(world, client_id) == "approved"


def test_audit_pages_filters_and_export(world: GatewayWorld) -> None:
    agent = world.new_agent()
    registration = world.register(agent, {"mail": ["mail:read"]})
    token = world.connect(agent, registration, "mail", ["mail:read"])["access_token"]
    calls = 8
    for _ in range(calls):
        assert world.call(token, agent, "GET", "/mail/messages").status_code == 200
    # The proxy writes its audit events behind the responses.
    deadline = time.monotonic() + 10
    while len(_audit(world, agent_id=agent.agent_id, event="proxy_request")) < calls:
        assert time.monotonic() < deadline, "proxy_request events were not written"
        time.sleep(0.1)
    assert world.app.console is not None
    operators = world.app.console.operators
    operators.page_size = 5  # (50 in service) so that a few calls make several pages
    try:
        _audit_pages(world, agent.agent_id, calls)
    finally:
        operators.page_size = 50
    # The admin API pages the same way.
    page = _audit(world, agent_id=agent.agent_id)
    below = world.admin(
        "GET", "/audit", params={"agent_id": agent.agent_id, "before_id": page[4]["event_id"]}
    ).json()["events"]
    assert [e["event_id"] for e in below] == [e["event_id"] for e in page[5:]]


def _audit_pages(world: GatewayWorld, agent_id: str, calls: int) -> None:
    with _client() as http:
        sign_in(http, world.base)
        base = f"{world.base}/admin/audit"
        seen: list[str] = []
        url = f"{base}?agent_id={agent_id}"
        while True:
            page = http.get(url)
            assert page.status_code == 200
            rows = re.findall(r'<tr class="event event-([a-z_]+)">', page.text)
            assert 0 < len(rows) <= 5
            seen.extend(rows)
            older = re.search(r'class="older" href="([^"]+)"', page.text)
            if older is None:
                break
            url = f"{world.base}{html.unescape(older.group(1))}"
        newest_first = [e["event"] for e in _audit(world, agent_id=agent_id)]
        assert seen == newest_first and seen[-1] == "agent_registered"
        # ISO dates filter; a bad one is a 400 page naming the accepted forms.
        today = time.strftime("%Y-%m-%d", time.gmtime())
        none_yet = http.get(base, params={"agent_id": agent_id, "until": f"{today}T00:00:00Z"})
        assert "No event matches" in none_yet.text
        bad = http.get(base, params={"since": "last week"})
        assert bad.status_code == 400 and "ISO 8601" in bad.text
        export = http.get(f"{base}.jsonl", params={"agent_id": agent_id, "event": "proxy_request"})
        assert export.headers["content-type"].startswith("application/jsonl")
        lines = [json.loads(line) for line in export.text.splitlines()]
        assert len(lines) == calls and {e["event"] for e in lines} == {"proxy_request"}
        assert all(e["timestamp"].endswith("Z") for e in lines)


def _user_session(world: GatewayWorld, http: httpx.Client, provider: str, user: str) -> None:
    """Sign ``user`` in on /account through ``provider``'s own login, as a browser would."""
    landed = drive_consent(
        http,
        f"{world.base}/account/login/{provider}",
        username=user,
        password=PASSWORD,
        stop_at=f"{world.base}/account/callback",
    )
    assert isinstance(landed, str)
    done = http.get(landed)
    assert done.status_code == 200 and "Signed in" in done.text


def test_connected_agents_checks_state_csrf_and_the_provider(world: GatewayWorld) -> None:
    agent = world.new_agent()
    registration = world.register(agent, {"mail": ["mail:read"], "cal": ["cal:read"]})
    mail = world.connect(agent, registration, "mail", ["mail:read"])["access_token"]
    cal = world.connect(agent, registration, "cal", ["cal:read"], user="bob")["access_token"]
    client_id = registration["client_id"]
    with _client() as http:
        # A callback that did not start in this browser (no state cookie) signs nobody in.
        start = http.get(f"{world.base}/account/login/mail")
        state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
        with _client() as stranger:
            forged = stranger.get(f"{world.base}/account/callback?code=x&state={state}")
            assert forged.status_code == 400 and "did not start here" in forged.text
        http.cookies.clear()
        _user_session(world, http, "mail", "alice")
        page = http.get(f"{world.base}/account/agents")
        assert client_id in page.text
        # Without the CSRF token nothing is revoked.
        refused = http.post(f"{world.base}/account/agents/revoke", data={"client_id": client_id})
        assert refused.status_code == 403
        assert world.call(mail, agent, "GET", "/mail/messages").status_code == 200
        # Alice at mail cannot reach what bob holds at cal: nothing of bob's dies.
        token = hidden(page.text, "csrf")
        http.post(
            f"{world.base}/account/agents/revoke", data={"csrf": token, "client_id": client_id}
        )
        assert world.call(cal, agent, "GET", "/cal/messages").status_code == 200
        dead = world.call(mail, agent, "GET", "/mail/messages")
        assert dead.status_code == 401 and dead.json()["code"] == "TOKEN_REVOKED"
        # The operator console does not take a user's session.
        assert http.get(f"{world.base}/admin/").status_code == 303
    signed_in = _audit(world, event="user_signed_in", user_id=USERS["alice"])
    assert signed_in and signed_in[0]["provider_id"] == "mail"


def test_cli_password_change_and_deletion_end_sessions(world: GatewayWorld) -> None:
    where = ["--database-url", world.app.settings.database_url, "--base-url", world.base]

    def ath(*args: str, stdin: str | None = None) -> Any:
        return CliRunner().invoke(cli_app, ["console", *args, *where], input=stdin)

    assert (
        ath("create-user", "ops-carl", "--password-stdin", stdin="carl's first phrase\n").exit_code
        == 0
    )
    with _client() as http:
        assert sign_in(http, world.base, "ops-carl", "carl's first phrase").status_code == 303
        assert http.get(f"{world.base}/admin/").status_code == 200
        changed = ath(
            "set-password", "ops-carl", "--password-stdin", stdin="carl's second phrase\n"
        )
        assert changed.exit_code == 0, changed.output
        assert http.get(f"{world.base}/admin/").status_code == 303  # the session ended
        assert sign_in(http, world.base, "ops-carl", "carl's first phrase").status_code == 401
        assert sign_in(http, world.base, "ops-carl", "carl's second phrase").status_code == 303
        assert ath("delete-user", "ops-carl").exit_code == 0
        assert http.get(f"{world.base}/admin/").status_code == 303
        assert sign_in(http, world.base, "ops-carl", "carl's second phrase").status_code == 401
    assert ath("delete-user", "ops-carl").exit_code == 1
    assert "ops-carl" not in ath("list-users").output


def test_hostile_forms_are_refused_with_a_page(world: GatewayWorld) -> None:
    agent = world.new_agent()
    client_id = world.register(agent, {"mail": ["mail:read"]})["client_id"]
    url = f"{world.base}/admin/agents/{client_id}/suspend"
    form = {"content-type": "application/x-www-form-urlencoded"}
    with _client() as http:
        sign_in(http, world.base)
        token = csrf_of(http, f"{world.base}/admin/agents/{client_id}")
        big = http.post(url, content=f"csrf={token}&reason=" + "x" * 40_000, headers=form)
        assert big.status_code == 413 and "Form refused" in big.text
        multipart = http.post(url, files={"csrf": (None, token)})
        assert multipart.status_code == 415
        latin = http.post(url, content=b"csrf=" + token.encode() + b"&reason=\xff", headers=form)
        assert latin.status_code == 400
        many = http.post(url, content="&".join(f"f{i}=1" for i in range(300)), headers=form)
        assert many.status_code == 400
        login = http.post(f"{world.base}/admin/login", content=b"x" * 40_000, headers=form)
        assert login.status_code == 413
    assert _status(world, client_id) == "approved"


def test_a_denial_reason_reaches_the_agent(world: GatewayWorld) -> None:
    agent = world.new_agent()
    registration = world.register(agent, {"mail": ["mail:read", "mail:send"]})
    client_id = registration["client_id"]
    with _client() as http:
        sign_in(http, world.base)
        token = csrf_of(http, f"{world.base}/admin/review")
        denied = http.post(
            f"{world.base}/admin/agents/{client_id}/deny",
            data={"csrf": token, "reason": "purpose unclear: write to ops@example.com"},
        )
        assert denied.status_code == 303
    status = world.http.get(
        f"{world.base}/ath/agents/{client_id}",
        headers={"X-ATH-Attestation": agent.attest(world.base, world.clock)},
    )
    assert status.status_code == 200, status.text
    body = status.json()
    assert body["agent_status"] == "denied"
    (mail,) = body["approved_providers"]
    assert mail["denial_reason"] == "purpose unclear: write to ops@example.com"
    assert mail["denied_scopes"] == ["mail:send"]


def test_last_seen_is_the_agents_own_activity_not_the_operators(world: GatewayWorld) -> None:
    agent = world.new_agent()
    registration = world.register(agent, {"mail": ["mail:read"]})
    world.connect(agent, registration, "mail", ["mail:read"])
    active = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(world.clock.now()))
    world.clock.advance(3 * 3600)
    try:
        # Three hours later an operator suspends it: that is not the agent being seen.
        assert (
            world.admin("POST", f"/agents/{registration['client_id']}/suspend").status_code == 200
        )
        with _client() as http:
            sign_in(http, world.base)
            page = http.get(f"{world.base}/admin/agents").text
    finally:
        world.clock.offset = 0.0
    row = page.split(f'data-client-id="{registration["client_id"]}"', 1)[1].split("</tr>", 1)[0]
    seen = re.search(r'class="last-seen">([^<]*)<', row)
    assert seen is not None and seen.group(1) in (active, _minute_after(active))


def _minute_after(shown: str) -> str:
    moment = time.strptime(shown, "%Y-%m-%d %H:%M UTC")
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(calendar.timegm(moment) + 60))
