"""Hypothesis strategies for hostile HTTP requests, and what every answer must look like.

A request is one endpoint of one server (see ``_world``) with generated path parameters, query
string, headers and body: structurally valid JSON with hostile shapes (deep, wide, huge numbers,
long strings, NUL and lone surrogates, duplicate keys, wrong types in the real field names),
broken JSON and other encodings, form bodies, raw bytes, and hostile header values — plus,
often enough, real credentials so the input also reaches what lies behind authentication.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import httpx
from hypothesis import strategies as st

from tests.robustness._world import Endpoint, World

MAX_SECONDS = 10.0  # per request: generous for a busy 2-core machine, far below a hang

FIELDS = [
    # ATH (§4) and admin API fields
    "agent_id", "agent_attestation", "developer", "name", "id", "requested_providers",
    "provider_id", "scopes", "purpose", "redirect_uris", "client_id", "client_secret", "state",
    "user_redirect_uri", "resource", "grant_type", "code", "ath_session_id", "token", "reason",
    "token_id",
    # OAuth server, shop and console forms
    "response_type", "redirect_uri", "scope", "code_challenge", "code_challenge_method",
    "code_verifier", "refresh_token", "username", "password", "csrf_token", "request", "action",
    "product_id", "quantity", "ath_context", "token_type_hint", "next",
]  # fmt: skip

_TEXT = st.text(max_size=40)
_HOSTILE_TEXT = st.one_of(
    _TEXT,
    st.sampled_from(
        [
            *["", " ", "\x00", "\x00abc", "ü", "²", "\ud800", "../..", "%00", "%ff", "a" * 5000],
            *["null", "1e999", "-0", "NaN", "https://127.0.0.1:1/x", "<script>", "' OR 1=1 --"],
        ]
    ),
)
_SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    _HOSTILE_TEXT,
)
_JSON = st.recursive(
    _SCALAR,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(FIELDS) | _TEXT, inner, max_size=5)
    ),
    max_leaves=12,
)


@st.composite
def json_bytes(draw: st.DrawFn) -> bytes:
    """JSON text: well-formed objects with hostile values, or raw hostile JSON."""
    kind = draw(st.integers(0, 9))
    if kind <= 4:
        obj = draw(st.dictionaries(st.sampled_from(FIELDS), _JSON, max_size=8))
        # Lone surrogates are legal JSON escapes; ensure_ascii writes them as \udXXX.
        return json.dumps(obj).encode("utf-8")
    depth = draw(st.integers(30, 5000))
    return draw(
        st.sampled_from(
            [
                b"[" * depth + b"]" * depth,
                b'{"a":' * depth + b"1" + b"}" * depth,
                b'{"client_id": ' + b"9" * draw(st.integers(20, 5000)) + b"}",
                b'{"client_id": 1e999, "state": NaN, "scopes": [Infinity]}',
                b'{"state": "x", "state": "y"}',
                b'{"agent_id": "\\ud800", "code": "\\u0000"}',
                b"\xef\xbb\xbf{}",
                '{"token": "é"}'.encode("utf-16"),
                b'{"token": "\xff\xfe"}',
                b'{"a": [' + b"1," * 3000 + b"1]}",
                b"{",
                b"",
                b"null",
                b'"just a string"',
            ]
        )
    )


def form_bytes() -> st.SearchStrategy[bytes]:
    pairs = st.lists(st.tuples(st.sampled_from(FIELDS) | _TEXT, _HOSTILE_TEXT), max_size=8)
    return st.one_of(
        pairs.map(lambda p: urlencode([(k, v.encode("utf-8", "surrogatepass")) for k, v in p])
                  .encode()),
        st.sampled_from([b"a=%ff%fe", b"a=%00", b"=&=&&", b"a" * 40_000, b"x=1&" * 300]),
    )  # fmt: skip


# RFC 9110 §5.5 field values (visible ASCII, space, tab, obs-text). Other bytes are not HTTP:
# uvicorn refuses such a request with its own 400 before any application sees it.
# Leading or trailing whitespace is not part of a field value (h11 will not send it).
_HEADER_VALUE = st.binary(max_size=60).map(
    lambda b: bytes(c for c in b if c == 9 or 32 <= c != 127).strip(b" \t") or b"x"
)
_CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "application/json; charset=latin-1",
    "application/x-www-form-urlencoded",
    "application/merge-patch+json",
    "text/plain",
    "multipart/form-data; boundary=x",
    "",
    "garbage/;;;=",
]


@dataclass
class Probe:
    """One generated request."""

    method: str
    url: str
    headers: dict[str, Any]
    body: bytes | None

    def send(self, http: httpx.Client) -> tuple[httpx.Response, float]:
        started = time.monotonic()
        response = http.request(self.method, self.url, headers=self.headers, content=self.body)
        return response, time.monotonic() - started


@st.composite
def probes(draw: st.DrawFn, world: World, endpoints: list[Endpoint] | None = None) -> Probe:
    endpoint = draw(st.sampled_from(endpoints or world.endpoints))
    creds = world.credentials
    path = endpoint.path
    while "{" in path:
        start, end = path.index("{"), path.index("}")
        name = path[start + 1 : end].split(":")[0]
        known = [
            creds.client.get(endpoint.server, ("", ""))[0],
            "athshop",
            "example-mail",
            "messages",
            "1",
        ]
        value = draw(st.sampled_from(known) | _HOSTILE_TEXT | st.just("a/b/../c"))
        safe = "/" if name in ("rest", "path") else ""
        path = (
            path[:start]
            + (quote(value.encode("utf-8", "surrogatepass"), safe=safe) or "x")
            + path[end + 1 :]
        )
    query = draw(st.lists(st.tuples(st.sampled_from(FIELDS) | _TEXT, _HOSTILE_TEXT), max_size=5))
    url = endpoint.base + path
    if query:
        url += "?" + urlencode([(k, v.encode("utf-8", "surrogatepass")) for k, v in query])
    headers: dict[str, Any] = {}
    accept = draw(st.sampled_from([None, "application/json", "text/html,*/*", "*/*"]))
    if accept:
        headers["Accept"] = accept
    auth = draw(st.integers(0, 5))
    if auth == 1 and endpoint.server in creds.admin:
        headers["Authorization"] = f"Bearer {creds.admin[endpoint.server]}"
    elif auth == 2 and endpoint.server in creds.bearer:
        headers["Authorization"] = f"Bearer {creds.bearer[endpoint.server]}"
        headers["X-ATH-Agent-ID"] = creds.agent_id[endpoint.server]
    elif auth == 3:
        headers["Authorization"] = b"Bearer " + draw(_HEADER_VALUE)
        headers["X-ATH-Agent-ID"] = draw(_HEADER_VALUE)
    elif auth == 4:
        headers["Authorization"] = b"Basic " + draw(_HEADER_VALUE)
    if draw(st.booleans()):
        headers[draw(st.sampled_from(["Cookie", "Origin", "X-ATH-Attestation", "Referer"]))] = draw(
            _HEADER_VALUE
        )
    body: bytes | None = None
    if endpoint.method in ("POST", "PUT", "PATCH", "DELETE"):
        kind = draw(st.integers(0, 3))
        body = [
            draw(json_bytes()),
            draw(form_bytes()),
            draw(st.binary(max_size=200)),
            b"",
        ][kind]
        content_type = draw(st.sampled_from(_CONTENT_TYPES))
        if kind == 1 and draw(st.booleans()):
            content_type = "application/x-www-form-urlencoded"
        if kind == 0 and draw(st.booleans()):
            content_type = "application/json"
        if content_type:
            headers["Content-Type"] = content_type
    return Probe(endpoint.method, url, headers, body)


def check_answer(probe: Probe, response: httpx.Response, seconds: float) -> None:
    """No 5xx, the documented error shape, and an answer in bounded time."""
    where = f"{probe.method} {probe.url} {probe.headers!r} {probe.body!r:.300}"
    assert response.status_code < 500, f"{response.status_code} for {where}: {response.text[:300]}"
    assert seconds < MAX_SECONDS, f"{seconds:.1f} s for {where}"
    if response.status_code < 400:
        return
    media = response.headers.get("content-type", "").split(";")[0].strip()
    if media == "text/html":
        assert "<html" in response.text.lower(), f"empty HTML error page for {where}"
        return
    assert media == "application/json", f"{media!r} error body for {where}: {response.text[:200]}"
    body = response.json()
    assert isinstance(body, dict), where
    # ATH §7 {"code","message"} from athkit servers; RFC 6749 {"error",...} from the OAuth
    # servers and the demo mail API (an OAuth-protected API that knows nothing of ATH).
    assert {"code", "message"} <= body.keys() or "error" in body, f"{body} for {where}"
