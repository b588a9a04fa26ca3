"""``ath gateway init``: a working gateway, its OAuth server and a tiny upstream API, written
into one directory with every secret generated into a file (mode 0600).

What it writes (all on 127.0.0.1; ports are options)::

    gateway.toml          the gateway: one provider "notes", consent key, admin token, verifier
                          open to loopback agents (development), approve_while_reviewing
    oauth-server.toml     the provider's OAuth server: one user, the gateway as its client,
                          the consent key's public half as the client's ath_context_key
    upstream.py           the Notes API the gateway forwards to (asks the OAuth server who
                          the bearer is, through /userinfo)
    secrets/              secret-key, admin-token, oauth-client-secret, oauth-secret-key,
                          consent-key.pem and user-password

``ath gateway check`` and ``ath gateway serve`` succeed on it as written.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from athkit.protocol import (
    ADMIN_PREFIX,
    generate_private_key,
    private_key_to_pem,
    public_key_to_pem,
)

FILES = ("gateway.toml", "oauth-server.toml", "upstream.py", "secrets")


@dataclass(frozen=True)
class QuickStart:
    """Where the quick-start's three servers listen, and who may sign in."""

    gateway_port: int = 8080
    oauth_port: int = 8400
    upstream_port: int = 8500
    username: str = "alice"

    @property
    def gateway_url(self) -> str:
        """The gateway's public base URL."""
        return f"http://127.0.0.1:{self.gateway_port}"

    @property
    def oauth_url(self) -> str:
        """The OAuth server's issuer."""
        return f"http://127.0.0.1:{self.oauth_port}"

    @property
    def upstream_url(self) -> str:
        """The Notes API's base URL."""
        return f"http://127.0.0.1:{self.upstream_port}"


