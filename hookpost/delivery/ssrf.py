"""SSRF guard for outbound webhook requests.

Endpoint URLs are chosen by tenants, so hookpost must not be usable as a proxy into the
network it runs in (loopback services, the cloud metadata endpoint, private subnets, ...).

How the guard works
-------------------
* :class:`AddressPolicy` decides whether one IP address may be contacted. It uses an explicit
  table of special-purpose networks, each with a human reason (:data:`BLOCKED_NETWORKS`),
  rather than ``ipaddress``'s ``is_private``/``is_global`` (their meaning changed between
  Python releases). IPv6 forms that embed an IPv4 address (IPv4-mapped, IPv4-translated,
  IPv4-compatible, 6to4) are judged by the embedded IPv4 address. Subnets from
  ``HOOKPOST_ALLOW_SUBNETS`` override the block list.
* :class:`GuardedResolver` wraps aiohttp's resolver. It checks *every* address a host name
  resolves to and refuses the whole host if any one is blocked (a host with mixed public and
  private answers is suspicious, not something to route around). aiohttp connects only to
  the addresses a resolver returns, and its DNS cache stores that already-checked output, so
  DNS rebinding between the check and the connect is impossible.
* aiohttp's ``TCPConnector`` never calls the resolver for IP-literal hosts
  (``TCPConnector._resolve_host`` returns them directly when ``is_ip_address(host)``), so the
  resolver alone would let ``http://10.0.0.5/`` through. :func:`make_connector` therefore also
  installs a ``socket_factory`` (public ``TCPConnector`` API, aiohttp >= 3.12) that checks the
  exact socket address right before each socket is created. This is the last point before
  ``connect()``, so it covers IP literals, cached DNS answers and anything a future aiohttp
  adds, without overriding the private ``_resolve_host``. For literal IPs it is the check that
  counts; for names it is a second line of defence.
* :func:`check_url_target` is a cheap synchronous pre-flight check for literal-IP URLs (the API
  can use it to reject an endpoint URL when it is created). Host names are only checked at
  connection time, because their answers can change.

What the guard does not cover (the caller's job)
------------------------------------------------
* Redirects: the delivery worker always sends ``allow_redirects=False``, so a 3xx answer can
  never point a request at an internal address.
* Proxies: with a proxy the proxy resolves the target, so the target cannot be checked here.
  Create the session with ``trust_env=False`` (aiohttp's default) and pass no ``proxy=``.

Refusals raise :class:`BlockedAddressError` (an ``OSError``). aiohttp wraps it in a
``ClientConnectorError`` (``ClientConnectorDNSError`` when the resolver refused);
:func:`find_blocked_error` digs it out so the worker can record the attempt error.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeAlias

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

__all__ = [
    "BLOCKED_NETWORKS",
    "AddressPolicy",
    "BlockedAddressError",
    "BlockedNetwork",
    "GuardedResolver",
    "check_url_target",
    "find_blocked_error",
    "guarded_socket_factory",
    "make_connector",
]

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network
AddrInfo: TypeAlias = tuple[int, int, int, str, tuple[Any, ...]]
SocketFactory: TypeAlias = Callable[[AddrInfo], socket.socket]


class BlockedAddressError(OSError):
    """A request was refused because its target address is not allowed.

    ``str(exc)`` is the human message, e.g. ``"blocked: 10.0.0.5 is a private address"`` or
    ``"blocked: internal.example resolves to 10.0.0.5, a private address"``.
    """

    def __init__(
        self, address: str, reason: str, *, host: str | None = None, detail: str | None = None
    ) -> None:
        self.address = address
        self.reason = reason
        self.host = host
        self.detail = detail
        phrase = _with_article(reason) + " address"
        if detail:
            phrase += f" ({detail})"
        if host is not None and host != address:
            message = f"blocked: {host} resolves to {address}, {phrase}"
        else:
            message = f"blocked: {address} is {phrase}"
        super().__init__(message)
        # aiohttp's ClientConnectorError renders ``os_error.strerror``; give it the message.
        self.strerror = message

    def __str__(self) -> str:
        return str(self.strerror)

    def __reduce__(self) -> Any:
        return (_rebuild_blocked, (self.address, self.reason, self.host, self.detail))


def _rebuild_blocked(
    address: str, reason: str, host: str | None, detail: str | None
) -> BlockedAddressError:
    return BlockedAddressError(address, reason, host=host, detail=detail)


def _with_article(label: str) -> str:
    first = label[:1]
    vowel = first in "aeiouAEIOU" and not label.lower().startswith("uni")
    return ("an " if vowel else "a ") + label


@dataclass(frozen=True)
class BlockedNetwork:
    network: IPNetwork
    reason: str


def _table(rows: Iterable[tuple[str, str]]) -> tuple[BlockedNetwork, ...]:
    nets = [BlockedNetwork(ipaddress.ip_network(cidr), reason) for cidr, reason in rows]
    # Most specific first, so an address gets the most precise reason.
    nets.sort(key=lambda b: b.network.prefixlen, reverse=True)
    return tuple(nets)


# IANA IPv4 Special-Purpose Address Registry, minus the entries marked globally reachable
# (AS112 192.31.196/24 and 192.175.48/24, AMT 192.52.193/24).
_IPV4_BLOCKED = _table(
    [
        ("0.0.0.0/8", "unspecified"),
        ("10.0.0.0/8", "private"),
        ("100.64.0.0/10", "carrier-grade NAT"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local"),
        ("169.254.169.254/32", "link-local (cloud metadata)"),
        ("172.16.0.0/12", "private"),
        ("192.0.0.0/24", "IETF protocol assignment"),
        ("192.0.2.0/24", "documentation"),
        ("192.88.99.0/24", "6to4 relay anycast"),
        ("192.168.0.0/16", "private"),
        ("198.18.0.0/15", "benchmarking"),
        ("198.51.100.0/24", "documentation"),
        ("203.0.113.0/24", "documentation"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved"),
        ("255.255.255.255/32", "broadcast"),
    ]
)

# IPv6 networks blocked outright. The embedded-IPv4 forms (::ffff:0:0/96, ::ffff:0:0:0/96,
# ::/96, 2002::/16) are handled separately in AddressPolicy.block_reason, and anything outside
# the global unicast range 2000::/3 is refused as "reserved" after this table.
_IPV6_BLOCKED = _table(
    [
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("64:ff9b::/96", "NAT64"),
        ("64:ff9b:1::/48", "NAT64 local-use"),
        ("100::/64", "discard-only"),
        ("2001::/23", "IETF protocol assignment"),
        ("2001::/32", "Teredo"),
        ("2001:2::/48", "benchmarking"),
        ("2001:10::/28", "ORCHID"),
        ("2001:20::/28", "ORCHIDv2"),
        ("2001:db8::/32", "documentation"),
        ("3fff::/20", "documentation"),
        ("fc00::/7", "unique local"),
        ("fec0::/10", "site-local"),
        ("fe80::/10", "link-local"),
        ("ff00::/8", "multicast"),
    ]
)

#: Every network refused by default, with its reason (most specific first per family).
BLOCKED_NETWORKS: tuple[BlockedNetwork, ...] = _IPV4_BLOCKED + _IPV6_BLOCKED

_IPV6_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
_IPV4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
_IPV4_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_SIXTOFOUR = ipaddress.IPv6Network("2002::/16")
_UNSPECIFIED_V6 = ipaddress.IPv6Address("::")
_LOOPBACK_V6 = ipaddress.IPv6Address("::1")


def _parse_ip(ip: str | IPAddress) -> IPAddress:
    if isinstance(ip, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return ip
    return ipaddress.ip_address(ip)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, str] | None:
    """The IPv4 address inside an IPv6 address that reaches it, and the form's name."""
    if ip in _IPV4_MAPPED:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), "IPv4-mapped"
    if ip in _IPV4_TRANSLATED:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), "IPv4-translated"
    if ip in _IPV4_COMPATIBLE and ip not in (_UNSPECIFIED_V6, _LOOPBACK_V6):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), "IPv4-compatible"
    return None


