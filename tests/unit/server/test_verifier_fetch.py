"""The guarded identity-document fetcher, over real HTTP on loopback.

Every connection these tests make or refuse is to 127.0.0.0/8 or [::1].
"""

from __future__ import annotations

import datetime
import json
import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from athkit.protocol import ATHError, ErrorCode
from athkit.server import FetchPolicy, IdentityFetcher
from athkit.testing import serve_in_thread
from tests.unit.server._verifier_support import (
    DocumentHost,
    Listener,
    Reply,
    document_host,
    ipv6_loopback_available,
)

__all__ = ["document_host"]

DEV = FetchPolicy(allow_http=True, allow_loopback=True)


@pytest.fixture
async def fetcher() -> AsyncIterator[IdentityFetcher]:
    async with IdentityFetcher(DEV) as f:
        yield f


def _reason(exc: pytest.ExceptionInfo[ATHError]) -> str:
    assert exc.value.code is ErrorCode.INVALID_ATTESTATION
    return str(exc.value.details["reason"])


async def test_fetches_json_and_reads_max_age(
    fetcher: IdentityFetcher, document_host: DocumentHost
) -> None:
    path = document_host.new_path()
    document_host.replies[path] = Reply(
        body=b'{"hello": "world"}',
        headers={"content-type": "application/json", "cache-control": "public, max-age=42"},
    )
    fetched = await fetcher.fetch(document_host.url + path)
    assert fetched.data == {"hello": "world"}
    assert fetched.max_age == 42
    assert document_host.hits[path] == 1


async def test_redirect_is_refused_and_not_followed(
    fetcher: IdentityFetcher, document_host: DocumentHost
) -> None:
    path, target = document_host.new_path(), document_host.new_path()
    document_host.replies[target] = Reply(body=b"{}")
    document_host.replies[path] = Reply(status=302, headers={"location": target})
    with pytest.raises(ATHError) as exc:
        await fetcher.fetch(document_host.url + path)
    assert _reason(exc) == "identity_fetch_refused"
    assert exc.value.details["refused"] == "redirect"
    assert document_host.hits[target] == 0


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (Reply(body=b"<html>hi</html>", headers={"content-type": "text/html"}), "invalid"),
        (Reply(body=b"not json at all"), "invalid"),
        (Reply(body=b'["a", "list"]'), "invalid"),
        (Reply(body=b"{}", status=404), "failed"),
        (Reply(body=b"{}", status=500), "failed"),
    ],
    ids=["html", "garbage", "array", "404", "500"],
)
async def test_non_json_or_bad_status_is_refused(
    fetcher: IdentityFetcher, document_host: DocumentHost, reply: Reply, reason: str
) -> None:
    path = document_host.new_path()
    document_host.replies[path] = reply
    with pytest.raises(ATHError) as exc:
        await fetcher.fetch(document_host.url + path)
    expected = "identity_document_invalid" if reason == "invalid" else "identity_fetch_failed"
    assert _reason(exc) == expected


async def test_declared_oversize_body_is_refused(
    fetcher: IdentityFetcher, document_host: DocumentHost
) -> None:
    path = document_host.new_path()
    big = json.dumps({"pad": "x" * (DEV.max_bytes + 10)}).encode()
    document_host.replies[path] = Reply(body=big)
    with pytest.raises(ATHError) as exc:
        await fetcher.fetch(document_host.url + path)
    assert _reason(exc) == "identity_document_invalid"
    assert "larger than 65536 bytes" in exc.value.message


async def test_streamed_body_is_capped_while_reading(document_host: DocumentHost) -> None:
    # No Content-Length and 160 MiB on offer: only the streaming cap can stop this in time.
    path = document_host.new_path()
    document_host.replies[path] = Reply(body=b" " * 16384, stream_chunks=10_000)
    async with IdentityFetcher(
        FetchPolicy(allow_http=True, allow_loopback=True, max_bytes=1000)
    ) as small:
        with pytest.raises(ATHError) as exc:
            await small.fetch(document_host.url + path)
    assert _reason(exc) == "identity_document_invalid"
    assert "larger than 1000 bytes" in exc.value.message


async def test_slow_host_times_out(document_host: DocumentHost) -> None:
    path = document_host.new_path()
    document_host.replies[path] = Reply(body=b"{}", delay=1.5)
    policy = FetchPolicy(allow_http=True, allow_loopback=True, read_timeout=0.3)
    async with IdentityFetcher(policy) as quick:
        with pytest.raises(ATHError) as exc:
            await quick.fetch(document_host.url + path)
    assert _reason(exc) == "identity_fetch_failed"
    assert "timed out" in exc.value.message


async def test_http_is_refused_unless_allowed(document_host: DocumentHost) -> None:
    path = document_host.new_path()
    document_host.replies[path] = Reply(body=b"{}")
    async with IdentityFetcher(FetchPolicy(allow_loopback=True)) as https_only:
        with pytest.raises(ATHError) as exc:
            await https_only.fetch(document_host.url + path)
    assert _reason(exc) == "identity_fetch_refused"
    assert exc.value.details["refused"] == "scheme"
    assert document_host.hits[path] == 0


