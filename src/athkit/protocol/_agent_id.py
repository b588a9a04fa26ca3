"""Agent identity URLs in their one canonical form (ATH §2, our decision).

An ``agent_id`` is an identity: two spellings of one URL must never become two agents, and a
spelling that points somewhere else than it seems (userinfo, dot segments) must never be one.
So only the canonical form is accepted, and canonical forms are what is compared:

* scheme ``https`` — or ``http`` for a loopback host (``127.0.0.0/8``, ``[::1]``, ``localhost``),
  which development setups use; whether plain http is allowed at all is the fetch policy's call;
* lower-case scheme and host; no trailing dot; an IP literal in its shortest form
  (``127.0.0.1``, ``[::1]``); an ASCII host (IDNA names in their ``xn--`` form);
* the default port (443, 80) omitted, any other port without leading zeros;
* no userinfo (``user@``), no fragment (``#``), no query unless the operator allows one;
* a path that starts with ``/``, with no ``.`` or ``..`` segments (encoded or not) and no empty
  segments (``//``; a single trailing ``/`` is allowed);
* percent-escapes in upper case, and none for unreserved characters (RFC 3986 §6.2.2).

:func:`canonical_agent_id` repairs what is only spelling (case, default port, escapes) and
refuses what is not an identity URL; :func:`check_agent_id` accepts only a value that already
is canonical, and its error names the canonical spelling when there is one.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

_DEFAULT_PORTS = {"https": 443, "http": 80}
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
# RFC 3986 pchar plus "/" (and "?" for a query), with "%" only as the start of an escape.
_PATH_CHARS = re.compile(r"^[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*$")
_QUERY_CHARS = re.compile(r"^[A-Za-z0-9\-._~!$&'()*+,;=:@/?%]*$")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
MAX_AGENT_ID_LENGTH = 2048


class AgentIdError(ValueError):
    """An ``agent_id`` that is not a usable identity URL; ``reason`` is a short machine word."""

    def __init__(self, reason: str, message: str, *, canonical: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.canonical = canonical


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (lower-case, IPv6 without brackets) is ``localhost`` or a loopback IP."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def canonical_agent_id(value: str, *, allow_query: bool = False) -> str:
    """The canonical spelling of the identity URL ``value``; :class:`AgentIdError` if none.

    Case, a default port and percent-escape spelling are repaired; everything else that the
    module docstring forbids is refused.
    """
    if not isinstance(value, str) or not value:
        raise AgentIdError("empty", "agent_id must be a non-empty URL")
    if len(value) > MAX_AGENT_ID_LENGTH:
        raise AgentIdError("too_long", f"agent_id is longer than {MAX_AGENT_ID_LENGTH} characters")
    if not value.isascii() or any(ord(c) <= 0x20 or ord(c) == 0x7F for c in value):
        raise AgentIdError(
            "bad_characters",
            "agent_id must be ASCII without spaces or control characters "
            "(percent-encode the path; write an IDNA host in its xn-- form)",
        )
    if "#" in value:
        raise AgentIdError("fragment", "agent_id must not have a fragment (#...)")
    if "\\" in value:
        raise AgentIdError("bad_characters", "agent_id must not contain a backslash")
    parts = urlsplit(value)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not value[: len(scheme) + 3].lower().endswith("://"):
        raise AgentIdError("scheme", "agent_id must be an https:// URL")
    if "@" in parts.netloc:
        raise AgentIdError("userinfo", "agent_id must not carry a user name or password (user@)")
    host = _canonical_host(parts.netloc)
    if scheme == "http" and not is_loopback_host(host.strip("[]")):
        raise AgentIdError(
            "scheme", "agent_id must be an https:// URL (http is only for loopback hosts)"
        )
    port = _canonical_port(parts.netloc, scheme)
    path = _canonical_path(parts.path)
    query = ""
    if parts.query or value.endswith("?"):
        if not allow_query:
            raise AgentIdError("query", "agent_id must not have a query (?...)")
        if not _QUERY_CHARS.match(parts.query):
            raise AgentIdError("bad_characters", "agent_id's query has characters to escape")
        query = "?" + _normalize_escapes(parts.query)
    return f"{scheme}://{host}{port}{path}{query}"


def check_agent_id(value: str, *, allow_query: bool = False) -> str:
    """``value`` itself when it is canonical; else :class:`AgentIdError` naming the fix."""
    canonical = canonical_agent_id(value, allow_query=allow_query)
    if canonical != value:
        raise AgentIdError(
            "not_canonical",
            f"agent_id is not in canonical form; use {canonical}",
            canonical=canonical,
        )
    return value


def same_agent_id(presented: str, canonical: str, *, allow_query: bool = False) -> bool:
    """Whether ``presented`` (any spelling) names the agent whose canonical id is ``canonical``."""
    try:
        return canonical_agent_id(presented, allow_query=allow_query) == canonical
    except AgentIdError:
        return False


def _canonical_host(netloc: str) -> str:
    if netloc.startswith("["):
        literal, bracket, _ = netloc[1:].partition("]")
        if not bracket:
            raise AgentIdError("host", "agent_id has an unclosed IPv6 literal")
        try:
            address = ipaddress.IPv6Address(literal)
        except ValueError:
            raise AgentIdError("host", "agent_id has an invalid IPv6 literal") from None
        return f"[{address.compressed}]"
    host = netloc.rpartition(":")[0] if ":" in netloc else netloc
    host = host.lower()
    if not host:
        raise AgentIdError("host", "agent_id has no host")
    if "%" in host:
        raise AgentIdError("host", "agent_id's host must not be percent-encoded")
    if host.endswith("."):
        raise AgentIdError("host", "agent_id's host must not end with a dot")
    labels = host.split(".")
    if all(label.isdigit() for label in labels) or labels[-1].isdigit() or host.startswith("0x"):
        # Looks like an IPv4 address: only the dotted-quad form is one (no 127.1, no octal).
        try:
            address4 = ipaddress.IPv4Address(host)
        except ValueError:
            raise AgentIdError("host", "agent_id's host is not a valid IPv4 address") from None
        if str(address4) != host:
            raise AgentIdError("host", "agent_id's IPv4 address must be in dotted-quad form")
        return host
    if len(host) > 253 or not all(_LABEL.match(label) for label in labels):
        raise AgentIdError("host", "agent_id's host is not a valid DNS name")
    return host


def _canonical_port(netloc: str, scheme: str) -> str:
    after = netloc.rpartition("]")[2] if netloc.startswith("[") else netloc
    if ":" not in after:
        return ""
    digits = after.rpartition(":")[2]
    if not digits:
        return ""  # "host:" means the default port (RFC 3986 §6.2.3)
    if not digits.isdigit() or not 0 < int(digits) < 65536:
        raise AgentIdError("port", "agent_id's port must be a number from 1 to 65535")
    number = int(digits)
    return "" if number == _DEFAULT_PORTS[scheme] else f":{number}"


def _canonical_path(path: str) -> str:
    if not path:
        return "/"
    if not _PATH_CHARS.match(path):
        raise AgentIdError("bad_characters", "agent_id's path has characters to percent-encode")
    path = _normalize_escapes(path)
    segments = path.split("/")[1:]
    for index, segment in enumerate(segments):
        if segment in (".", ".."):  # escapes of "." were decoded just above
            raise AgentIdError("dot_segment", "agent_id's path must not have . or .. segments")
        if not segment and index < len(segments) - 1:
            raise AgentIdError("empty_segment", "agent_id's path must not have empty segments (//)")
    return path


def _normalize_escapes(text: str) -> str:
    if "%" in text and text.count("%") != len(_ESCAPE.findall(text)):
        raise AgentIdError("bad_escape", "agent_id has a % that does not start a %XX escape")

    def fix(match: re.Match[str]) -> str:
        char = chr(int(match.group(1), 16))
        return char if char in _UNRESERVED else f"%{match.group(1).upper()}"

    return _ESCAPE.sub(fix, text)
