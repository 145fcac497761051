"""The ASGI application: ``create_app(settings, store=None)``."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from smssync.dashboard.app import create_dashboard
from smssync.dashboard.app import home as dashboard_home
from smssync.dashboard.render import PREFIX
from smssync.errors import ConfigError, InternalError, NotFound, StoreError
from smssync.regions import DefaultRegion
from smssync.server import health, logs, metrics
from smssync.server.api.app import create_api
from smssync.server.apikeys import KeyCache
from smssync.server.auth import CachedDirectory
from smssync.server.context import ServerContext
from smssync.server.dashboard import dashboard_context
from smssync.server.dispatcher import background
from smssync.server.endpoint import SyncEndpoint
from smssync.server.headtime import HeadDeadline
from smssync.server.hooks import Hooks
from smssync.server.limits import RequestLimits
from smssync.server.observe import HEADER, Observe
from smssync.server.shapes import API_PREFIX, for_path
from smssync.server.throttle import Throttle
from smssync.settings import Settings, proxy_list
from smssync.store import migrate, open_store, region, serverkey
from smssync.store.devices import LastSeen
from smssync.store.engine import Database

log = logging.getLogger("smssync.server")

#: Where ``smssync serve`` tells its workers the supervisor's pid (not an SMSSYNC_ setting).
SUPERVISOR_VARIABLE = "_SMSSYNC_SUPERVISOR_PID"

#: prctl(2) option: the signal a process gets when its parent exits (Linux).
_PR_SET_PDEATHSIG = 1


def create_app(settings: Settings, store: Database | None = None) -> Starlette:
    """Build the server; it opens (and migrates) the store in its lifespan unless given one."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        own = store is None
        active = store if store is not None else open_store(settings.store_url)
        if own:
            await active.open()
            try:
                key = await serverkey.use_server_key(active, settings.data_dir, settings.server_key)
            except BaseException:
                await active.close()
                raise
            # Which database, never its URL: a PostgreSQL URL may hold a password.
            log.info("store open: %s, migrated to %s", active.dialect, migrate.head())
        else:
            # A store handed in comes with its key (a test's, or one already in use).
            key = await serverkey.server_key(active)
        try:
            found = await _region(active, settings)
            served = settings.model_copy(update={"default_region": found.code})
            hooks = Hooks(active)
            ctx = ServerContext(
                served,
                active,
                key,
                CachedDirectory(active),
                LastSeen(active),
                hooks=hooks,
                api_keys=KeyCache(active, key),
                throttle=Throttle(
                    settings.auth_failures_burst,
                    settings.auth_failures_per_min,
                    report=metrics.auth_counted,
                ),
            )
            # A mounted app's own lifespan does not run: it shares this one's context.
            app.state.ctx = api.state.ctx = ctx
            dashboard.state.ctx = dashboard_context(served, active, key, hooks.wake.set)
            async with background(served, active, hooks):
                yield
        finally:
            if own:
                await active.close()
            metrics.worker_exit()

    device_paths = settings.sync_path + "/d/"

    async def unrouted(request: Request, exc: Exception) -> Response:
        # No route took the path: 404 in the shape of the endpoint it names (an API path
        # with an encoded newline escapes Mount's pattern, yet is the API's).
        return for_path(request.url.path, NotFound("not found")).response()

    async def crashed(request: Request, exc: Exception) -> Response:
        # Never a traceback to the client (S-20); the log keeps it for the operator.
        # The path may hold a device's token: log it masked, as the endpoint does.
        path = request.url.path
        shown = path.rsplit("/", 1)[0] + "/***" if path.startswith(device_paths) else path
        log.exception("unhandled error on %s %s", request.method, shown)
        response = for_path(request.url.path, InternalError()).response()
        # Outside Observe, which left the request's id set for this answer and this log line.
        request_id = logs.REQUEST_ID.get()
        if request_id is not None:
            response.headers[HEADER.decode()] = request_id
        return response

    api = create_api()
    dashboard = create_dashboard()
    sync = SyncEndpoint()
    routes: list[BaseRoute] = [
        Route(settings.sync_path, sync),
        Route(settings.sync_path + "/d/{token}", sync),
        Mount(API_PREFIX, api),
        Route("/healthz", health.healthz, methods=["GET", "HEAD"]),
        Route("/readyz", health.readyz, methods=["GET", "HEAD"]),
        Route("/metrics", metrics.metrics, methods=["GET"]),
        Route("/", dashboard_home, methods=["GET", "HEAD"]),
        Route(PREFIX, dashboard_home, methods=["GET", "HEAD"]),
        Mount(PREFIX, dashboard),
    ]
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(Observe, settings=settings),
            Middleware(RequestLimits, settings=settings),
        ],
        lifespan=lifespan,
        exception_handlers={HTTPException: unrouted, Exception: crashed},
    )
    # "/api/v1" is the API's 404, as it always was, not a redirect to "/api/v1/".
    app.router.redirect_slashes = False
    return app


