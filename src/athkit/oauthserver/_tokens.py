"""The back-channel endpoints: ``/token``, ``/revoke``, ``/introspect`` and ``/userinfo``."""

from __future__ import annotations

import base64
import hmac
from collections.abc import Awaitable, Callable
from urllib.parse import unquote

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from athkit.oauthserver._common import (
    OAuthError,
    ServerState,
    audit,
    duplicated,
    json_response,
    read_form,
)
from athkit.oauthserver._config import ClientConfig
from athkit.oauthserver._store import OAuthTokenRecord
from athkit.protocol import hash_secret, verify_code_challenge

_MAX_FIELDS = 30
_MAX_VALUE = 4096
# Compared against when the client_id is unknown, so both failures take the same time.
_NO_CLIENT_HASH = hash_secret("no-such-client")


async def _form(request: Request) -> FormData:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    # RFC 6749 §4.1.3 / §3.2: the token request is application/x-www-form-urlencoded.
    if content_type != "application/x-www-form-urlencoded":
        raise OAuthError("invalid_request", "the body must be application/x-www-form-urlencoded")
    form = await read_form(request, max_fields=_MAX_FIELDS)
    dupes = duplicated(form)
    if dupes:
        raise OAuthError("invalid_request", f"parameters given twice: {', '.join(dupes)}")
    if any(not isinstance(v, str) or len(v) > _MAX_VALUE for v in form.values()):
        raise OAuthError("invalid_request", "a parameter is too long")
    return form


def _field(form: FormData, name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) and value != "" else None


def _required(form: FormData, name: str, why: str = "") -> str:
    """The non-empty field ``name``, or ``invalid_request`` saying it is required."""
    value = _field(form, name)
    if value is None:
        raise OAuthError("invalid_request", f"{name} is required{why}")
    return value


async def _client_form(srv: ServerState, request: Request) -> tuple[FormData, ClientConfig]:
    """The posted form and the client it authenticates."""
    form = await _form(request)
    return form, _authenticate(srv, request, form)


def _authenticate(srv: ServerState, request: Request, form: FormData) -> ClientConfig:
    """RFC 6749 §2.3.1: ``client_secret_basic`` or ``client_secret_post``, not both."""
    header = request.headers.get("authorization")
    basic = header is not None and header[:6].lower() == "basic "
    form_id, form_secret = _field(form, "client_id"), _field(form, "client_secret")
    if basic:
        assert header is not None
        if form_secret is not None:
            raise OAuthError("invalid_request", "use one client authentication method, not two")
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
            raw_id, sep, raw_secret = decoded.partition(":")
        except ValueError:  # binascii.Error, UnicodeDecodeError, non-ASCII text in the header
            raise OAuthError(
                "invalid_client", "malformed Basic credentials", status=401, basic_auth=True
            ) from None
        if not sep:
            raise OAuthError(
                "invalid_client", "malformed Basic credentials", status=401, basic_auth=True
            )
        # §2.3.1: id and secret are form-urlencoded before the Basic encoding.
        client_id, secret = unquote(raw_id.replace("+", " ")), unquote(raw_secret.replace("+", " "))
        if form_id is not None and form_id != client_id:
            raise OAuthError("invalid_request", "client_id differs from the Basic credentials")
    else:
        if header is not None:
            raise OAuthError(
                "invalid_client", "unsupported Authorization scheme", status=401, basic_auth=True
            )
        if form_id is None or form_secret is None:
            raise OAuthError("invalid_client", "client authentication is required", status=401)
        client_id, secret = form_id, form_secret
    client = srv.config.client(client_id)
    expected = client.secret_hash if client is not None else _NO_CLIENT_HASH
    if not hmac.compare_digest(hash_secret(secret), expected) or client is None:
        audit("client_auth_failed", client_id=client_id[:255], path=request.url.path)
        raise OAuthError(
            "invalid_client", "unknown client or wrong secret", status=401, basic_auth=basic
        )
    return client


async def token(srv: ServerState, request: Request) -> Response:
    """``POST /token``: the authorization_code and refresh_token grants."""
    try:
        form, client = await _client_form(srv, request)
        grant_type = _required(form, "grant_type")
        if grant_type == "authorization_code":
            return await _code_grant(srv, client, form)
        if grant_type == "refresh_token":
            return await _refresh_grant(srv, client, form)
        raise OAuthError(
            "unsupported_grant_type", f"grant_type {grant_type[:64]!r} is not supported"
        )
    except OAuthError as exc:
        audit("token_rejected", error=exc.error, reason=exc.description)
        return exc.response()


