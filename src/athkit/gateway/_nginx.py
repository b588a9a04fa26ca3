"""An nginx configuration for forward-auth: nginx forwards agent calls, athkit only decides.

``nginx_config`` renders what goes in nginx's ``http`` context (``conf.d/``): one ``upstream``
for athkit and one per provider API, three ``map`` blocks and a ``server``. In that server:

* ``/ath/proxy/{provider_id}/{path}`` — the same URL as the built-in proxy, so agents change
  nothing. ``auth_request`` asks athkit's ``/ath/check`` (through the internal location
  ``/_ath_check``, with the original method and raw URI in ``X-Original-Method`` /
  ``X-Original-URI``, the agent's ``Authorization`` and ``X-ATH-Agent-ID`` and no other of its
  headers, and the shared secret in ``X-ATH-Check-Secret``). On 2xx the user's
  provider token, carried back in ``X-ATH-Upstream-Authorization`` and taken by
  ``auth_request_set``, replaces the agent's ``Authorization`` on the forwarded request; the
  agent's ``X-ATH-Agent-ID`` and ``Cookie`` are dropped.
* A refusal: ``auth_request`` itself passes only 401 and 403 (anything else becomes 500), so
  ``error_page 401 403 500 = @ath_denied`` answers from what the check sent back — its status
  (``$upstream_status``) and its ATH JSON error, which the check also puts in the ``X-ATH-Error``
  header because nginx drops a subrequest's body. If athkit did not answer at all, the call is
  refused with 503 ``INTERNAL_ERROR`` (fail closed).
* The provider and the path are cut out of the *raw* ``$request_uri`` by the same rule the check
  uses, and the path goes upstream exactly as the agent sent it (a variable in ``proxy_pass``
  turns off nginx's own normalisation): the check decides on the very bytes that are forwarded,
  and the upstream is chosen by that provider, never by nginx's normalised location.
* Everything else (handshake, consent, callback, token, revoke, admin, discovery) goes to
  athkit unchanged; ``/ath/check`` is answered 404 by nginx, and a ``X-ATH-Check-Secret`` sent
  by a client is blanked before it reaches athkit.
* Bodies and answers stream both ways (``proxy_request_buffering off``, ``proxy_buffering off``),
  connections to athkit and the APIs are kept alive, https APIs have their certificates checked.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from athkit.gateway._check import CREDENTIALS_HEADER
from athkit.gateway._schema import GatewayConfig
from athkit.protocol import AGENT_ID_HEADER, CHECK_PATH, ERROR_HEADER, PROXY_PREFIX
from athkit.server._forward_auth import SECRET_HEADER

# Every status the check may refuse with (ATH §7 table plus our additions).
DENY_STATUSES = (400, 401, 403, 404, 409, 413, 415, 429, 500, 502, 503, 504)
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"  # Debian's ca-certificates

_CHECK_DOWN = json.dumps(
    {
        "code": "INTERNAL_ERROR",
        "message": "the ATH access check did not answer, so the call was refused",
        "details": {"reason": "check_unavailable"},
    },
    separators=(",", ":"),
)


def _upstream_error(code: str, message: str, details: dict[str, str] | None = None) -> str:
    return json.dumps(
        {"code": code, "message": message, "details": details or {}}, separators=(",", ":")
    )


# After an allowed check, $ath_provider is the token's provider: a configured id (letters,
# digits, "_.-"), safe inside these JSON strings.
_UNAVAILABLE = _upstream_error(
    "UPSTREAM_UNAVAILABLE",
    "provider $ath_provider could not be reached",
    {"provider_id": "$ath_provider"},
)
_TIMEOUT = _upstream_error(
    "UPSTREAM_TIMEOUT",
    "provider $ath_provider did not answer in time",
    {"provider_id": "$ath_provider"},
)


def _header_var(header: str, *, answer: bool = False) -> str:
    """nginx's variable for ``header`` of the request (``$http_…``) or of the check's answer
    (``$upstream_http_…``)."""
    return ("$upstream_http_" if answer else "$http_") + header.lower().replace("-", "_")


def _quote(value: str) -> str:
    """An nginx string literal (single-quoted)."""
    if any(c in value for c in "'\\\n\r") or any(ord(c) < 32 for c in value):
        raise ValueError(f"cannot put {value!r} in an nginx configuration")
    return f"'{value}'"


def _split_api_base(api_base: str) -> tuple[str, str, str]:
    """``(scheme, host:port, path)`` of a provider's ``api_base``; the port made explicit."""
    parts = urlsplit(api_base)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"api_base must be an http(s) URL, got {api_base!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    return parts.scheme, f"{host}:{port}", parts.path.rstrip("/")


