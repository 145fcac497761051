"""How a phone reaches this server: the address Sync URLs and QR codes carry.

A server listening on every address (``0.0.0.0`` or ``::``) has no address of its own to
print, and ``127.0.0.1`` is the one address a phone can never use: it names the phone
itself. So Sync URLs take ``--public-url`` when given, else the machine's LAN address, and
whatever a phone would receive on loopback comes with a warning.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from urllib.parse import urlsplit

#: Addresses that mean "every interface": no phone can be sent to them.
WILDCARDS = frozenset({"0.0.0.0", "::", ""})

#: Where a UDP socket is "connected" to learn which source address the kernel would use:
#: nothing is sent (UDP connect only picks a route), so no internet access is needed. The
#: private ranges first, for the route a phone on the LAN would take; a documentation
#: address last, for the default route of a machine with no private route.
_PROBES = ("10.255.255.255", "192.168.255.255", "172.31.255.255", "198.51.100.1")


def _usable(text: str) -> bool:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    return not (address.is_loopback or address.is_unspecified or address.is_link_local)


@functools.cache
def lan_address() -> str | None:
    """Return this machine's non-loopback IPv4 address, or None when it has none.

    Asked once per process: the answer names a route, which does not change under a
    running command, and each question costs a socket.
    """
    for probe in _PROBES:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            try:
                udp.connect((probe, 9))
            except OSError:  # no route to this range
                continue
            found = str(udp.getsockname()[0])
        if _usable(found):
            return found
    # No route at all (a machine with only a LAN and no default route to these ranges):
    # the addresses the host name resolves to.
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)
    except OSError:
        return None
    for info in infos:
        candidate = str(info[4][0])
        if _usable(candidate):
            return candidate
    return None


def base_url(public_url: str, host: str, port: int) -> str:
    """Return the base URL phones are given, without a trailing slash."""
    if public_url:
        return public_url.rstrip("/")
    if host in WILDCARDS:
        host = lan_address() or "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def is_loopback(url: str) -> bool:
    """Tell whether a URL names this machine only (127.0.0.0/8, ::1, localhost)."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def loopback_warning(url: str, host: str) -> str | None:
    """Say why a phone given ``url`` cannot connect, and what to do; None when it can."""
    if not is_loopback(url):
        return None
    if host in WILDCARDS:
        why = "no LAN address was found on this machine"
    else:
        why = f"the server listens on {host}"
    return (
        f"phones are given {url}, a loopback address that names the phone itself ({why}):"
        " no phone can connect to it. Serve on a LAN address (--host 0.0.0.0) or set"
        " --public-url (SMSSYNC_PUBLIC_URL) to the address phones reach."
    )