@pytest.mark.parametrize(
    "url",
    ["ftp://127.0.0.1/agent.json", "not a url", "https://user:pw@127.0.0.1/agent.json", ""],
)
async def test_unusable_urls_are_refused(fetcher: IdentityFetcher, url: str) -> None:
    with pytest.raises(ATHError) as exc:
        await fetcher.fetch(url)
    assert _reason(exc) == "identity_fetch_refused"


# --- SSRF: refused before any connection -------------------------------------------------


@pytest.fixture
def listener() -> Iterator[Listener]:
    sock = Listener(__import__("socket").AF_INET, "127.0.0.1")
    yield sock
    sock.close()


@pytest.mark.parametrize(
    "policy", [FetchPolicy(), FetchPolicy(allow_http=True)], ids=["default", "http-allowed"]
)
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "127.0.0.2"])
async def test_loopback_refused_by_default_without_connecting(
    listener: Listener, policy: FetchPolicy, host: str
) -> None:
    scheme = "http" if policy.allow_http else "https"
    async with IdentityFetcher(policy) as guarded:
        with pytest.raises(ATHError) as exc:
            await guarded.fetch(f"{scheme}://{host}:{listener.port}/.well-known/agent.json")
    assert _reason(exc) == "identity_fetch_refused"
    assert exc.value.details["refused"] == "loopback"
    if host == "localhost":
        assert "127.0.0" not in exc.value.message  # the resolved address is not disclosed
    assert listener.connections() == 0


@pytest.mark.skipif(not ipv6_loopback_available(), reason="no IPv6 loopback")
async def test_ipv6_loopback_refused_without_connecting() -> None:
    import socket

    v6 = Listener(socket.AF_INET6, "::1")
    try:
        for policy in (FetchPolicy(), FetchPolicy(allow_http=True)):
            scheme = "http" if policy.allow_http else "https"
            async with IdentityFetcher(policy) as guarded:
                with pytest.raises(ATHError) as exc:
                    await guarded.fetch(f"{scheme}://[::1]:{v6.port}/agent.json")
            assert exc.value.details["refused"] == "loopback"
        assert v6.connections() == 0
    finally:
        v6.close()


async def test_name_resolving_to_any_refused_address_is_refused(listener: Listener) -> None:
    # One good and one private answer: the whole name is refused, nothing is connected.
    async def resolver(host: str, port: int) -> list[str]:
        return ["127.0.0.1", "10.0.0.1"]

    async with IdentityFetcher(DEV, _resolver=resolver) as guarded:
        with pytest.raises(ATHError) as exc:
            await guarded.fetch(f"http://agent.test:{listener.port}/agent.json")
    assert exc.value.details["refused"] == "private"
    assert listener.connections() == 0


async def test_connects_to_the_checked_address_keeping_the_host_name(
    document_host: DocumentHost,
) -> None:
    # "agent.test" exists only in this resolver: the request can only have reached the server
    # through the address the guard resolved and checked, with Host left as the name.
    lookups: list[str] = []

    async def resolver(host: str, port: int) -> list[str]:
        lookups.append(host)
        return ["127.0.0.1"]

    path = document_host.new_path()
    document_host.replies[path] = Reply(body=b'{"ok": true}')
    assert document_host.server is not None
    port = document_host.server.port
    async with IdentityFetcher(DEV, _resolver=resolver) as guarded:
        fetched = await guarded.fetch(f"http://agent.test:{port}{path}")
    assert fetched.data == {"ok": True}
    assert lookups == ["agent.test"]
    assert document_host.host_headers[path] == [f"agent.test:{port}"]


def _tls_files(tmp: Path, name: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def test_https_keeps_sni_and_certificate_check_on_the_name(tmp_path: Path) -> None:
    cert_path, key_path = _tls_files(tmp_path, "agent.test")
    host = DocumentHost()
    path = host.new_path()
    host.replies[path] = Reply(body=b'{"tls": true}')

    async def resolver(name: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    trust = ssl.create_default_context(cafile=str(cert_path))
    policy = FetchPolicy(allow_loopback=True, ssl_context=trust)
    with serve_in_thread(
        host.app, ssl_certfile=str(cert_path), ssl_keyfile=str(key_path)
    ) as server:
        async with IdentityFetcher(policy, _resolver=resolver) as guarded:
            fetched = await guarded.fetch(f"https://agent.test:{server.port}{path}")
            assert fetched.data == {"tls": True}
            # The same server by address: the certificate names agent.test, so this fails.
            with pytest.raises(ATHError) as exc:
                await guarded.fetch(f"https://127.0.0.1:{server.port}{path}")
    assert _reason(exc) == "identity_fetch_failed"
    assert host.hits[path] == 1


async def test_proxy_settings_from_the_environment_are_ignored(
    document_host: DocumentHost, listener: Listener, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A proxy would open the connection on our behalf, past the address check.
    proxy = f"http://127.0.0.1:{listener.port}"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
        monkeypatch.setenv(name, proxy)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    path = document_host.new_path()
    document_host.replies[path] = Reply(body=b'{"direct": true}')
    async with IdentityFetcher(DEV) as fetcher:
        fetched = await fetcher.fetch(document_host.url + path)
    assert fetched.data == {"direct": True}
    assert listener.connections() == 0
