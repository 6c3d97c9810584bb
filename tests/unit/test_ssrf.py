"""Tests for the SSRF guard (hookpost.delivery.ssrf)."""

from __future__ import annotations

import ipaddress
import pickle
import re
import socket

import aiohttp
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from hookpost.delivery.ssrf import (
    BLOCKED_NETWORKS,
    AddressPolicy,
    BlockedAddressError,
    GuardedResolver,
    check_url_target,
    find_blocked_error,
)

TIMEOUT = aiohttp.ClientTimeout(total=5)
DEFAULT = AddressPolicy()

# (address, reason) pairs the default policy must refuse.
BLOCKED = [
    # IPv4
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "unspecified"),
    ("10.0.0.5", "private"),
    ("10.255.255.255", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.255", "private"),
    ("192.168.1.1", "private"),
    ("169.254.0.1", "link-local"),
    ("169.254.169.254", "link-local (cloud metadata)"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("100.127.255.255", "carrier-grade NAT"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.254", "reserved"),
    ("255.255.255.255", "broadcast"),
    ("192.0.2.1", "documentation"),
    ("198.51.100.7", "documentation"),
    ("203.0.113.200", "documentation"),
    ("198.18.0.1", "benchmarking"),
    ("198.19.255.255", "benchmarking"),
    ("192.0.0.8", "IETF protocol assignment"),
    ("192.0.0.170", "IETF protocol assignment"),
    ("192.88.99.1", "6to4 relay anycast"),
    # IPv6
    ("::1", "loopback"),
    ("::", "unspecified"),
    ("fe80::1", "link-local"),
    ("fe80::1%eth0", "link-local"),
    ("febf:ffff::1", "link-local"),
    ("fc00::1", "unique local"),
    ("fd12:3456::1", "unique local"),
    ("fec0::1", "site-local"),
    ("ff02::1", "multicast"),
    ("ff0e::1", "multicast"),
    ("2001:db8::1", "documentation"),
    ("3fff::1", "documentation"),
    ("100::1", "discard-only"),
    ("64:ff9b::808:808", "NAT64"),
    ("64:ff9b::a00:5", "NAT64"),
    ("64:ff9b:1::1", "NAT64 local-use"),
    ("2001::1", "Teredo"),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"),
    ("2001:2::1", "benchmarking"),
    ("2001:10::1", "ORCHID"),
    ("2001:100::1", "IETF protocol assignment"),
    ("1::1", "reserved"),  # ::/8 outside the embedded forms
    ("4000::1", "reserved"),  # outside global unicast 2000::/3
    ("5f00::1", "reserved"),
]

# (address, reason, detail) for IPv6 forms that embed an IPv4 address.
BLOCKED_EMBEDDED = [
    ("::ffff:10.0.0.5", "private", "IPv4-mapped 10.0.0.5"),
    ("::ffff:127.0.0.1", "loopback", "IPv4-mapped 127.0.0.1"),
    ("::ffff:169.254.169.254", "link-local (cloud metadata)", "IPv4-mapped 169.254.169.254"),
    ("::ffff:0.0.0.0", "unspecified", "IPv4-mapped 0.0.0.0"),
    ("::ffff:100.64.0.1", "carrier-grade NAT", "IPv4-mapped 100.64.0.1"),
    ("::ffff:0:10.0.0.5", "private", "IPv4-translated 10.0.0.5"),
    ("::ffff:0:127.0.0.1", "loopback", "IPv4-translated 127.0.0.1"),
    ("::10.0.0.5", "private", "IPv4-compatible 10.0.0.5"),
    ("::127.0.0.1", "loopback", "IPv4-compatible 127.0.0.1"),
    ("::0.0.0.2", "unspecified", "IPv4-compatible 0.0.0.2"),
    ("2002:a00:5::1", "private", "6to4 embedding 10.0.0.5"),
    ("2002:7f00:1::", "loopback", "6to4 embedding 127.0.0.1"),
    ("2002:a9fe:a9fe::1", "link-local (cloud metadata)", "6to4 embedding 169.254.169.254"),
    ("2002:c0a8:101::1", "private", "6to4 embedding 192.168.1.1"),
]

# Ordinary public addresses, including the neighbours of blocked ranges.
ALLOWED = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.216.34",
    "1.0.0.0",
    "9.255.255.255",
    "11.0.0.0",
    "100.63.255.255",
    "100.128.0.0",
    "126.255.255.255",
    "128.0.0.1",
    "169.253.255.255",
    "169.255.0.0",
    "172.15.255.255",
    "172.32.0.0",
    "192.0.1.1",
    "192.167.255.255",
    "192.169.0.0",
    "198.17.255.255",
    "198.20.0.0",
    "223.255.255.255",
    "2606:4700:4700::1111",
    "2a00:1450:4001:80b::200e",
    "2001:4860:4860::8888",
    "2002:808:808::1",  # 6to4 around the public 8.8.8.8
    "::ffff:8.8.8.8",
    "::ffff:0:8.8.8.8",
    "::8.8.8.8",
]


@pytest.mark.parametrize(("address", "reason"), BLOCKED)
def test_blocked_addresses(address: str, reason: str) -> None:
    assert DEFAULT.block_reason(address) is not None
    assert DEFAULT.block_reason(address) == (
        reason,
        "outside IPv6 global unicast 2000::/3" if reason == "reserved" and ":" in address else None,
    )
    with pytest.raises(BlockedAddressError) as info:
        DEFAULT.check(address)
    assert info.value.reason == reason
    assert info.value.address == address


@pytest.mark.parametrize(("address", "reason", "detail"), BLOCKED_EMBEDDED)
def test_blocked_embedded_ipv4(address: str, reason: str, detail: str) -> None:
    assert DEFAULT.block_reason(address) == (reason, detail)
    with pytest.raises(BlockedAddressError, match=rf"\({detail}\)$"):
        DEFAULT.check(address)


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses_pass(address: str) -> None:
    assert DEFAULT.block_reason(address) is None
    DEFAULT.check(address)
    DEFAULT.check(ipaddress.ip_address(address))


@pytest.mark.parametrize("entry", BLOCKED_NETWORKS, ids=lambda e: str(e.network))
def test_every_table_network_is_blocked_at_both_ends(entry: object) -> None:
    net = entry.network  # type: ignore[attr-defined]
    for addr in (net.network_address, net.broadcast_address):
        assert DEFAULT.block_reason(addr) is not None, addr
        with pytest.raises(BlockedAddressError):
            DEFAULT.check(addr)


def test_sample_data_against_ipaddress() -> None:
    """Sanity check of the test data against the stdlib, which the guard does not rely on.

    Every public sample is global for ``ipaddress``. The blocked samples that ``ipaddress``
    calls global (on some Python version) are only the ones listed here: the reason the guard
    keeps its own table.
    """
    for address in ALLOWED:
        ip = ipaddress.ip_address(address)
        embedded = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
        assert (embedded or ip).is_global or address.startswith(("::", "2002:")), address
    stdlib_global = {
        address for address, _ in BLOCKED if ipaddress.ip_address(address.split("%")[0]).is_global
    }
    assert stdlib_global <= {
        *("224.0.0.1", "239.255.255.250", "ff02::1", "ff0e::1"),  # multicast
        *("192.0.0.8", "192.88.99.1", "fec0::1", "3fff::1", "1::1", "4000::1", "5f00::1"),
        *("64:ff9b::808:808", "64:ff9b::a00:5", "64:ff9b:1::1"),  # NAT64
    }


def test_error_messages() -> None:
    with pytest.raises(BlockedAddressError) as info:
        DEFAULT.check("10.0.0.5")
    assert str(info.value) == "blocked: 10.0.0.5 is a private address"
    assert isinstance(info.value, OSError)
    assert info.value.host is None

    with pytest.raises(BlockedAddressError) as info:
        DEFAULT.check("10.0.0.5", host="internal.example")
    assert str(info.value) == "blocked: internal.example resolves to 10.0.0.5, a private address"
    assert info.value.host == "internal.example"

    with pytest.raises(
        BlockedAddressError, match=r"^blocked: 0\.0\.0\.0 is an unspecified address$"
    ):
        DEFAULT.check("0.0.0.0")
    with pytest.raises(BlockedAddressError, match=r"is a unique local address$"):
        DEFAULT.check("fd00::1")
    with pytest.raises(BlockedAddressError, match=r"is an IETF protocol assignment address$"):
        DEFAULT.check("192.0.0.1")
    with pytest.raises(BlockedAddressError, match="unparsable"):
        DEFAULT.check("not-an-ip")

    copy = pickle.loads(pickle.dumps(info.value))
    assert str(copy) == str(info.value)


def test_allowed_subnets_override_block_list() -> None:
    policy = AddressPolicy.from_setting("127.0.0.0/8,::1/128")
    for address in ("127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1", "::ffff:0:127.0.0.1"):
        policy.check(address)
    for address in ("10.0.0.5", "169.254.169.254", "::2", "fe80::1", "0.0.0.0"):
        with pytest.raises(BlockedAddressError):
            policy.check(address)
    # Public addresses are still fine.
    policy.check("8.8.8.8")

    ula = AddressPolicy.from_setting("fd00::/8")
    ula.check("fd12::1")
    with pytest.raises(BlockedAddressError):
        ula.check("fc00::1")

    scoped = AddressPolicy.from_setting("fe80::/64")
    scoped.check("fe80::1%eth0")


def test_from_setting_parsing() -> None:
    assert AddressPolicy.from_setting("").allowed == ()
    assert AddressPolicy.from_setting(None).allowed == ()
    policy = AddressPolicy.from_setting(" 10.0.0.0/8 ,\n fd00::/8  192.168.1.7 ")
    assert policy.allowed == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("fd00::/8"),
        ipaddress.ip_network("192.168.1.7/32"),
    )
    assert policy.enabled
    assert AddressPolicy.from_setting("10.0.0.0/8") == AddressPolicy.from_setting("10.0.0.0/8")

    with pytest.raises(ValueError, match=r"'10\.0\.0\.1/8'"):
        AddressPolicy.from_setting("127.0.0.0/8,10.0.0.1/8")
    with pytest.raises(ValueError, match="'nonsense'"):
        AddressPolicy.from_setting("nonsense")
    with pytest.raises(ValueError, match=r"'10\.0\.0\.0/33'"):
        AddressPolicy.from_setting("10.0.0.0/33")


