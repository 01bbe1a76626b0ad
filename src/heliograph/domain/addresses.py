"""Which hosts are private: the one rule behind every URL a user supplies (gateway targets,
webhook destinations, alert channels), so none of them reaches into the private network."""

from __future__ import annotations

import ipaddress


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
    """Not a global unicast address (an IPv4-mapped IPv6 address is judged by its IPv4)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not address.is_global or address.is_multicast