def _table_reason(ip: IPAddress, table: tuple[BlockedNetwork, ...]) -> str | None:
    for entry in table:
        if ip.version == entry.network.version and ip in entry.network:
            return entry.reason
    return None


@dataclass(frozen=True)
class AddressPolicy:
    """Which IP addresses outbound webhook requests may connect to.

    ``AddressPolicy()`` blocks every network in :data:`BLOCKED_NETWORKS`; ``allowed`` subnets
    override that. ``enabled=False`` (see :meth:`allow_all`) turns the guard off.
    """

    allowed: tuple[IPNetwork, ...] = ()
    enabled: bool = True

    @classmethod
    def allow_all(cls) -> AddressPolicy:
        """A policy that allows every address (``HOOKPOST_SSRF_GUARD=0``)."""
        return cls(enabled=False)

    @classmethod
    def from_setting(cls, value: str | None, *, enabled: bool = True) -> AddressPolicy:
        """Parse ``HOOKPOST_ALLOW_SUBNETS``: CIDRs separated by commas and/or whitespace.

        A bare address means a single host (``/32`` or ``/128``). Raises ``ValueError``
        naming the bad entry, including a CIDR with host bits set (``10.0.0.1/8``).
        """
        nets: list[IPNetwork] = []
        for item in (value or "").replace(",", " ").split():
            try:
                nets.append(ipaddress.ip_network(item, strict=True))
            except ValueError as exc:
                raise ValueError(
                    f"invalid subnet {item!r} in HOOKPOST_ALLOW_SUBNETS: {exc}"
                ) from None
        return cls(allowed=tuple(nets), enabled=enabled)

    def is_allowed_by_list(self, ip: str | IPAddress) -> bool:
        """True if ``ip`` (or the IPv4 address it embeds) is in an allowed subnet."""
        addr = _parse_ip(ip)
        candidates: list[IPAddress] = [addr]
        if isinstance(addr, ipaddress.IPv6Address):
            if addr.scope_id:
                candidates.append(ipaddress.IPv6Address(int(addr)))
            embedded = _embedded_ipv4(addr)
            if embedded is not None:
                candidates.append(embedded[0])
        return any(c.version == n.version and c in n for c in candidates for n in self.allowed)

    def block_reason(self, ip: str | IPAddress) -> tuple[str, str | None] | None:
        """``(reason, detail)`` if the block list refuses ``ip``, else ``None``.

        Ignores the allow list and ``enabled``; see :meth:`check` for the full decision.
        """
        addr = _parse_ip(ip)
        if isinstance(addr, ipaddress.IPv4Address):
            reason = _table_reason(addr, _IPV4_BLOCKED)
            return (reason, None) if reason else None

        embedded = _embedded_ipv4(addr)
        if embedded is not None:
            v4, form = embedded
            reason = _table_reason(v4, _IPV4_BLOCKED)
            return (reason, f"{form} {v4}") if reason else None
        reason = _table_reason(addr, _IPV6_BLOCKED)
        if reason:
            return reason, None
        if addr in _SIXTOFOUR:
            relay_v4 = addr.sixtofour
            assert relay_v4 is not None
            reason = _table_reason(relay_v4, _IPV4_BLOCKED)
            return (reason, f"6to4 embedding {relay_v4}") if reason else None
        if addr not in _IPV6_GLOBAL_UNICAST:
            return "reserved", "outside IPv6 global unicast 2000::/3"
        return None

    def check(self, ip: str | IPAddress, *, host: str | None = None) -> None:
        """Raise :class:`BlockedAddressError` unless ``ip`` may be contacted.

        ``host`` is the name that resolved to ``ip``, used in the message. A string that is
        not an IP address is refused too (fail closed).
        """
        if not self.enabled:
            return
        text = str(ip)
        try:
            addr = _parse_ip(ip)
        except ValueError:
            raise BlockedAddressError(text, "unparsable", host=host) from None
        if self.allowed and self.is_allowed_by_list(addr):
            return
        verdict = self.block_reason(addr)
        if verdict is not None:
            reason, detail = verdict
            raise BlockedAddressError(text, reason, host=host, detail=detail)


