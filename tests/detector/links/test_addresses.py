"""Which addresses a link may reach: public ones only, unless the private-address setting is on;
cloud metadata never."""

import socket

import pytest

from detector.links import addresses
from detector.links.errors import BlockedAddress, HostNotFound

REFUSED = [
    "127.0.0.1",
    "127.8.9.10",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata (link-local)
    "100.64.0.1",  # shared / CGNAT
    "100.100.100.200",  # Alibaba metadata
    "224.0.0.1",  # multicast
    "0.0.0.0",  # noqa: S104 (an address judged, never bound)
    "240.0.0.1",  # reserved
    "::1",
    "fe80::1",
    "fc00::1",
    "fd00:ec2::254",  # AWS metadata over IPv6
    "::ffff:127.0.0.1",  # IPv4-mapped loopback
    "::ffff:169.254.169.254",
    "2002:7f00:1::",  # 6to4 wrapping 127.0.0.1
    "ff02::1",
]


@pytest.mark.parametrize("address", REFUSED)
def test_it_refuses_internal_and_reserved_addresses(address):
    assert not addresses.is_allowed(address)


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"])
def test_it_allows_public_addresses(address):
    assert addresses.is_allowed(address)


def test_the_private_setting_opens_loopback_and_private_networks_but_never_metadata_or_multicast():
    assert addresses.is_allowed("127.0.0.1", allow_private=True)
    assert addresses.is_allowed("10.0.0.5", allow_private=True)
    for address in ("169.254.169.254", "fd00:ec2::254", "224.0.0.1", "0.0.0.0"):  # noqa: S104
        assert not addresses.is_allowed(address, allow_private=True)


def test_a_name_with_any_private_address_is_refused(monkeypatch):
    monkeypatch.setattr(addresses, "resolve", lambda host, port: ["93.184.216.34", "10.0.0.7"])
    with pytest.raises(BlockedAddress):
        addresses.checked_address("mixed.example", 80)


def test_a_name_resolving_to_a_private_address_is_refused(monkeypatch):
    monkeypatch.setattr(addresses, "resolve", lambda host, port: ["192.168.0.10"])
    with pytest.raises(BlockedAddress):
        addresses.checked_address("intranet.example", 443)


def test_a_public_name_gives_its_address(monkeypatch):
    monkeypatch.setattr(addresses, "resolve", lambda host, port: ["93.184.216.34"])
    assert addresses.checked_address("video.example", 443) == "93.184.216.34"


def test_an_unknown_name_is_reported_as_not_found(monkeypatch):
    def no_such_host(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_host)
    with pytest.raises(HostNotFound):
        addresses.checked_address("nowhere.invalid", 80)


def test_ip_literals_are_judged_without_a_lookup(monkeypatch):
    monkeypatch.setattr(addresses, "resolve", lambda host, port: pytest.fail("no lookup for a literal"))
    with pytest.raises(BlockedAddress):
        addresses.checked_address("[::1]", 80)
    assert addresses.checked_address("93.184.216.34", 80) == "93.184.216.34"