def test_allow_all_disables_the_guard() -> None:
    policy = AddressPolicy.allow_all()
    assert not policy.enabled
    for address in ("127.0.0.1", "10.0.0.5", "169.254.169.254", "::ffff:10.0.0.5", "junk"):
        policy.check(address)


def test_policy_is_frozen() -> None:
    with pytest.raises(AttributeError):
        DEFAULT.enabled = False  # type: ignore[misc]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://10.0.0.5/", "blocked: 10.0.0.5 is a private address"),
        ("https://169.254.169.254/latest/meta-data/", "is a link-local (cloud metadata) address"),
        ("http://[::ffff:10.0.0.5]/", "a private address (IPv4-mapped 10.0.0.5)"),
        ("http://[::1]:8080/", "loopback"),
        ("http://2130706433/", "blocked: 2130706433 resolves to 127.0.0.1, a loopback address"),
        ("http://0x7f.1/", "resolves to 127.0.0.1, a loopback address"),
        ("http://127.1/", "loopback"),
        ("http://0/", "unspecified"),
    ],
)
def test_check_url_target_refuses_literal_ips(url: str, message: str) -> None:
    with pytest.raises(BlockedAddressError, match=re.escape(message)):
        check_url_target(url, DEFAULT)


def test_check_url_target_passes_names_and_public_ips() -> None:
    for url in (
        "https://example.com/hook",
        "http://internal.example/",  # names are checked at connect time
        "http://8.8.8.8/",
        "https://[2606:4700:4700::1111]/",
    ):
        check_url_target(url, DEFAULT)
    check_url_target("http://127.0.0.1/", AddressPolicy.from_setting("127.0.0.0/8"))
    check_url_target("http://10.0.0.5/", AddressPolicy.allow_all())
    with pytest.raises(ValueError, match="scheme"):
        check_url_target("ftp://example.com/", DEFAULT)
    with pytest.raises(ValueError, match="no host"):
        check_url_target("http:///path", DEFAULT)