async def _code_grant(srv: ServerState, client: ClientConfig, form: FormData) -> Response:
    now = srv.now()
    code = _required(form, "code")
    verifier = _required(form, "code_verifier", " (PKCE)")
    redirect_uri = _required(form, "redirect_uri")
    record, first_use = await srv.store.redeem_code(code, now=now)
    if record is None:
        raise OAuthError("invalid_grant", "unknown authorization code")
    if record.client_id != client.client_id:
        raise OAuthError("invalid_grant", "the code was issued to another client")
    if not first_use:
        # RFC 6749 §4.1.2: a code used twice is refused, and tokens issued from it revoked.
        await srv.store.mark_code_reused(code, now=now)
        revoked = await srv.store.revoke_grant(record.grant_id, now=now)
        audit("code_reused", client_id=client.client_id, sub=record.sub, revoked=revoked)
        raise OAuthError("invalid_grant", "the authorization code was already used")
    if now >= record.expires_at:
        raise OAuthError("invalid_grant", "the authorization code has expired")
    if redirect_uri != record.redirect_uri:
        raise OAuthError("invalid_grant", "redirect_uri differs from the authorization request")
    # RFC 7636 §4.6: BASE64URL-ENCODE(SHA256(ASCII(code_verifier))) == code_challenge
    if not verify_code_challenge(verifier, record.code_challenge):
        raise OAuthError("invalid_grant", "code_verifier does not match the code_challenge")
    resource = _field(form, "resource")
    if resource is not None and resource != record.resource:
        raise OAuthError("invalid_target", "resource differs from the authorization request")
    scopes = list(record.scopes)
    issued = await srv.store.issue_tokens(
        grant_id=record.grant_id,
        client_id=client.client_id,
        sub=record.sub,
        access_scopes=scopes,
        refresh_scopes=scopes,
        resource=record.resource,
        now=now,
        access_lifetime=srv.config.access_token_lifetime,
        refresh_lifetime=srv.config.refresh_token_lifetime,
    )
    if await srv.store.code_was_reused(code):
        # The code came back while these tokens were being issued: they die with the grant.
        await srv.store.revoke_grant(record.grant_id, now=now)
        raise OAuthError("invalid_grant", "the authorization code was already used")
    audit("token_issued", grant="authorization_code", client_id=client.client_id, sub=record.sub)
    return _token_response(srv, issued.access_token, issued.refresh_token, scopes)


async def _refresh_grant(srv: ServerState, client: ClientConfig, form: FormData) -> Response:
    now = srv.now()
    presented = _required(form, "refresh_token")
    record = await srv.store.find_token(presented)
    if record is None or record.kind != "refresh" or record.client_id != client.client_id:
        raise OAuthError("invalid_grant", "unknown refresh token")
    if record.revoked_at is not None:
        raise OAuthError("invalid_grant", "the refresh token was revoked")
    if now >= record.expires_at:
        raise OAuthError("invalid_grant", "the refresh token has expired")
    requested = _field(form, "scope")
    scopes = list(record.scopes)
    if requested is not None:
        asked = [s for s in dict.fromkeys(requested.split(" ")) if s]
        # RFC 6749 §6: the scope may only narrow the original grant.
        if not asked or any(s not in record.scopes for s in asked):
            raise OAuthError("invalid_scope", "scope exceeds the original grant")
        scopes = asked
    if record.rotated_at is not None or not await srv.store.rotate_refresh(
        record.token_hash, now=now
    ):
        # A rotated refresh token came back: someone holds a stolen copy. End the grant.
        revoked = await srv.store.revoke_grant(record.grant_id, now=now)
        audit("refresh_reused", client_id=client.client_id, sub=record.sub, revoked=revoked)
        raise OAuthError("invalid_grant", "the refresh token was already used")
    issued = await srv.store.issue_tokens(
        grant_id=record.grant_id,
        client_id=client.client_id,
        sub=record.sub,
        access_scopes=scopes,
        refresh_scopes=list(record.scopes),
        resource=record.resource,
        now=now,
        access_lifetime=srv.config.access_token_lifetime,
        refresh_lifetime=srv.config.refresh_token_lifetime,
    )
    audit("token_issued", grant="refresh_token", client_id=client.client_id, sub=record.sub)
    return _token_response(srv, issued.access_token, issued.refresh_token, scopes)