def _host_header(api_base: str) -> str:
    return urlsplit(api_base).netloc.rpartition("@")[2]


def nginx_config(
    config: GatewayConfig,
    secret: str,
    *,
    listen: str = "80",
    server_name: str | None = None,
    athkit: str | None = None,
    keepalive: int = 64,
) -> str:
    """The nginx configuration (``http`` context) for ``config``'s providers.

    ``secret`` is the ``[forward_auth]`` shared secret, written into the configuration (keep the
    file readable by root only); ``listen`` is nginx's ``listen`` argument; ``server_name``
    defaults to the host of ``public_base_url`` (agents' attestations name that URL, so nginx
    must be what it points to); ``athkit`` is where athkit listens (default: ``listen``).
    """
    if len(secret) < 32:
        raise ValueError("the forward-auth secret must be at least 32 characters")
    name = server_name or urlsplit(config.public_base_url).hostname or "_"
    backend = athkit or config.listen
    # One location serves every provider, so its timeouts are the most lenient configured.
    connect_timeout = max(
        [config.proxy.connect_timeout_seconds]
        + [
            p.connect_timeout_seconds
            for p in config.providers.values()
            if p.connect_timeout_seconds
        ]
    )
    read_timeout = max(
        [config.proxy.timeout_seconds]
        + [p.timeout_seconds for p in config.providers.values() if p.timeout_seconds]
    )
    lines = [
        f"# ATH forward-auth for gateway {config.gateway_id!r}, generated by"
        " `ath gateway nginx-config`.",
        "# nginx forwards agent calls /ath/proxy/{provider_id}/{path}; athkit decides each one",
        "# (its /ath/check endpoint, reached only from here, with the shared secret below).",
        "# It holds that secret: keep this file readable by root only.",
        "",
        "upstream ath_gateway {",
        f"    server {backend};",
        f"    keepalive {keepalive};",
        "}",
    ]
    apis: dict[str, tuple[str, str, str, str]] = {}
    for index, (pid, provider) in enumerate(sorted(config.providers.items())):
        scheme, hostport, path = _split_api_base(provider.api_base)
        group = f"ath_api_{index}"
        apis[pid] = (scheme, group, path, _host_header(provider.api_base))
        lines += [
            f"upstream {group} {{  # provider {pid}: {provider.api_base}",
            f"    server {hostport};",
            f"    keepalive {keepalive};",
            "}",
        ]
    lines += [
        "",
        "# The provider and the rest of the raw request URI, cut by the rule /ath/check uses.",
        "map $request_uri $ath_provider {",
        f"    ~^{PROXY_PREFIX}(?<ath_p>[^/?]+) $ath_p;",
        '    default "";',
        "}",
        "map $request_uri $ath_rest {",
        f"    ~^{PROXY_PREFIX}[^/?]+(?<ath_r>.*)$ $ath_r;",
        '    default "";',
        "}",
        "map $ath_provider $ath_api {",
        *(
            f"    {_quote(pid)} {scheme}://{group}{path};"
            for pid, (scheme, group, path, _) in apis.items()
        ),
        '    default "";',
        "}",
        "map $ath_provider $ath_api_host {",
        *(f"    {_quote(pid)} {_quote(host)};" for pid, (_, _, _, host) in apis.items()),
        '    default "";',
        "}",
        "# The refusal's own WWW-Authenticate (RFC 6750 insufficient_scope on a 403); on a 401",
        "# nginx's auth_request already passes the check's challenge on.",
        "map $ath_status $ath_challenge {",
        '    401 "";',
        "    default $ath_www_authenticate;",
        "}",
        "",
        "server {",
        f"    listen {listen};",
        f"    server_name {name};",
        *(
            ["    # ssl_certificate and ssl_certificate_key for server_name go here."]
            if "ssl" in listen.split()
            else []
        ),
        "",
        "    # The ATH endpoints (discovery, register, authorize, consent, callback, token,",
        "    # revoke, admin): athkit answers them itself.",
        "    location / {",
        "        proxy_pass http://ath_gateway;",
        "        proxy_http_version 1.1;",
        '        proxy_set_header Connection "";',
        "        proxy_set_header Host $host;",
        "        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        f'        proxy_set_header {SECRET_HEADER} "";',
        "    }",
        "",
        "    # The decision endpoint is for nginx only.",
        f"    location {CHECK_PATH} {{",
        "        default_type application/json;",
        "        return 404 "
        + _quote(_upstream_error("INVALID_REQUEST", "no such endpoint"))
        + ";",
        "    }",
        "",
        "    # Agent calls: athkit decides, nginx forwards.",
        f"    location {PROXY_PREFIX} {{",
        "        auth_request /_ath_check;",
        "        auth_request_set $ath_upstream_authorization"
        f" {_header_var(CREDENTIALS_HEADER, answer=True)};",
        "        auth_request_set $ath_status $upstream_status;",
        f"        auth_request_set $ath_error {_header_var(ERROR_HEADER, answer=True)};",
        "        auth_request_set $ath_retry_after $upstream_http_retry_after;",
        "        auth_request_set $ath_www_authenticate $upstream_http_www_authenticate;",
        "        error_page 401 403 500 = @ath_denied;",
        "        error_page 502 = @ath_upstream_unavailable;",
        "        error_page 504 = @ath_upstream_timeout;",
        "",
        "        proxy_pass $ath_api$ath_rest;",
        "        proxy_set_header Host $ath_api_host;",
        "        proxy_set_header Authorization $ath_upstream_authorization;",
        f'        proxy_set_header {AGENT_ID_HEADER} "";',
        '        proxy_set_header Cookie "";',
        "        proxy_http_version 1.1;",
        '        proxy_set_header Connection "";',
        "        proxy_request_buffering off;",
        "        proxy_buffering off;",
        "        client_max_body_size 0;",
        f"        proxy_connect_timeout {connect_timeout:g}s;",
        f"        proxy_read_timeout {read_timeout:g}s;",
        f"        proxy_send_timeout {read_timeout:g}s;",
        "        proxy_ssl_server_name on;",
        "        proxy_ssl_name $ath_api_host;",
        "        proxy_ssl_verify on;",
        f"        proxy_ssl_trusted_certificate {CA_BUNDLE};",
        "    }",
        "",
        "    location = /_ath_check {",
        "        internal;",
        f"        proxy_pass http://ath_gateway{CHECK_PATH};",
        "        proxy_pass_request_body off;",
        '        proxy_set_header Content-Length "";',
        "        proxy_pass_request_headers off;  # only what the check reads:",
        "        proxy_set_header Authorization $http_authorization;",
        f"        proxy_set_header {AGENT_ID_HEADER} {_header_var(AGENT_ID_HEADER)};",
        "        proxy_set_header X-Original-URI $request_uri;",
        "        proxy_set_header X-Original-Method $request_method;",
        f"        proxy_set_header {SECRET_HEADER} {_quote(secret)};",
        "        proxy_http_version 1.1;",
        '        proxy_set_header Connection "";',
        "        proxy_buffer_size 8k;",
        "    }",
        "",
        "    # A refusal: the check's status and ATH JSON error, as the built-in proxy answers.",
        "    location @ath_denied {",
        "        default_type application/json;",
        "        add_header Cache-Control no-store always;",
        "        add_header Retry-After $ath_retry_after always;",
        "        add_header WWW-Authenticate $ath_challenge always;",
        f'        if ($ath_error = "") {{ return 503 {_quote(_CHECK_DOWN)}; }}',
        *(f"        if ($ath_status = {s}) {{ return {s} $ath_error; }}" for s in DENY_STATUSES),
        f"        return 503 {_quote(_CHECK_DOWN)};",
        "    }",
        "    location @ath_upstream_unavailable {",
        "        default_type application/json;",
        "        return 502 " + _quote(_UNAVAILABLE) + ";",
        "    }",
        "    location @ath_upstream_timeout {",
        "        default_type application/json;",
        "        return 504 " + _quote(_TIMEOUT) + ";",
        "    }",
        "}",
        "",
    ]
    return "\n".join(lines)