# --- the resolver ----------------------------------------------------------------------------


class FakeResolver(AbstractResolver):
    """Answers each resolve() of a name with the next list of addresses from a script."""

    def __init__(self, script: dict[str, list[list[str]]]) -> None:
        self.script = script
        self.calls: list[str] = []
        self.closed = False

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.calls.append(host)
        answers = self.script[host]
        addresses = answers.pop(0) if len(answers) > 1 else answers[0]
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in addresses
        ]

    async def close(self) -> None:
        self.closed = True


async def test_resolver_refuses_name_resolving_to_private_address() -> None:
    fake = FakeResolver({"internal.example": [["10.0.0.5"]]})
    guard = GuardedResolver(DEFAULT, fake)
    with pytest.raises(BlockedAddressError) as info:
        await guard.resolve("internal.example", 443)
    assert str(info.value) == "blocked: internal.example resolves to 10.0.0.5, a private address"
    assert info.value.host == "internal.example"


async def test_resolver_refuses_whole_host_when_any_answer_is_blocked() -> None:
    fake = FakeResolver({"mixed.example": [["93.184.216.34", "2606:4700::1", "169.254.169.254"]]})
    guard = GuardedResolver(DEFAULT, fake)
    with pytest.raises(BlockedAddressError, match=r"mixed\.example resolves to 169\.254\.169\.254"):
        await guard.resolve("mixed.example", 80, socket.AF_UNSPEC)


