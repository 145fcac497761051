"""``serve --workers N``: N server processes on one port, each with a listening socket of its own.

uvicorn's own ``--workers`` shares one listening socket between its processes, and whichever
process wakes first accepts every connection that is waiting: measured under wrk, one of two
workers took 31 of 32 keep-alive connections while the other sat idle. Here every worker
listens on a socket of its own with SO_REUSEPORT, and the kernel spreads new connections
evenly over them (as nginx's ``reuseport`` does).

The parent only supervises. It reserves the port (bound but never listening, so it is given
no connection; a port someone else holds is an error), starts the workers, starts another
when one dies (unless they keep dying), and stops them all on SIGTERM or SIGINT. A worker
dies with the parent however the parent goes, ``kill -9`` included: the server stays one
unit to whoever runs it.
"""

from __future__ import annotations

import collections
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

import uvicorn

from smssync.errors import ConfigError

log = logging.getLogger("uvicorn.error")

#: uvicorn's exit status when the application fails to start.
STARTUP_FAILURE = 3
#: Seconds a stopping worker gets before it is killed (uvicorn's own grace is shorter).
STOP_GRACE_S = 15.0
#: More worker deaths than this within DEATH_WINDOW_S is a crash loop: the server stops.
MAX_DEATHS = 5
DEATH_WINDOW_S = 60.0
#: How long a port held by someone else is waited for before giving up.
PORT_WAIT_S = 3.0


def listening_socket(host: str, port: int, *, shared: bool = True) -> socket.socket:
    """A bound socket; ``shared``: with SO_REUSEPORT, so that every worker may bind the port."""
    if not hasattr(socket, "SO_REUSEPORT"):
        raise ConfigError("--workers above 1 needs SO_REUSEPORT (Linux or BSD)")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if shared:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {error.strerror}") from None
    return sock


def _claim_port(host: str, port: int) -> socket.socket:
    """Make sure nobody else listens on the port, then reserve it for the workers.

    SO_REUSEPORT would let a second server of the same user bind the same port, and the
    kernel would then split the phones between two stores. A plain bind first fails if any
    socket holds the port; it is retried for a moment, as the workers of a server that was
    just killed take a few milliseconds to follow their parent.
    """
    deadline = time.monotonic() + PORT_WAIT_S
    while True:
        try:
            probe = listening_socket(host, port, shared=False)
        except ConfigError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
            continue
        port = probe.getsockname()[1]
        probe.close()
        return listening_socket(host, port)


def _worker(config: dict[str, Any], lifeline: Connection) -> None:
    # Signals are the parent's to send: a Ctrl+C in a terminal reaches the parent alone,
    # which then stops each worker once.
    os.setpgid(0, 0)
    threading.Thread(target=_die_with_parent, args=(lifeline,), daemon=True).start()
    server = uvicorn.Server(uvicorn.Config(**config))
    server.run(sockets=[listening_socket(config["host"], config["port"])])
    if not server.started:
        sys.exit(STARTUP_FAILURE)


def _die_with_parent(lifeline: Connection) -> None:
    # The parent never writes: recv() returns only when its end closes, that is when it exits.
    try:
        lifeline.recv()
    except (EOFError, OSError):
        pass
    os.kill(os.getpid(), signal.SIGKILL)


class _Worker:
    def __init__(self, config: dict[str, Any]) -> None:
        spawn = multiprocessing.get_context("spawn")
        read_end, write_end = spawn.Pipe(duplex=False)
        #: Never written: the worker's read end sees EOF when this process is gone.
        self.lifeline = write_end
        self.process: BaseProcess = spawn.Process(
            target=_worker, args=(config, read_end), name="smssync-worker"
        )
        self.process.start()
        read_end.close()


def run(config: dict[str, Any], workers: int) -> int:
    """Run ``workers`` uvicorn servers on ``config['port']`` until SIGTERM or SIGINT.

    ``config`` holds uvicorn.Config's arguments (picklable: the app as an import string).
    Returns the exit status.
    """
    reserved = _claim_port(config["host"], config["port"])
    config = {**config, "port": reserved.getsockname()[1]}
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    log.info("Started parent process [%d]", os.getpid())
    pool = [_Worker(config) for _ in range(workers)]
    deaths: collections.deque[float] = collections.deque(maxlen=MAX_DEATHS)
    status = 0
    while not stop.wait(0.2):
        for index, worker in enumerate(pool):
            code = worker.process.exitcode
            if code is None:
                continue
            now = time.monotonic()
            deaths.append(now)
            if code == STARTUP_FAILURE:
                log.error("a worker failed to start; stopping")
                status = STARTUP_FAILURE
            elif len(deaths) == MAX_DEATHS and now - deaths[0] < DEATH_WINDOW_S:
                log.error("%d workers died within %.0f s; stopping", MAX_DEATHS, DEATH_WINDOW_S)
                status = 1
            if status:
                stop.set()
                break
            pid = worker.process.pid
            log.warning("worker [%s] died (exit status %s); starting another", pid, code)
            pool[index] = _Worker(config)
    for worker in pool:
        if worker.process.exitcode is None and worker.process.pid is not None:
            os.kill(worker.process.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for worker in pool:
        worker.process.join(max(0.0, deadline - time.monotonic()))
        if worker.process.exitcode is None:
            worker.process.kill()
            worker.process.join()
    reserved.close()
    log.info("Stopping parent process [%d]", os.getpid())
    return status