class GuardedResolver(AbstractResolver):
    """An aiohttp resolver that returns only answers the policy allows.

    Every resolved address is checked; if any one is blocked the whole host is refused with
    :class:`BlockedAddressError`. Each ``resolve()`` call checks afresh, so a name that
    re-resolves to a private address is refused. IP literals passed here are checked too,
    though ``TCPConnector`` does not send them to the resolver (see the module docstring).
    """

    def __init__(self, policy: AddressPolicy, inner: AbstractResolver | None = None) -> None:
        self.policy = policy
        self._owns_inner = inner is None
        self._inner: AbstractResolver = inner if inner is not None else aiohttp.DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        name = host.rstrip(".") or host
        for result in results:
            self.policy.check(result["host"], host=name)
        return results

    async def close(self) -> None:
        if self._owns_inner:
            await self._inner.close()


def guarded_socket_factory(
    policy: AddressPolicy, inner: SocketFactory | None = None
) -> SocketFactory:
    """A ``TCPConnector(socket_factory=...)`` that checks each target right before connect."""

    def factory(addr_info: AddrInfo) -> socket.socket:
        family, type_, proto, _canonname, sockaddr = addr_info
        policy.check(str(sockaddr[0]))
        if inner is not None:
            return inner(addr_info)
        return socket.socket(family=family, type=type_, proto=proto)

    return factory


