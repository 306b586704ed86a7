"""Which IP addresses a job's URL may make the worker connect to (server-side request forgery guard).

A job is untrusted: without this check `http://169.254.169.254/...` would hand out cloud credentials and
`http://10.0.0.5/admin` would reach internal services. Only globally routable unicast addresses pass.
IPv6 forms that carry an IPv4 address (mapped, compatible, 6to4, NAT64) are judged by the address they carry.
`allow_private` opens the private ranges (loopback, RFC 1918, CGNAT, unique-local...) for on-prem asset
servers; link-local (cloud metadata), multicast, "this network" and reserved addresses stay refused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, IPv6Network, ip_network

IPAddress = IPv4Address | IPv6Address

NAT64_WELL_KNOWN = IPv6Network("64:ff9b::/96")
IPV4_COMPATIBLE = IPv6Network("::/96")


@dataclass(frozen=True)
class Rule:
    reason: str
    matches: Callable[[IPAddress], bool]
    private: bool  # True: `allow_private` lifts this rule


def _within(*networks: str) -> Callable[[IPAddress], bool]:
    parsed = [ip_network(network) for network in networks]

    def matches(address: IPAddress) -> bool:
        return any(address in network for network in parsed if network.version == address.version)

    return matches


def _site_local(address: IPAddress) -> bool:
    return isinstance(address, IPv6Address) and address.is_site_local


# The first matching rule decides, so the specific rules come before the catch-all ones.
RULES: tuple[Rule, ...] = (
    Rule("unspecified", lambda address: address.is_unspecified, private=False),
    Rule("'this network' (0.0.0.0/8)", _within("0.0.0.0/8"), private=False),
    Rule(
        "link-local (169.254.0.0/16, fe80::/10: cloud metadata services live here)",
        _within("169.254.0.0/16", "fe80::/10"),
        private=False,
    ),
    Rule("multicast", lambda address: address.is_multicast, private=False),
    Rule("loopback", lambda address: address.is_loopback, private=True),
    Rule("private (RFC 1918)", _within("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"), private=True),
    Rule("carrier-grade NAT shared space (100.64.0.0/10)", _within("100.64.0.0/10"), private=True),
    Rule("unique-local (fc00::/7)", _within("fc00::/7"), private=True),
    Rule("site-local (fec0::/10)", _site_local, private=True),
    Rule("reserved", lambda address: address.is_reserved, private=False),
    Rule("special-purpose, not globally routable", lambda address: not address.is_global, private=True),
)


def embedded_ipv4(address: IPv6Address) -> IPv4Address | None:
    """The IPv4 address an IPv6 address stands for: ::ffff:a.b.c.d, ::a.b.c.d, 2002:AABB:CCDD::, 64:ff9b::a.b.c.d."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in NAT64_WELL_KNOWN or (address in IPV4_COMPATIBLE and int(address) > 1):
        return IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def refusal(address: IPAddress, *, allow_private: bool = False) -> str | None:
    """Why connecting to `address` is refused, or None when it is allowed."""
    if isinstance(address, IPv6Address):
        inner = embedded_ipv4(address)
        if inner is not None:
            reason = refusal(inner, allow_private=allow_private)
            if reason is not None:
                return f"{reason}, carried inside the IPv6 address {address}"
            if address in IPV4_COMPATIBLE:
                return "a deprecated IPv4-compatible IPv6 address (::a.b.c.d)"
            return None
    rule = next((rule for rule in RULES if rule.matches(address)), None)
    if rule is None or (allow_private and rule.private):
        return None
    return rule.reason