async def test_resolver_returns_public_answers_unchanged() -> None:
    fake = FakeResolver({"public.example": [["93.184.216.34", "2606:4700::1"]]})
    guard = GuardedResolver(DEFAULT, fake)
    results = await guard.resolve("public.example", 443, socket.AF_UNSPEC)
    assert [r["host"] for r in results] == ["93.184.216.34", "2606:4700::1"]
    assert all(r["port"] == 443 for r in results)


async def test_resolver_rechecks_every_resolve() -> None:
    fake = FakeResolver({"rebind.example": [["93.184.216.34"], ["127.0.0.1"]]})
    guard = GuardedResolver(DEFAULT, fake)
    first = await guard.resolve("rebind.example", 80)
    assert first[0]["host"] == "93.184.216.34"
    with pytest.raises(BlockedAddressError, match=r"rebind\.example resolves to 127\.0\.0\.1"):
        await guard.resolve("rebind.example", 80)
    assert fake.calls == ["rebind.example", "rebind.example"]


async def test_resolver_ownership() -> None:
    fake = FakeResolver({})
    await GuardedResolver(DEFAULT, fake).close()
    assert not fake.closed  # an injected resolver belongs to the caller
    guard = GuardedResolver(DEFAULT)  # wraps aiohttp's DefaultResolver, which it owns
    await guard.close()


# --- through a real aiohttp.ClientSession ---------------------------------------------------


def test_find_blocked_error_handles_unrelated_errors() -> None:
    assert find_blocked_error(None) is None
    assert find_blocked_error(ValueError("x")) is None
    try:
        try:
            DEFAULT.check("10.0.0.5")
        except BlockedAddressError as exc:
            raise RuntimeError("wrapped") from exc
    except RuntimeError as outer:
        found = find_blocked_error(outer)
    assert found is not None and found.address == "10.0.0.5"