def _secret_file(path: Path, value: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(value + "\n")


def write_quickstart(directory: Path, setup: QuickStart) -> str:
    """Write the quick-start into ``directory`` (created; none of :data:`FILES` may exist yet)
    and return the user's generated password."""
    from athkit.oauthserver import hash_password

    directory.mkdir(parents=True, exist_ok=True)
    taken = [name for name in FILES if (directory / name).exists()]
    if taken:
        raise FileExistsError(
            f"{directory} already has {', '.join(taken)}: choose an empty directory "
            "(ath gateway init DIR) or remove them"
        )
    secret_dir = directory / "secrets"
    secret_dir.mkdir(mode=0o700)
    password = secrets.token_urlsafe(12)
    consent_key = generate_private_key()
    for name, value in (
        ("secret-key", secrets.token_urlsafe(32)),
        ("admin-token", secrets.token_urlsafe(32)),
        ("oauth-client-secret", secrets.token_urlsafe(32)),
        ("oauth-secret-key", secrets.token_urlsafe(32)),
        ("user-password", password),
        ("consent-key.pem", private_key_to_pem(consent_key).decode().strip()),
    ):
        _secret_file(secret_dir / name, value)
    (directory / "gateway.toml").write_text(_gateway_toml(setup), encoding="utf-8")
    (directory / "oauth-server.toml").write_text(
        _oauth_toml(setup, hash_password(password), public_key_to_pem(consent_key).strip()),
        encoding="utf-8",
    )
    (directory / "upstream.py").write_text(_upstream_py(setup), encoding="utf-8")
    return password


def _gateway_toml(s: QuickStart) -> str:
    return f'''# An ATH gateway in front of the Notes API (upstream.py); from `ath gateway init`.
#   ath gateway check --config gateway.toml
#   ath gateway serve --config gateway.toml
# Development settings (loopback agents, plain http): see examples/gateway.toml for production.

mode = "development"                          # production: https public_base_url, no --dev
public_base_url = "{s.gateway_url}"
listen = "127.0.0.1:{s.gateway_port}"
database_url = "sqlite:///ath-gateway.db"
secret_key_file = "secrets/secret-key"           # encrypts provider tokens
admin_token_file = "secrets/admin-token"         # Bearer token of /ath/admin/...
# Signs the agent context the consent page shows (agent name, developer); the OAuth server
# trusts its public half (`ath gateway consent-key --config gateway.toml` prints it).
consent_signing_key_file = "secrets/consent-key.pem"

[verifier]                                       # where agent identity documents may live
allow_loopback = true                            # development: `ath identity --serve`
allow_http = true

[providers.notes]
display_name = "Notes"
issuer = "{s.oauth_url}"
authorization_endpoint = "{s.oauth_url}/authorize"
token_endpoint = "{s.oauth_url}/token"
userinfo_endpoint = "{s.oauth_url}/userinfo"
client_id = "ath-gateway"
client_secret_file = "secrets/oauth-client-secret"
scopes = ["notes:read", "notes:write"]
api_base = "{s.upstream_url}"

[providers.notes.routes]
"notes:read" = ["GET /notes", "GET /notes/{{id}}"]
"notes:write" = ["POST /notes"]

[providers.notes.approval]
auto_approve = ["notes:read"]
review = ["notes:write"]                         # an operator decides (ath gateway admin ...)
approve_while_reviewing = true                   # notes:read works while notes:write waits
'''


def _oauth_toml(s: QuickStart, password_hash: str, context_key_pem: str) -> str:
    return f'''# The Notes OAuth server, written by `ath gateway init`.
#   ath oauth check --config oauth-server.toml
#   ath oauth serve --config oauth-server.toml
# The user's password is in secrets/user-password.

issuer = "{s.oauth_url}"
database_url = "sqlite:///ath-oauth.db"
secret_key_file = "secrets/oauth-secret-key"     # signs the sign-in session cookie

[scopes]
"openid" = "Know who you are"
"notes:read" = "Read your notes"
"notes:write" = "Write notes for you"

[[users]]
username = "{s.username}"
password_hash = "{password_hash}"
sub = "user-{s.username}"
name = "{s.username.title()}"

[[clients]]
client_id = "ath-gateway"
name = "Notes (through the ATH gateway)"
client_secret_file = "secrets/oauth-client-secret"
redirect_uris = ["{s.gateway_url}/ath/callback", "{s.gateway_url}/account/callback"]
scopes = ["openid", "notes:read", "notes:write"]
ath_context_key = """
{context_key_pem}
"""
'''


def _upstream_py(s: QuickStart) -> str:
    return f'''"""The Notes API behind the gateway, from `ath gateway init`: python upstream.py

It knows nothing of ATH. It asks the OAuth server who the bearer token belongs to (userinfo),
as any OAuth-protected API would, and keeps each user's notes in memory.
"""

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

USERINFO = "{s.oauth_url}/userinfo"
NOTES: dict[str, list[dict[str, object]]] = {{}}


async def user_of(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("bearer "):
        return None
    async with httpx.AsyncClient(timeout=5) as http:
        answer = await http.get(USERINFO, headers={{"Authorization": header}})
    return str(answer.json()["sub"]) if answer.status_code == 200 else None


async def notes(request: Request) -> JSONResponse:
    user = await user_of(request)
    if user is None:
        return JSONResponse({{"error": "invalid_token"}}, status_code=401)
    mine = NOTES.setdefault(user, [])
    if request.method == "POST":
        body = await request.json()
        note = {{"id": len(mine) + 1, "text": str(body.get("text", ""))[:1000]}}
        mine.append(note)
        return JSONResponse(note, status_code=201)
    return JSONResponse({{"user": user, "notes": mine}})


async def note(request: Request) -> JSONResponse:
    user = await user_of(request)
    if user is None:
        return JSONResponse({{"error": "invalid_token"}}, status_code=401)
    for item in NOTES.get(user, []):
        if str(item["id"]) == request.path_params["id"]:
            return JSONResponse(item)
    return JSONResponse({{"error": "not_found"}}, status_code=404)


app = Starlette(
    routes=[Route("/notes", notes, methods=["GET", "POST"]), Route("/notes/{{id}}", note)]
)

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port={s.upstream_port})
'''


def next_steps(directory: Path, setup: QuickStart, password: str) -> str:
    """What to run next, printed by ``ath gateway init``."""
    return f"""Wrote a gateway, its OAuth server and a Notes API to {directory}/.

Next, from {directory}/ (one terminal each, or add & to each):
  ath oauth serve --config oauth-server.toml       # {setup.oauth_url}
  python upstream.py                               # {setup.upstream_url}
  ath gateway check --config gateway.toml
  ath gateway serve --config gateway.toml          # {setup.gateway_url}

Then connect an agent (after `ath keygen` and `ath identity --serve`, README "The ath command
line"):
  ath config set-server notes {setup.gateway_url} --default
  ath register --provider notes=notes:read,notes:write --developer-name "Me" --developer-id me
  ath authorize notes --scope notes:read      # sign in as {setup.username} / {password}
  ath call --provider notes GET /notes
Operators: curl -H "Authorization: Bearer $(cat secrets/admin-token)" \\
  {setup.gateway_url}{ADMIN_PREFIX}/agents"""
