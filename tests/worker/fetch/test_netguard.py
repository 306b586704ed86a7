"""The address guard: every class of non-public address is refused, public ones (and their IPv6 forms) pass."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_address

import pytest

from worker.fetch.netguard import embedded_ipv4, refusal

# (address, words the reason must contain, still refused with allow_private)
REFUSED = [
    ("127.0.0.1", "loopback", False),
    ("127.255.0.9", "loopback", False),
    ("::1", "loopback", False),
    ("169.254.169.254", "link-local", True),
    ("169.254.0.1", "link-local", True),
    ("fe80::1", "link-local", True),
    ("10.0.0.1", "RFC 1918", False),
    ("172.16.0.1", "RFC 1918", False),
    ("172.31.255.254", "RFC 1918", False),
    ("192.168.1.1", "RFC 1918", False),
    ("100.64.0.1", "carrier-grade NAT", False),
    ("100.127.255.254", "carrier-grade NAT", False),
    ("0.0.0.0", "unspecified", True),
    ("0.1.2.3", "this network", True),
    ("::", "unspecified", True),
    ("224.0.0.1", "multicast", True),
    ("239.255.255.250", "multicast", True),
    ("ff02::1", "multicast", True),
    ("240.0.0.1", "reserved", True),
    ("255.255.255.255", "reserved", True),
    ("192.0.2.10", "not globally routable", False),  # documentation
    ("198.18.0.1", "not globally routable", False),  # benchmarking
    ("2001:db8::1", "not globally routable", False),  # documentation
    ("2001::1", "not globally routable", False),  # Teredo
    ("fd00::1", "unique-local", False),
    ("fc00::1", "unique-local", False),
    ("fec0::1", "site-local", False),
    ("::ffff:127.0.0.1", "loopback, carried inside", False),
    ("::ffff:10.1.2.3", "RFC 1918), carried inside", False),
    ("::ffff:169.254.169.254", "link-local", True),
    ("::127.0.0.1", "loopback, carried inside", True),  # IPv4-compatible: deprecated, never allowed
    ("::8.8.8.8", "deprecated IPv4-compatible", True),
    ("2002:7f00:1::1", "loopback, carried inside", False),  # 6to4
    ("2002:a9fe:a9fe::", "link-local", True),
    ("2002:c0a8:101::", "RFC 1918", False),
    ("64:ff9b::7f00:1", "loopback, carried inside", False),  # NAT64
    ("64:ff9b::a9fe:a9fe", "link-local", True),
    ("64:ff9b::a00:1", "RFC 1918", False),
]

PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    "151.101.1.69",
    "2606:4700:4700::1111",
    "2a00:1450:4001::200e",
    "::ffff:8.8.8.8",
    "2002:808:808::1",
    "64:ff9b::808:808",
]


@pytest.mark.parametrize(("address", "reason", "always"), REFUSED)
def test_non_public_addresses_are_refused_with_the_reason(address, reason, always):
    message = refusal(ip_address(address))
    assert message is not None and reason in message


@pytest.mark.parametrize(("address", "reason", "always"), REFUSED)
def test_allow_private_opens_private_ranges_but_never_metadata_multicast_or_reserved(address, reason, always):
    assert (refusal(ip_address(address), allow_private=True) is not None) == always


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address):
    assert refusal(ip_address(address)) is None


@pytest.mark.parametrize(
    ("address", "inner"),
    [
        ("::ffff:10.0.0.1", "10.0.0.1"),
        ("::10.0.0.1", "10.0.0.1"),
        ("2002:a00:1::", "10.0.0.1"),
        ("64:ff9b::a00:1", "10.0.0.1"),
        ("2606:4700::1", None),
        ("::1", None),
    ],
)
def test_embedded_ipv4_is_extracted_from_every_wrapping_form(address, inner):
    found = embedded_ipv4(IPv6Address(address))
    assert found == (IPv4Address(inner) if inner else None)
