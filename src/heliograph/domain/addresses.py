"""Which hosts are private: the one rule behind every URL a user supplies (gateway targets,
webhook destinations, alert channels), so none of them reaches into the private network."""

from __future__ import annotations

import ipaddress

# Ranges `is_global` leaves global on some Python versions: IETF protocol assignments.
NON_GLOBAL = (ipaddress.ip_network("192.0.0.0/24"),)
# IPv6 prefixes whose last 32 bits are an IPv4 address a gateway may translate to.
CARRYING_IPV4 = (
    ipaddress.ip_network("::/96"),  # IPv4-compatible (deprecated)
    ipaddress.ip_network("64:ff9b::/96"),  # NAT64, well-known prefix
    ipaddress.ip_network("64:ff9b:1::/48"),  # NAT64, local use
)


def is_private_host(host: str) -> bool:
    """Whether `host` (a name or an address, IPv6 with or without brackets) is a loopback,
    private, link-local or otherwise non-global address, or a local name."""
    host = host.lower().rstrip(".")
    if host in ("localhost", "localhost.localdomain") or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return is_private_address(address)


def is_private_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Not a global unicast address; an IPv6 address that carries an IPv4 one (mapped,
    compatible, NAT64, 6to4, Teredo) is private when either is."""
    if isinstance(address, ipaddress.IPv6Address):
        carried = _carried_ipv4(address)
        if carried is not None and is_private_address(carried):
            return True
    if not address.is_global or address.is_multicast:
        return True
    return any(address in network for network in NON_GLOBAL)


def _carried_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]  # the client's address
    if any(address in network for network in CARRYING_IPV4):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None
