"""Where webhooks and status callbacks may go (issue 14, finding 4: SSRF).

A receiver's URL is chosen by whoever holds an admin or send key, so the server must not be
made to POST to itself, to its database, to a cloud metadata address or to the private
network. Outbound requests therefore connect only to globally routable unicast addresses,
checked *after* resolving the name and connected to as checked, on every attempt: a name
that resolves elsewhere on a later try (DNS rebinding) is checked again, and the connection
goes to the address that passed, never to a second lookup. Redirects are not followed. The
allow-list (``SMSSYNC_WEBHOOK_ALLOW``: CIDRs and host names) opens exceptions, such as a
receiver on the same host.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import httpx

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Resolves a host name and port to addresses (the system resolver, or a test's).
Lookup = Callable[[str, int], Awaitable[list[str]]]

#: Names that mean this host whatever a resolver says.
LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")


class Refused(httpx.ConnectError):
    """The receiver's address is not allowed (loopback, private, link-local, ...)."""


def literal_address(host: str) -> IpAddress | None:
    """Return the address a host names literally, in any form a resolver would accept
    (``127.0.0.1``, ``[::1]``, ``2130706433``, ``0x7f.1``), or None for a name."""
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        # inet_aton takes the legacy forms too: one number, hex and octal parts, "127.1".
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def forbidden(address: IpAddress) -> str | None:
    """Return why an address may not be connected to, or None when it is public."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    # Most telling first: Python counts link-local and loopback as private too.
    for reason in ("loopback", "link_local", "unspecified", "multicast", "reserved", "private"):
        if getattr(address, f"is_{reason}"):
            return reason.replace("_", "-")
    if not address.is_global:
        return "not globally routable"
    return None


@dataclasses.dataclass(frozen=True)
class Egress:
    """The allow-list, and the checks made with it."""

    networks: tuple[IpNetwork, ...] = ()
    hosts: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, text: str) -> Egress:
        """Read ``10.0.0.0/8, 127.0.0.1, hooks.internal``; ValueError names a bad entry."""
        networks: list[IpNetwork] = []
        hosts: set[str] = set()
        for item in (part.strip() for part in text.split(",")):
            if not item:
                continue
            try:
                networks.append(ipaddress.ip_network(item.strip("[]"), strict=False))
            except ValueError:
                if "/" in item or not item.replace("-", "").replace(".", "").isalnum():
                    raise ValueError(f"not a CIDR or host name: {item!r}") from None
                hosts.add(item.lower().rstrip("."))
        return cls(tuple(networks), frozenset(hosts))

    def _allowed(self, address: IpAddress) -> bool:
        return any(address in network for network in self.networks)

    def refusal(self, host: str, address: IpAddress) -> str | None:
        """Return why ``host`` at ``address`` is refused, or None."""
        if host.lower().rstrip(".") in self.hosts or self._allowed(address):
            return None
        reason = forbidden(address)
        if reason is None:
            return None
        where = f"{address} is" if host.strip("[]") == str(address) else f"{host} is {address},"
        return f"{where} a {reason} address (allow it in SMSSYNC_WEBHOOK_ALLOW)"

    def check_url(self, url: str) -> str | None:
        """Check a URL when it is registered: why its literal host is refused, or None.

        Names are checked again at each delivery, after resolution."""
        host = (urlsplit(url).hostname or "").lower().rstrip(".")
        if not host:
            return "the URL has no host"
        if host in self.hosts:
            return None
        if host in LOCAL_NAMES or host.endswith(".localhost"):
            return f"{host} is this host (allow it in SMSSYNC_WEBHOOK_ALLOW)"
        address = literal_address(host)
        return None if address is None else self.refusal(host, address)

    async def resolve(self, host: str, port: int, lookup: Lookup | None = None) -> str:
        """Return the first allowed address of ``host``; Refused when there is none."""
        literal = literal_address(host)
        if literal is not None:
            addresses = [literal]
        else:
            found = await (lookup or getaddrinfo)(host, port)
            addresses = [ipaddress.ip_address(a.split("%")[0]) for a in found]
        reasons = []
        for address in addresses:
            reason = self.refusal(host, address)
            if reason is None:
                return str(address)
            reasons.append(reason)
        raise Refused("refused: " + "; ".join(dict.fromkeys(reasons)))


async def getaddrinfo(host: str, port: int) -> list[str]:
    """Resolve a name as the system does; ConnectError when it cannot."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise httpx.ConnectError(f"cannot resolve {host}: {exc}") from None
    return [str(info[4][0]) for info in infos]


class GuardedTransport(httpx.AsyncBaseTransport):
    """An httpx transport that resolves, checks, and connects to the checked address, with
    the original Host header and TLS server name (so certificates are verified as usual)."""

    def __init__(
        self,
        egress: Egress,
        inner: httpx.AsyncBaseTransport | None = None,
        lookup: Lookup | None = None,
    ) -> None:
        self.egress = egress
        self.inner = inner or httpx.AsyncHTTPTransport()
        self.lookup = lookup

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        port = url.port or _default_port(url.scheme)
        address = await self.egress.resolve(url.host, port, self.lookup)
        if url.scheme == "https":
            request.extensions = {**request.extensions, "sni_hostname": url.host}
        # Host was set from the URL when the request was built, so it stays the name.
        request.url = url.copy_with(host=address)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80
