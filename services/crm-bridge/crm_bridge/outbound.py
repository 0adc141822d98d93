"""The outbound guard: an admin types a CRM URL, and Parley must not be pointed at its
own internal services with it.

A CRM URL is refused (OutboundRefused, which is both a CrmError that is not retryable
and a ValueError) when
- its scheme is not https, or
- its host is `localhost` / `*.localhost`, or an IP address, or a name resolving to an
  address, that is loopback, private (RFC 1918, unique-local fc00::/7), link-local
  (169.254/16 with the cloud metadata address, fe80::/10), CGNAT (100.64/10),
  multicast, unspecified, reserved or otherwise not globally routable (IPv4-mapped
  IPv6 addresses are judged by their IPv4 address),
unless PARLEY_CRM_ALLOW_PRIVATE=1 (`make run` and the tests set it for the local
stand-in; it allows http too). The flag is read on every check, not cached.

Checked three times: `check_url` when settings are saved or an adapter is built (no
DNS), `guard_url` right before every call (resolves the name and checks every
address), and at connect time by `GuardedResolver`, the resolver of the session from
`create_session()`, so a name that resolves to a public address for the check and a
private one for the connection (DNS rebinding) is still refused. Adapters never follow
redirects (a redirect could lead anywhere)."""
from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from parley.config import env

from .crm import CrmError

FLAG = "PARLEY_CRM_ALLOW_PRIVATE"


class OutboundRefused(CrmError, ValueError):
    """The CRM address is not allowed: not a retryable failure, a settings error."""

    def __init__(self, reason: str):
        super().__init__(reason, retryable=False, ambiguous=False)


_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def private_allowed() -> bool:
    return env(FLAG).strip().lower() in ("1", "true", "yes")


def address_refused(address: str) -> str | None:
    """Why this IP address may not be called, or None if it is a public one."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return f"{address!r} is not an IP address"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.is_site_local:   # fec0::/10: deprecated, but routed inside some networks
            return f"{ip} is a site-local address"
        # IPv6 forms that carry an IPv4 address a router or the kernel may deliver to:
        # mapped (::ffff:a.b.c.d), 6to4 (2002:aabb:ccdd::), Teredo's client, NAT64 (64:ff9b::a.b.c.d).
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            ip = embedded
    for what, flag in (
        ("loopback", ip.is_loopback), ("unspecified", ip.is_unspecified),
        ("link-local", ip.is_link_local), ("multicast", ip.is_multicast),
        ("private", ip.is_private),
    ):
        if flag:
            return f"{ip} is {'an' if what[0] in 'aeiou' else 'a'} {what} address"
    if isinstance(ip, ipaddress.IPv4Address) and ip in ipaddress.ip_network("100.64.0.0/10"):
        return f"{ip} is a shared (CGNAT) address"
    if ip.is_reserved or not ip.is_global:
        return f"{ip} is not a public address"
    return None


def _host(url: str) -> tuple[str, str, int]:
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise OutboundRefused(f"CRM address {url!r} is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not host:
        raise OutboundRefused(f"CRM address {url!r} is not an http(s) URL with a host")
    return parts.scheme, host.rstrip(".").lower(), port or (443 if parts.scheme == "https" else 80)


def check_url(url: str) -> None:
    """The checks that need no DNS: scheme, `localhost`, a literal private IP."""
    scheme, host, _ = _host(url)
    if private_allowed():
        return
    if scheme != "https":
        raise OutboundRefused(f"CRM address must use https (got {scheme}://); set {FLAG}=1 for a local test CRM")
    if host == "localhost" or host.endswith(".localhost"):
        raise OutboundRefused(f"CRM address {host} is loopback; set {FLAG}=1 for a local test CRM")
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return
    reason = address_refused(host)
    if reason:
        raise OutboundRefused(f"CRM address refused: {reason}; set {FLAG}=1 for a local test CRM")


async def _getaddrinfo(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [info[4][0] for info in infos]


async def guard_url(url: str) -> None:
    """check_url, then resolve the host and check every address it has. Call right
    before each request."""
    check_url(url)
    if private_allowed():
        return
    _, host, port = _host(url)
    await _resolved_public(host, port, f"CRM host {host}", "a local test CRM")


async def _resolved_public(host: str, port: int, what: str, local: str) -> None:
    """Every address `host` resolves to is a public one, or OutboundRefused says which is not."""
    try:
        addresses = await _getaddrinfo(host, port)
    except OSError as exc:
        raise CrmError(f"{what} could not be resolved ({exc})", retryable=True) from None
    for address in addresses:
        reason = address_refused(address)
        if reason:
            raise OutboundRefused(f"{what} resolves to a refused address: {reason}; set {FLAG}=1 for {local}")


async def guard_host(host: str, port: int) -> None:
    """A host that is not an http URL (the SMTP server of transcripts by email): refused
    when it is, or resolves to, a loopback, private or otherwise non-public address -
    unless PARLEY_CRM_ALLOW_PRIVATE=1. Call right before connecting."""
    if private_allowed():
        return
    name = host.strip("[]").rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        raise OutboundRefused(f"{host} is loopback; set {FLAG}=1 for a local test server")
    await _resolved_public(name, port, host, "a local test server")


class GuardedResolver(AbstractResolver):
    """aiohttp resolver that refuses (at connect time) any name with a refused address."""

    def __init__(self, inner: AbstractResolver | None = None):
        self._inner = inner or DefaultResolver()

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        if not private_allowed():
            for result in results:
                reason = address_refused(result["host"])
                if reason:
                    raise OutboundRefused(f"CRM host {host} resolves to a refused address: {reason}")
        return results

    async def close(self) -> None:
        await self._inner.close()


def create_session(**kwargs) -> aiohttp.ClientSession:
    """The ClientSession for CRM calls: connect-time address checks, no cookies kept."""
    connector = aiohttp.TCPConnector(resolver=GuardedResolver(), limit_per_host=8)
    return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar(), **kwargs)


async def send(session: aiohttp.ClientSession, method: str, url: str, *, timeout: float,
               what: str, **kwargs) -> tuple[int, bytes]:
    """One guarded HTTP call: (status, body). Transport trouble becomes a retryable
    CrmError; it is ambiguous unless the connection was never made (the CRM may have
    acted on a request whose answer was lost). Redirects are not followed."""
    await guard_url(url)
    try:
        async with session.request(method, url, timeout=aiohttp.ClientTimeout(total=timeout, connect=timeout),
                                   allow_redirects=False, **kwargs) as resp:
            return resp.status, await resp.read()
    except OutboundRefused:
        raise
    except aiohttp.ClientConnectorCertificateError as exc:
        raise CrmError(f"{what}: the CRM's TLS certificate was refused ({exc.certificate_error})", retryable=False) from None
    except aiohttp.ConnectionTimeoutError:
        raise CrmError(f"{what}: could not connect within {timeout:g}s", retryable=True, ambiguous=False) from None
    except aiohttp.ClientConnectorError as exc:
        raise CrmError(f"{what}: cannot connect ({exc.os_error or exc})", retryable=True, ambiguous=False) from None
    except (asyncio.TimeoutError, TimeoutError):
        raise CrmError(f"{what}: no answer within {timeout:g}s", retryable=True, ambiguous=True) from None
    except aiohttp.ClientError as exc:
        raise CrmError(f"{what}: connection lost ({type(exc).__name__})", retryable=True, ambiguous=True) from None
