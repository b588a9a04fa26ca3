"""Fetching identity documents without becoming an SSRF tool (ATH §2, our decision).

The URL comes from an untrusted attestation's ``sub``, so the fetch is guarded:

* scheme: ``https`` only, unless ``FetchPolicy.allow_http``;
* address: checked *after* DNS resolution, on every address a name resolves to (one bad
  address refuses the whole name), and the connection then goes to an address that was checked.
  There is no second lookup, so a name cannot pass the check and then rebind to 127.0.0.1.
  This happens inside a custom ``httpcore`` network backend, so the request keeps the original
  host name in its ``Host`` header and TLS SNI / certificate check;
* redirects are never followed (a 3xx is an error), responses must be ``200`` and JSON, bodies
  are capped while streaming (``max_bytes``), and there are connect, read and total timeouts;
* no proxy from the environment (a proxy would make the connection on our behalf, unchecked).

Address classes (:func:`classify_address`) and what may open them:

    public        always allowed
    loopback      127.0.0.0/8, ::1                                 allow_loopback or allowed_hosts
    private       10/8, 172.16/12, 192.168/16, 100.64/10 (CGNAT),  allow_private or allowed_hosts
                  fc00::/7 (ULA), fec0::/10
    link_local    169.254.0.0/16, fe80::/10                        never
    metadata      169.254.169.254, 169.254.170.2, 100.100.100.200, never
                  168.63.129.16, fd00:ec2::254
    unspecified   0.0.0.0/8, ::                                    never
    multicast     224.0.0.0/4, ff00::/8                            never
    reserved      everything else that is not globally routable    never

Our decision: link-local and cloud-metadata addresses cannot be opened by any setting. No
honest identity document lives there, and the metadata service is the classic SSRF prize. An
IPv4 address embedded in IPv6 (``::ffff:a.b.c.d``, NAT64 ``64:ff9b::/96``, 6to4 ``2002::/16``)
is classified by the IPv4 address it carries.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import httpcore
import httpx

from athkit.protocol import ATHError, ErrorCode, JSONLimits, JSONRejected, loads_bounded

logger = logging.getLogger("athkit.server.fetch")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]


class AddressClass(StrEnum):
    """Where an IP address points, for the SSRF check."""

    PUBLIC = "public"
    LOOPBACK = "loopback"
    PRIVATE = "private"
    LINK_LOCAL = "link_local"
    METADATA = "metadata"
    UNSPECIFIED = "unspecified"
    MULTICAST = "multicast"
    RESERVED = "reserved"


_METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, Oracle instance metadata
        "169.254.170.2",  # AWS ECS task metadata and credentials
        "100.100.100.200",  # Alibaba Cloud metadata (inside CGNAT space)
        "168.63.129.16",  # Azure wire server (a public-looking address)
        "fd00:ec2::254",  # AWS instance metadata over IPv6 (inside ULA space)
    )
)
_PRIVATE = tuple(
    ipaddress.ip_network(n)
    for n in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "fc00::/7",
        "fec0::/10",
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_RESERVED = ipaddress.ip_network("240.0.0.0/4")


def classify_address(address: str | IPAddress) -> AddressClass:
    """The class of one IP address (pure: no lookup, no connection)."""
    ip = ipaddress.ip_address(address.split("%")[0]) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            ip = ipaddress.IPv6Address(ip.packed)  # the zone does not change the class
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            return classify_address(embedded)
    if ip in _METADATA:
        return AddressClass.METADATA
    if ip.is_unspecified or (isinstance(ip, ipaddress.IPv4Address) and ip.packed[0] == 0):
        return AddressClass.UNSPECIFIED
    if ip.is_loopback:
        return AddressClass.LOOPBACK
    if ip.is_link_local:
        return AddressClass.LINK_LOCAL
    if ip.is_multicast:
        return AddressClass.MULTICAST
    if any(ip in net for net in _PRIVATE if net.version == ip.version):
        return AddressClass.PRIVATE
    if isinstance(ip, ipaddress.IPv4Address) and ip in _IPV4_RESERVED:
        return AddressClass.RESERVED
    if not ip.is_global:
        return AddressClass.RESERVED
    return AddressClass.PUBLIC


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(ip.packed[-4:])
    if ip.sixtofour is not None:
        return ip.sixtofour
    return None


def _normalize_host(host: str) -> str:
    return host.strip().rstrip(".").lower().strip("[]")


@dataclass(frozen=True, slots=True)
class FetchPolicy:
    """What an identity-document fetch may reach, and how long and large it may be.

    The defaults are for production: https only, public addresses only. A development setup
    with agents on 127.0.0.1 sets ``allow_http=True, allow_loopback=True`` explicitly.
    ``allowed_hosts`` names hosts (exact, case-insensitive) that may resolve to loopback or
    private addresses even when those classes are closed; it never opens link-local, metadata,
    unspecified, multicast or reserved addresses. ``ssl_context`` replaces the default
    certificate verification (for example, to trust a private CA); it never disables it.
    """

    allow_http: bool = False
    allow_loopback: bool = False
    allow_private: bool = False
    allowed_hosts: frozenset[str] = field(default_factory=frozenset)
    connect_timeout: float = 3.0
    read_timeout: float = 5.0
    total_timeout: float = 10.0
    max_bytes: int = 64 * 1024
    ssl_context: ssl.SSLContext | None = None

    def __post_init__(self) -> None:
        hosts: Iterable[str] = self.allowed_hosts
        if isinstance(hosts, str):
            hosts = [hosts]
        object.__setattr__(self, "allowed_hosts", frozenset(_normalize_host(h) for h in hosts))
        if self.max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        for name in ("connect_timeout", "read_timeout", "total_timeout"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")

    def permits(self, address_class: AddressClass, host: str | None = None) -> bool:
        """Whether a connection to an address of this class (reached via ``host``) is allowed."""
        if address_class is AddressClass.PUBLIC:
            return True
        named = host is not None and _normalize_host(host) in self.allowed_hosts
        if address_class is AddressClass.LOOPBACK:
            return self.allow_loopback or named
        if address_class is AddressClass.PRIVATE:
            return self.allow_private or named
        return False


@dataclass(frozen=True, slots=True)
class FetchedDocument:
    """A fetched JSON object and how long its server lets us cache it (None: not said)."""

    url: str
    data: dict[str, Any]
    max_age: int | None


class _AddressRefused(Exception):
    """Raised inside the network backend; turned into an ATHError by the fetcher."""

    def __init__(self, host: str, address: str, address_class: AddressClass) -> None:
        super().__init__(f"{host} resolves to a {address_class.value} address")
        self.host = host
        self.address = address
        self.address_class = address_class


async def _system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return [str(info[4][0]) for info in infos]


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolve once, check every address, connect only to a checked address."""

    def __init__(self, policy: FetchPolicy, resolver: Resolver | None = None) -> None:
        self._policy = policy
        self._resolver = resolver or _system_resolver
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109  (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        deadline = time.monotonic() + (timeout if timeout is not None else 30.0)
        addresses = await self._resolve(host, port, timeout)
        for address in addresses:
            address_class = classify_address(address)
            if not self._policy.permits(address_class, host):
                raise _AddressRefused(host, address, address_class)
        last_error: Exception | None = None
        for address in addresses:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                return await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=remaining,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last_error = exc
        if last_error is not None:
            raise last_error
        raise httpcore.ConnectTimeout(f"connecting to {host} timed out")

    async def _resolve(self, host: str, port: int, limit: float | None) -> list[str]:
        name = host.strip("[]")
        try:
            # A literal address is checked as it is, without a lookup.
            return [str(ipaddress.ip_address(name.split("%")[0]))]
        except ValueError:
            pass
        try:
            async with asyncio.timeout(limit):
                found = await self._resolver(name, port)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from None
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from None
        unique = list(dict.fromkeys(a.split("%")[0] for a in found))
        if not unique:
            raise httpcore.ConnectError(f"{host} resolves to no address")
        return unique

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109  (httpcore's interface)
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not used for identity documents")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport, with its connection pool on the guarded network backend."""

    def __init__(self, policy: FetchPolicy, resolver: Resolver | None = None) -> None:
        super().__init__(trust_env=False)
        ssl_context = policy.ssl_context or httpx.create_ssl_context(trust_env=False)
        # httpx builds its pool privately and takes no network backend, so we build an
        # equivalent pool (public httpcore API) on our backend and put it in its place.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=50,
            max_keepalive_connections=20,
            keepalive_expiry=30.0,
            network_backend=_GuardedBackend(policy, resolver),
        )


def _error(reason: str, message: str, **details: Any) -> ATHError:
    return ATHError(
        ErrorCode.INVALID_ATTESTATION,
        f"identity document: {message}",
        details={"reason": reason, **details},
    )


def _parse_max_age(cache_control: str | None) -> int | None:
    if not cache_control:
        return None
    max_age: int | None = None
    for directive in cache_control.split(","):
        name, _, value = directive.strip().partition("=")
        name = name.strip().lower()
        if name in ("no-store", "no-cache"):
            return 0
        if name == "max-age":
            try:
                max_age = max(0, int(value.strip().strip('"')))
            except ValueError:
                return 0
    return max_age


def _is_json_media_type(content_type: str | None) -> bool:
    if content_type is None:
        return True  # judged by parsing the body
    media = content_type.split(";")[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


class IdentityFetcher:
    """Fetches identity documents under a :class:`FetchPolicy`, over one pooled client.

    Create once, reuse for every fetch, close with :meth:`aclose`. Every failure is an
    ``ATHError(INVALID_ATTESTATION)`` whose ``details["reason"]`` is
    ``identity_fetch_refused`` (the policy forbids it; ``details["refused"]`` says why),
    ``identity_fetch_failed`` (network, timeout, status) or ``identity_document_invalid``
    (too large, not a JSON object).
    """

    def __init__(self, policy: FetchPolicy | None = None, *, _resolver: Resolver | None = None):
        self.policy = policy if policy is not None else FetchPolicy()
        timeout = httpx.Timeout(
            connect=self.policy.connect_timeout,
            read=self.policy.read_timeout,
            write=self.policy.read_timeout,
            pool=self.policy.connect_timeout,
        )
        self._client = httpx.AsyncClient(
            transport=_GuardedTransport(self.policy, _resolver),
            timeout=timeout,
            follow_redirects=False,
            trust_env=False,
            headers={
                "Accept": "application/json",
                # Undecoded bytes are what we count, so no compression (no zip bombs either).
                "Accept-Encoding": "identity",
                "User-Agent": "athkit (ATH identity document fetch)",
            },
        )

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self._client.aclose()

    async def __aenter__(self) -> IdentityFetcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def fetch(self, url: str) -> FetchedDocument:
        """GET ``url`` and return its JSON object, or raise ``ATHError``."""
        target = self._check_url(url)
        try:
            async with asyncio.timeout(self.policy.total_timeout):
                return await self._get(url, target)
        except _AddressRefused as exc:
            logger.warning(
                "identity fetch refused: %s resolves to %s (%s)",
                exc.host,
                exc.address,
                exc.address_class.value,
            )
            raise _error(
                "identity_fetch_refused",
                f"{exc.host} points to a {exc.address_class.value} address, "
                "which this server does not fetch from",
                refused=exc.address_class.value,
            ) from None
        except (httpx.TimeoutException, TimeoutError):
            raise _error("identity_fetch_failed", f"fetching {url} timed out") from None
        except httpx.HTTPError as exc:
            raise _error(
                "identity_fetch_failed", f"fetching {url} failed ({type(exc).__name__})"
            ) from None

    def _check_url(self, url: str) -> httpx.URL:
        if not isinstance(url, str) or not url or len(url) > 2048:
            raise _error("identity_fetch_refused", "agent_id is not a usable URL", refused="url")
        try:
            target = httpx.URL(url)
        except (httpx.InvalidURL, ValueError):
            raise _error(
                "identity_fetch_refused", "agent_id is not a valid URL", refused="url"
            ) from None
        allowed = ("https", "http") if self.policy.allow_http else ("https",)
        if target.scheme not in allowed:
            raise _error(
                "identity_fetch_refused",
                f"agent_id must be an {' or '.join(allowed)} URL, not {target.scheme or 'none'!r}",
                refused="scheme",
            )
        if not target.host:
            raise _error("identity_fetch_refused", "agent_id has no host", refused="url")
        if target.userinfo:
            raise _error(
                "identity_fetch_refused", "agent_id must not carry credentials", refused="url"
            )
        return target

    async def _get(self, url: str, target: httpx.URL) -> FetchedDocument:
        async with self._client.stream("GET", target) as response:
            status = response.status_code
            if 300 <= status < 400:
                raise _error(
                    "identity_fetch_refused",
                    f"{url} answered a redirect ({status}); redirects are not followed",
                    refused="redirect",
                )
            if status != 200:
                raise _error("identity_fetch_failed", f"{url} answered HTTP {status}")
            if not _is_json_media_type(response.headers.get("content-type")):
                raise _error(
                    "identity_document_invalid",
                    f"{url} is not JSON (Content-Type {response.headers['content-type']!r})",
                )
            encoding = response.headers.get("content-encoding", "identity").strip().lower()
            if encoding not in ("", "identity"):
                raise _error("identity_document_invalid", f"{url} is {encoding}-encoded")
            body = await self._read_capped(url, response)
            max_age = _parse_max_age(response.headers.get("cache-control"))
        try:
            data = loads_bounded(body, JSONLimits(max_bytes=self.policy.max_bytes))
        except JSONRejected as exc:
            raise _error(
                "identity_document_invalid", f"{url} is not acceptable JSON: {exc.message}"
            ) from None
        if not isinstance(data, dict):
            raise _error("identity_document_invalid", f"{url} is not a JSON object")
        return FetchedDocument(url=url, data=data, max_age=max_age)

    async def _read_capped(self, url: str, response: httpx.Response) -> bytes:
        limit = self.policy.max_bytes
        too_large = _error(
            "identity_document_invalid", f"{url} is larger than {limit} bytes", limit=limit
        )
        declared = response.headers.get("content-length")
        if (
            declared is not None
            and declared.strip().isascii()
            and declared.strip().isdigit()
            and int(declared) > limit
        ):
            raise too_large
        chunks: list[bytes] = []
        received = 0
        async for chunk in response.aiter_raw():
            received += len(chunk)
            if received > limit:
                raise too_large
            chunks.append(chunk)
        return b"".join(chunks)
