"""Which network addresses a link may reach, and the one resolver that decides it.

A host is resolved once; every address it resolves to must be public, and the connection is
then made to that very address (see client.py), so a second DNS answer (rebinding) cannot swap
it for an internal one. Refused: loopback, private, shared (CGNAT), link-local (cloud metadata
lives there), multicast, reserved and unspecified addresses, IPv4 inside IPv6 judged as IPv4.
"""

import ipaddress
import socket

from .errors import BlockedAddress, HostNotFound

# Cloud metadata endpoints stay refused even where private addresses are allowed (tests, intranets).
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254")
)


def _as_ipv4_if_mapped(ip):
    if ip.version == 6:
        for embedded in (ip.ipv4_mapped, ip.sixtofour):
            if embedded is not None:
                return embedded
    return ip


def is_allowed(address, *, allow_private=False):
    """True when a connection to `address` (a string or ipaddress object) is allowed."""
    ip = _as_ipv4_if_mapped(ipaddress.ip_address(str(address).split("%")[0]))
    if ip in METADATA_ADDRESSES or ip.is_multicast or ip.is_unspecified:
        return False
    if allow_private:
        return True
    return ip.is_global and not ip.is_reserved and not ip.is_link_local


def literal_address(host):
    """The ipaddress object when `host` is an IP literal (brackets allowed), else None."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def resolve(host, port):
    """All addresses `host` resolves to (the system resolver); tests patch this function."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise HostNotFound() from exc
    return list(dict.fromkeys(info[4][0] for info in infos))


def checked_address(host, port, *, allow_private=False):
    """Resolve `host` once and return the one address to connect to; raise BlockedAddress when any
    address it resolves to is refused (a name with one internal address is not worth trusting)."""
    literal = literal_address(host)
    addresses = [str(literal)] if literal is not None else resolve(host, port)
    if not addresses:
        raise HostNotFound()
    for address in addresses:
        if not is_allowed(address, allow_private=allow_private):
            raise BlockedAddress()
    return addresses[0]