class _GuardedTCPConnector(aiohttp.TCPConnector):
    """A TCPConnector that also closes the GuardedResolver it was built with.

    (``TCPConnector`` never closes a resolver passed in by the caller.)
    """

    _guard_resolver: GuardedResolver | None = None

    async def close(self, *, abort_ssl: bool = False) -> None:
        try:
            await super().close(abort_ssl=abort_ssl)
        finally:
            if self._guard_resolver is not None:
                resolver, self._guard_resolver = self._guard_resolver, None
                await resolver.close()


def make_connector(
    policy: AddressPolicy,
    *,
    limit: int = 100,
    limit_per_host: int = 0,
    ttl_dns_cache: int | None = 10,
    resolver: AbstractResolver | None = None,
    socket_factory: SocketFactory | None = None,
    **connector_kwargs: Any,
) -> aiohttp.TCPConnector:
    """The ``TCPConnector`` for delivering webhooks under ``policy``. Call inside the loop.

    ``resolver`` is the underlying resolver to guard (default: aiohttp's ``DefaultResolver``)
    and ``socket_factory`` an optional socket factory to chain after the check. Other keyword
    arguments go to ``TCPConnector`` unchanged. With a disabled policy the connector is a
    plain ``TCPConnector`` with no checks at all.
    """
    if not policy.enabled:
        return aiohttp.TCPConnector(
            limit=limit,
            limit_per_host=limit_per_host,
            ttl_dns_cache=ttl_dns_cache,
            resolver=resolver,
            socket_factory=socket_factory,
            **connector_kwargs,
        )
    guard = GuardedResolver(policy, resolver)
    connector = _GuardedTCPConnector(
        limit=limit,
        limit_per_host=limit_per_host,
        ttl_dns_cache=ttl_dns_cache,
        resolver=guard,
        socket_factory=guarded_socket_factory(policy, socket_factory),
        **connector_kwargs,
    )
    if resolver is None:
        connector._guard_resolver = guard
    return connector


def check_url_target(url: str | URL, policy: AddressPolicy) -> None:
    """Pre-flight check of a URL whose host is an IP literal; no DNS lookup.

    Raises ``ValueError`` if the URL is not an absolute http(s) URL with a host, and
    :class:`BlockedAddressError` if its host is a blocked IP literal, including the legacy
    numeric IPv4 spellings ``socket`` accepts (``2130706433``, ``0x7f.1``, ``127.1``). Host
    names pass here; they are checked on every connection by :func:`make_connector`.
    """
    parsed = URL(url) if isinstance(url, str) else url
    if parsed.scheme not in ("http", "https"):
        raise ValueError(f"unsupported URL scheme {parsed.scheme!r}: {url}")
    host = parsed.host
    if not host:
        raise ValueError(f"URL has no host: {url}")
    addr: IPAddress | None
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        addr = None
        if ":" not in host:
            try:
                addr = ipaddress.IPv4Address(socket.inet_aton(host.rstrip(".")))
            except OSError:
                addr = None
    if addr is not None:
        policy.check(addr, host=host)


def find_blocked_error(exc: BaseException | None) -> BlockedAddressError | None:
    """The :class:`BlockedAddressError` behind ``exc`` (e.g. a ``ClientConnectorError``)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, BlockedAddressError):
            return exc
        if isinstance(exc, aiohttp.ClientConnectorError):
            found = find_blocked_error(exc.os_error)
            if found is not None:
                return found
        exc = exc.__cause__ or exc.__context__
    return None
