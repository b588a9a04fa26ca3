"""The SSRF address classifier and the policy over it: pure functions, no network at all."""

from __future__ import annotations

import ipaddress

import pytest

from athkit.server import FetchPolicy
from athkit.server._fetch import AddressClass, classify_address


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("10.0.0.1", AddressClass.PRIVATE),
        ("172.16.0.1", AddressClass.PRIVATE),
        ("172.31.255.254", AddressClass.PRIVATE),
        ("192.168.1.1", AddressClass.PRIVATE),
        ("100.64.0.1", AddressClass.PRIVATE),  # CGNAT
        ("fd00::1", AddressClass.PRIVATE),  # ULA
        ("127.0.0.1", AddressClass.LOOPBACK),
        ("127.8.9.10", AddressClass.LOOPBACK),
        ("::1", AddressClass.LOOPBACK),
        ("::ffff:127.0.0.1", AddressClass.LOOPBACK),  # IPv4-mapped
        ("::ffff:10.1.2.3", AddressClass.PRIVATE),
        ("64:ff9b::7f00:1", AddressClass.LOOPBACK),  # NAT64 of 127.0.0.1
        ("2002:7f00:1::", AddressClass.LOOPBACK),  # 6to4 of 127.0.0.1
        ("169.254.169.254", AddressClass.METADATA),
        ("::ffff:169.254.169.254", AddressClass.METADATA),
        ("fd00:ec2::254", AddressClass.METADATA),
        ("100.100.100.200", AddressClass.METADATA),
        ("169.254.1.1", AddressClass.LINK_LOCAL),
        ("fe80::1", AddressClass.LINK_LOCAL),
        ("fe80::1%1", AddressClass.LINK_LOCAL),
        ("0.0.0.0", AddressClass.UNSPECIFIED),  # noqa: S104  (a string, classified)
        ("0.1.2.3", AddressClass.UNSPECIFIED),
        ("::", AddressClass.UNSPECIFIED),
        ("224.0.0.1", AddressClass.MULTICAST),
        ("ff02::1", AddressClass.MULTICAST),
        ("255.255.255.255", AddressClass.RESERVED),
        ("240.0.0.1", AddressClass.RESERVED),
        ("192.0.2.10", AddressClass.RESERVED),  # documentation
        ("198.18.0.1", AddressClass.RESERVED),  # benchmarking
        ("2001:db8::1", AddressClass.RESERVED),  # documentation
        ("93.184.215.14", AddressClass.PUBLIC),
        ("2606:4700::1111", AddressClass.PUBLIC),
        ("64:ff9b::5db8:d70e", AddressClass.PUBLIC),  # NAT64 of a public address
    ],
)
def test_classify_address(address: str, expected: AddressClass) -> None:
    assert classify_address(address) is expected
    if "%" not in address:
        assert classify_address(ipaddress.ip_address(address)) is expected


def test_default_policy_opens_public_addresses_only() -> None:
    policy = FetchPolicy()
    assert policy.permits(AddressClass.PUBLIC)
    for closed in AddressClass:
        if closed is not AddressClass.PUBLIC:
            assert not policy.permits(closed), closed


def test_switches_open_their_class_and_never_link_local_or_metadata() -> None:
    policy = FetchPolicy(allow_loopback=True, allow_private=True)
    assert policy.permits(AddressClass.LOOPBACK)
    assert policy.permits(AddressClass.PRIVATE)
    for never in (
        AddressClass.LINK_LOCAL,
        AddressClass.METADATA,
        AddressClass.UNSPECIFIED,
        AddressClass.MULTICAST,
        AddressClass.RESERVED,
    ):
        assert not policy.permits(never), never
    assert not FetchPolicy(allow_loopback=True).permits(AddressClass.PRIVATE)
    assert not FetchPolicy(allow_private=True).permits(AddressClass.LOOPBACK)


def test_allowed_hosts_open_loopback_and_private_for_that_name_only() -> None:
    policy = FetchPolicy(allowed_hosts=frozenset({"Agents.Internal."}))
    assert policy.permits(AddressClass.PRIVATE, "agents.internal")
    assert policy.permits(AddressClass.LOOPBACK, "AGENTS.internal")
    assert not policy.permits(AddressClass.PRIVATE, "other.internal")
    assert not policy.permits(AddressClass.PRIVATE)
    assert not policy.permits(AddressClass.METADATA, "agents.internal")
    assert not policy.permits(AddressClass.LINK_LOCAL, "agents.internal")


def test_policy_rejects_nonsense_limits() -> None:
    with pytest.raises(ValueError):
        FetchPolicy(max_bytes=0)
    with pytest.raises(ValueError):
        FetchPolicy(read_timeout=0)
