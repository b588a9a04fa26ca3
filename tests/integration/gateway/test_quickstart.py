"""The README's "A gateway from nothing", as written: `ath gateway init`, the OAuth server and the
Notes API it wrote, `ath gateway check` (issuer metadata read) and `ath gateway serve` — then a
real agent registers, a user consents on a page that names the agent, and the agent reads the
user's notes through the gateway."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from athkit.agent import ATHClient, generate_key, serve_identity
from athkit.testing import drive_consent, free_port
from tests.docs import code_blocks

ATH = str(Path(sys.executable).with_name("ath"))
SECTION = "A gateway from nothing"


def _readme_commands() -> list[list[str]]:
    (block,) = code_blocks(SECTION, "bash")
    lines = [line.split("#", 1)[0].strip().rstrip("&").strip() for line in block.splitlines()]
    return [shlex.split(line) for line in lines if line]


def _wait(url: str, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, timeout=1).status_code < 500:
                return
        if proc.poll() is not None:
            out = proc.stdout.read().decode() if proc.stdout else ""
            raise AssertionError(f"{what} exited: {out}")
        assert time.monotonic() < deadline, f"{what} did not start"
        time.sleep(0.2)


@contextlib.contextmanager
def _running(command: list[str], cwd: Path) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        if proc.stdout is not None:
            proc.stdout.close()


def _ath(command: list[str]) -> list[str]:
    assert command[0] in ("ath", "python"), command
    return [ATH, *command[1:]] if command[0] == "ath" else [sys.executable, *command[1:]]


def test_quickstart_as_written(tmp_path: Path) -> None:
    init, cd, oauth, upstream, check, serve = _readme_commands()
    assert init[:3] == ["ath", "gateway", "init"] and cd[0] == "cd"
    ports = {"--port": free_port(), "--oauth-port": free_port(), "--upstream-port": free_port()}
    flags = [str(x) for pair in ports.items() for x in pair]  # free ports, never fixed ones
    made = subprocess.run(
        [*_ath(init), *flags], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert made.returncode == 0, made.stderr
    assert "ath authorize notes --scope notes:read" in made.stdout
    home = tmp_path / cd[1]
    gateway = f"http://127.0.0.1:{ports['--port']}"
    oauth_url = f"http://127.0.0.1:{ports['--oauth-port']}"
    with _running(_ath(oauth), home) as oauth_proc, _running(_ath(upstream), home) as api_proc:
        _wait(f"{oauth_url}/healthz", oauth_proc, "ath oauth serve")
        _wait(f"http://127.0.0.1:{ports['--upstream-port']}/notes", api_proc, "upstream.py")
        checked = subprocess.run(_ath(check), cwd=home, capture_output=True, text=True, timeout=120)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert "ok: providers.notes.issuer: metadata read from" in checked.stdout
        assert "error" not in checked.stdout + checked.stderr
        with _running(_ath(serve), home) as gateway_proc:
            _wait(f"{gateway}/readyz", gateway_proc, "ath gateway serve")
            _agent_reads_notes(gateway, home)


def _agent_reads_notes(gateway: str, home: Path) -> None:
    password = (home / "secrets" / "user-password").read_text().strip()
    key = generate_key()
    developer = {"name": "Quick Start Labs", "id": "qs-labs"}
    with (
        serve_identity(key, name="NoteBot", developer=developer) as agent_id,
        ATHClient(gateway, agent_id=agent_id, private_key=key) as client,
    ):
        registration = client.register(
            {"notes": ["notes:read", "notes:write"]}, developer=developer
        )
        # approve_while_reviewing: notes:read at once, notes:write waits for the operator.
        assert registration.approved_providers[0].approved_scopes == ["notes:read"]
        pending = client.authorize("notes", ["notes:read"], user_redirect_uri=None)
        with httpx.Client(timeout=30) as browser:
            seen: list[str] = []
            browser.event_hooks["response"] = [lambda r: seen.append(r.read().decode())]
            page = drive_consent(
                browser, pending.authorization_url, username="alice", password=password
            )
        assert not isinstance(page, str) and page.status_code == 200, page
        assert any("NoteBot" in text and "Quick Start Labs" in text for text in seen)
        found = re.search(r'id="ath-code">([^<]+)<', page.text)  # the completion page's code
        assert found is not None, page.text
        code = found.group(1)
        token = client.exchange_token(code, pending.ath_session_id)
        assert token.effective_scopes == ["notes:read"]
        answer = client.proxy("notes", "GET", "/notes")
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"user": "user-alice", "notes": []}
    assert os.stat(home / "secrets" / "admin-token").st_mode & 0o777 == 0o600
