"""Separate hosts for a fleet test: one network namespace per server where the machine
allows (root, ``ip netns``, and PostgreSQL's Unix socket, which a namespace still reaches),
else loopback ports on this host (also when ``SMSSYNC_TEST_NO_NETNS`` is set).

Each namespace gets a veth pair to this host (``10.R.n.2`` inside, ``10.R.n.1`` here) and a
default route through it, so a server reaches the webhook receiver here and nothing of the
other servers but through this host, as separate machines on one network would.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import random
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

from tests.pg import PG_PORT, PG_USER

#: Where Debian's PostgreSQL keeps its socket.
PG_SOCKET_DIR = Path("/var/run/postgresql")


@dataclasses.dataclass(frozen=True)
class Host:
    """Where one server runs: its address, and the prefix that runs a command there."""

    address: str
    wrap: tuple[str, ...] = ()


@dataclasses.dataclass
class Network:
    """The hosts, the address this machine has for them (the receiver's), and how they
    reach PostgreSQL."""

    hosts: list[Host]
    here: str
    namespaces: bool

    def database_url(self, name: str) -> str:
        """The URL of database ``name`` as every host reaches it."""
        if self.namespaces:
            return f"postgresql://{PG_USER}@/{name}?host={PG_SOCKET_DIR}&port={PG_PORT}"
        return f"postgresql://{PG_USER}@127.0.0.1:{PG_PORT}/{name}"


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


def _unused_subnet() -> int:
    """A ``10.R.0.0/16`` no interface here has an address in (another run's namespaces)."""
    listing = subprocess.run(
        ["ip", "-4", "-o", "addr"], check=True, capture_output=True, text=True, timeout=10
    ).stdout
    taken = {int(word.split(".")[1]) for word in listing.split() if word.startswith("10.")}
    return random.choice([r for r in range(100, 250) if r not in taken])


def _can_use_namespaces() -> bool:
    return (
        not os.environ.get("SMSSYNC_TEST_NO_NETNS")
        and os.geteuid() == 0
        and shutil.which("ip") is not None
        and (PG_SOCKET_DIR / f".s.PGSQL.{PG_PORT}").exists()
    )


@contextlib.contextmanager
def network(count: int) -> Iterator[Network]:
    """``count`` hosts in namespaces of their own, or on loopback where that cannot be."""
    loopback = Network([Host("127.0.0.1") for _ in range(count)], "127.0.0.1", False)
    if not _can_use_namespaces():
        yield loopback
        return
    tag = secrets.token_hex(3)
    names: list[str] = []
    links: list[str] = []
    hosts: list[Host] = []
    subnet = 0
    try:
        subnet = _unused_subnet()
        for n in range(count):
            name, outer, inner = f"smssync-{tag}-{n}", f"sf{tag}{n}o", f"sf{tag}{n}i"
            _ip("netns", "add", name)
            names.append(name)
            _ip("link", "add", outer, "type", "veth", "peer", "name", inner)
            links.append(outer)
            _ip("link", "set", inner, "netns", name)
            _ip("addr", "add", f"10.{subnet}.{n}.1/24", "dev", outer)
            _ip("link", "set", outer, "up")
            inside = ("netns", "exec", name, "ip")
            _ip(*inside, "addr", "add", f"10.{subnet}.{n}.2/24", "dev", inner)
            _ip(*inside, "link", "set", inner, "up")
            _ip(*inside, "link", "set", "lo", "up")
            _ip(*inside, "route", "add", "default", "via", f"10.{subnet}.{n}.1")
            hosts.append(Host(f"10.{subnet}.{n}.2", ("ip", "netns", "exec", name)))
    except (subprocess.CalledProcessError, OSError):
        # Not allowed here after all (a container without CAP_SYS_ADMIN): loopback.
        _remove(names, links)
        hosts = []
    if not hosts:
        yield loopback
        return
    try:
        # Any of this host's addresses reaches it from every namespace (their default route).
        yield Network(hosts, f"10.{subnet}.0.1", True)
    finally:
        _remove(names, links)


def _remove(names: list[str], links: list[str]) -> None:
    for name in names:
        with contextlib.suppress(subprocess.CalledProcessError):
            _ip("netns", "del", name)
    for link in links:  # gone with its peer's namespace, unless that step failed
        with contextlib.suppress(subprocess.CalledProcessError):
            _ip("link", "del", link)
