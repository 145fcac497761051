"""The ASGI application: ``create_app(settings, store=None)``."""

from __future__ import annotations

import contextlib
import ctypes
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
from smssync.errors import ConfigError, InternalError, NotFound
from smssync.server import health
from smssync.server.api.app import create_api
from smssync.server.apikeys import KeyCache
from smssync.server.auth import CachedDirectory
from smssync.server.context import ServerContext
from smssync.server.dashboard import dashboard_context
from smssync.server.dispatcher import background
from smssync.server.endpoint import SyncEndpoint
from smssync.server.hooks import Hooks
from smssync.server.limits import RequestLimits
from smssync.server.shapes import API_PREFIX, for_path
from smssync.server.throttle import Throttle
from smssync.settings import Settings
from smssync.store import migrate, open_store, serverkey
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
        hooks = Hooks(active)
        ctx = ServerContext(
            settings,
            active,
            key,
            CachedDirectory(active),
            LastSeen(active),
            hooks=hooks,
            api_keys=KeyCache(active, key),
            throttle=Throttle(settings.auth_failures_burst, settings.auth_failures_per_min),
        )
        # A mounted app's own lifespan does not run: it shares this one's context.
        app.state.ctx = api.state.ctx = ctx
        dashboard.state.ctx = dashboard_context(settings, active, key)
        try:
            async with background(settings, active, hooks):
                yield
        finally:
            if own:
                await active.close()

    async def unrouted(request: Request, exc: Exception) -> Response:
        # No route took the path: 404 in the shape of the endpoint it names (an API path
        # with an encoded newline escapes Mount's pattern, yet is the API's).
        return for_path(request.url.path, NotFound("not found")).response()

    async def crashed(request: Request, exc: Exception) -> Response:
        # Never a traceback to the client (S-20); the log keeps it for the operator.
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return for_path(request.url.path, InternalError()).response()

    api = create_api()
    dashboard = create_dashboard()
    sync = SyncEndpoint()
    routes: list[BaseRoute] = [
        Route(settings.sync_path, sync),
        Route(settings.sync_path + "/d/{token}", sync),
        Mount(API_PREFIX, api),
        Route("/healthz", health.healthz, methods=["GET", "HEAD"]),
        Route("/readyz", health.readyz, methods=["GET", "HEAD"]),
        Route("/", dashboard_home, methods=["GET", "HEAD"]),
        Route(PREFIX, dashboard_home, methods=["GET", "HEAD"]),
        Mount(PREFIX, dashboard),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(RequestLimits, settings=settings)],
        lifespan=lifespan,
        exception_handlers={HTTPException: unrouted, Exception: crashed},
    )
    # "/api/v1" is the API's 404, as it always was, not a redirect to "/api/v1/".
    app.router.redirect_slashes = False
    return app


def factory() -> Starlette:
    """Build the app from ``SMSSYNC_*`` variables (uvicorn's workers start here)."""
    settings = Settings.from_env()
    if settings.workers > 1:
        _stop_with_supervisor()
    return create_app(settings)


#: Every line says when, how bad and who: ``2026-12-03 14:11:30,123 WARNING smssync.alerts: …``.
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def log_config() -> dict[str, Any]:
    """The logging of ``smssync serve`` (``logging.config.dictConfig``): smssync's own INFO
    and up and uvicorn's on stderr, one format; the access log stays off."""
    handler = {"handlers": ["stderr"], "level": "INFO", "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": LOG_FORMAT}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "plain",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {"smssync": handler, "uvicorn": handler, "uvicorn.error": {"level": "INFO"}},
    }


def serve_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's options for ``smssync serve`` (all but the app and the workers)."""
    return {
        "host": settings.host,
        "port": settings.port,
        # h11: the implementation whose bound on a head still arriving is a public option;
        # up to twice the limit, RequestLimits refuses the head in the endpoint's shape (431).
        "http": "h11",
        "h11_max_incomplete_event_size": 2 * settings.max_header_bytes,
        # The access log would print task queries, which carry secrets.
        "access_log": False,
        # Nothing reads the client's address, so X-Forwarded-* need no parsing per request.
        "proxy_headers": False,
        "log_level": "info",
        "log_config": log_config(),
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


def claim_port(host: str, port: int, wait_s: float = 3.0) -> None:
    """Fail clearly, before uvicorn starts, when someone else listens on the port.

    Retried for ``wait_s``: the workers of a server that was just killed take a moment to
    follow their supervisor and let the port go.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    deadline = time.monotonic() + wait_s
    while True:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            # As uvicorn binds: a port in TIME_WAIT is free, one with a listener is not.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
                return
            except OSError as error:
                if time.monotonic() > deadline:
                    raise ConfigError(f"cannot listen on {host}:{port}: {error.strerror}") from None
        time.sleep(0.1)