async def _region(store: Database, settings: Settings) -> DefaultRegion:
    """Return the store's region, so that the server reads numbers as the CLI does."""
    try:
        found = await region.default_region(store, settings.default_region, os.environ)
    except StoreError as error:
        # Only a store handed in gets here unread (an own store answered for its key): the
        # server starts, as /healthz must, on the setting alone.
        found = DefaultRegion(settings.default_region, "the setting (the store did not answer)")
        log.warning("default region not read from the store: %s", error.message)
    log.info("%s", found.describe())
    return found


def factory() -> Starlette:
    """Build the app from ``SMSSYNC_*`` variables (uvicorn's workers start here)."""
    settings = Settings.from_env()
    if settings.workers > 1:
        _stop_with_supervisor()
    return create_app(settings)


def serve_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's options for ``smssync serve`` (all but the app and the workers)."""
    proxies = proxy_list(settings.forwarded_allow_ips)
    return {
        "host": settings.host,
        "port": settings.port,
        # h11: the implementation whose bound on a head still arriving is a public option;
        # up to twice the limit, RequestLimits refuses the head in the endpoint's shape (431).
        # Wrapped, for a deadline on each head (server/headtime.py).
        "http": functools.partial(HeadDeadline, timeout_s=float(settings.request_timeout_s)),
        "h11_max_incomplete_event_size": 2 * settings.max_header_bytes,
        # The access log would print task queries, which carry secrets.
        "access_log": False,
        # The client's address (the brake on guessing) and scheme come from X-Forwarded-For
        # and X-Forwarded-Proto only when the connection is from a configured proxy; with
        # none configured the headers are not parsed at all.
        "proxy_headers": bool(proxies),
        "forwarded_allow_ips": proxies or None,
        "log_level": "info",
        "log_config": logs.log_config(settings.log_format),
        "timeout_graceful_shutdown": 5,
    }


def _stop_with_supervisor() -> None:
    """Die with uvicorn's supervisor, however it goes (``kill -9`` too), as ``kill -9`` of a
    single server would: a worker left behind would keep the port and serve on, unsupervised,
    and the next server started on the port would share it with the stray.

    The supervisor's pid comes from ``SUPERVISOR_VARIABLE`` (set by ``smssync serve``): a
    supervisor killed before this worker got here has already left it to init, and the
    worker must not take init for its supervisor."""
    parent = int(os.environ.get(SUPERVISOR_VARIABLE) or os.getppid())
    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGKILL)
    if sys.platform == "linux":
        # The kernel signals the worker as the supervisor exits, before anyone can start
        # the next server (PR_SET_PDEATHSIG).
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)

    def watch() -> None:  # elsewhere, and if the supervisor went just before the prctl
        while os.getppid() == parent:
            time.sleep(0.2)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="smssync-supervisor-watch", daemon=True).start()


def claim_port(host: str, port: int, wait_s: float = 3.0) -> socket.socket:
    """Bind the port the server will serve on and return the socket, or fail clearly when
    someone else listens on it: before anything that only a running server may do (a first
    device's one-time secret is printed only once the port is ours).

    Retried for ``wait_s``: the workers of a server that was just killed take a moment to
    follow their supervisor and let the port go.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    deadline = time.monotonic() + wait_s
    while True:
        sock = socket.socket(family, socket.SOCK_STREAM)
        # As uvicorn binds: a port in TIME_WAIT is free, one with a listener is not.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as error:
            sock.close()
            if time.monotonic() > deadline:
                raise ConfigError(f"cannot listen on {host}:{port}: {error.strerror}") from None
            time.sleep(0.1)
            continue
        # Workers (spawned processes) inherit it, as from uvicorn's own bind.
        sock.set_inheritable(True)
        return sock


def run(settings: Settings, sock: socket.socket) -> None:
    """Serve on the socket ``claim_port`` bound, in this process or ``settings.workers``."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config(
        "smssync.server.app:factory",
        factory=True,
        workers=settings.workers,  # more than 1: uvicorn's own supervisor
        **serve_options(settings),
    )
    server = uvicorn.Server(config)
    log.info("listening on %s:%d", settings.host, settings.port)
    try:
        if settings.workers > 1:
            Multiprocess(config, sockets=[sock]).run()
        else:
            server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    if settings.workers == 1 and not server.started:
        raise SystemExit(3)  # uvicorn's startup failure, e.g. the store would not open