def _token_response(srv: ServerState, access: str, refresh: str, scopes: list[str]) -> Response:
    return json_response(
        {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": srv.config.access_token_lifetime,
            "refresh_token": refresh,
            "scope": " ".join(scopes),
        }
    )


async def revoke(srv: ServerState, request: Request) -> Response:
    """``POST /revoke`` (RFC 7009): 200 whether or not the token existed."""
    return await _about_token(srv, request, "revoke", _revoke)


async def introspect(srv: ServerState, request: Request) -> Response:
    """``POST /introspect`` (RFC 7662) for clients configured with ``introspection = true``."""
    return await _about_token(srv, request, "introspect", _introspect)


_TokenAnswer = Callable[[ServerState, ClientConfig, OAuthTokenRecord | None], Awaitable[Response]]


async def _about_token(
    srv: ServerState, request: Request, endpoint: str, answer: _TokenAnswer
) -> Response:
    """For ``/revoke`` and ``/introspect``: ``answer`` for the authenticated client and the
    stored token it names (``None`` when unknown), or the error response (audited as
    ``<endpoint>_rejected``). Only clients configured for it may introspect."""
    try:
        form, client = await _client_form(srv, request)
        if endpoint == "introspect" and not client.introspection:
            raise OAuthError(
                "unauthorized_client", "this client may not introspect tokens", status=403
            )
        presented = _required(form, "token")
    except OAuthError as exc:
        audit(f"{endpoint}_rejected", error=exc.error)
        return exc.response()
    return await answer(srv, client, await srv.store.find_token(presented))


async def _revoke(
    srv: ServerState, client: ClientConfig, record: OAuthTokenRecord | None
) -> Response:
    now = srv.now()
    # RFC 7009 §2.1: only the client the token was issued to may revoke it. For anyone else
    # the answer is the same 200, so the endpoint does not reveal which tokens exist.
    if record is not None and record.client_id == client.client_id:
        if record.kind == "refresh":
            # §2.1: revoking a refresh token also ends the access tokens of the same grant.
            await srv.store.revoke_grant(record.grant_id, now=now)
        else:
            await srv.store.revoke_token(record.token_hash, now=now)
        audit("token_revoked", client_id=client.client_id, sub=record.sub, kind=record.kind)
    return json_response({})


async def _introspect(
    srv: ServerState, client: ClientConfig, record: OAuthTokenRecord | None
) -> Response:
    now = srv.now()
    # Refresh tokens are described only to their own client: a resource server asking about
    # one must not take it for an access token.
    if (
        record is None
        or not record.active(now)
        or (record.kind == "refresh" and record.client_id != client.client_id)
    ):
        return json_response({"active": False})
    return json_response(_describe(srv, record))


def _describe(srv: ServerState, record: OAuthTokenRecord) -> dict[str, object]:
    user = srv.config.user_by_sub(record.sub)
    body: dict[str, object] = {
        "active": True,
        "scope": " ".join(record.scopes),
        "client_id": record.client_id,
        "sub": record.sub,
        "exp": int(record.expires_at),
        "iat": int(record.issued_at),
        "iss": srv.config.issuer,
        "token_type": "Bearer" if record.kind == "access" else "refresh_token",
    }
    if user is not None:
        body["username"] = user.username
    if record.resource is not None:
        body["aud"] = record.resource
    return body


async def userinfo(srv: ServerState, request: Request) -> Response:
    """``GET /userinfo`` with ``Authorization: Bearer``: the user's stable id and profile."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return _unauthorized(None)
    record = await srv.store.find_token(value.strip())
    now = srv.now()
    user = srv.config.user_by_sub(record.sub) if record is not None else None
    if record is None or record.kind != "access" or not record.active(now) or user is None:
        audit("userinfo_rejected", reason="invalid_token")
        return _unauthorized("invalid_token")
    return json_response(
        {
            "sub": user.sub,
            "name": user.name,
            "preferred_username": user.username,
            "email": user.email,
        }
    )


def _unauthorized(error: str | None) -> Response:
    body = {"error": error or "invalid_request"}
    response = json_response(body, 401)
    # RFC 6750 §3: the WWW-Authenticate challenge of a bearer-protected resource.
    value = 'Bearer realm="athkit-oauth"'
    if error is not None:
        value += f', error="{error}"'
    response.headers["WWW-Authenticate"] = value
    return response
