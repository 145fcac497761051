"""Free TCP ports for the servers the tests start, apart for each pytest-xdist worker."""

from __future__ import annotations

import os
import random
import socket

#: Below Linux's ephemeral range (32768–60999): no client socket of the OS is given one.
FIRST, LAST = 20000, 32000
#: Ports this process handed out: a server it stops may still be starting, or come back.
_given: set[int] = set()


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    """Return a TCP port nobody listens on right now, and that no other worker will pick.

    Between this call and the server's own bind, another worker's free port could be the same
    one if both asked the OS; under xdist each worker draws from its own slice instead.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker is None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
            return port
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    span = (LAST - FIRST) // max(count, 1)
    start = FIRST + int(worker.removeprefix("gw")) % max(count, 1) * span
    for port in random.sample(range(start, start + span), span):
        if port not in _given and _bindable(port):
            _given.add(port)
            return port
    raise RuntimeError(f"no free port left in {start}-{start + span}")
