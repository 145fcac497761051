"""The ASGI application: ``create_app(settings, store=None)``."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from smssync.server.auth import CachedDirectory
from smssync.server.context import ServerContext
from smssync.server.endpoint import fail, sync_endpoint
from smssync.settings import Settings
from smssync.store import open_store
from smssync.store.base import Store

log = logging.getLogger("smssync.server")

ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]


def create_app(settings: Settings, store: Store | None = None) -> Starlette:
    """Build the server; it opens (and migrates) the store in its lifespan unless given one."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        own = store is None
        active = store if store is not None else open_store(settings.store_url)
        if own:
            await active.open()
        app.state.ctx = ServerContext(
            settings, active, await active.server_key(), CachedDirectory(active)
        )
        try:
            yield
        finally:
            if own:
                await active.close()

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        return fail(status, "not found" if status == 404 else str(getattr(exc, "detail", "")))

    async def crashed(request: Request, exc: Exception) -> Response:
        # Never a traceback to the client (S-20); the log keeps it for the operator.
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return fail(500, "internal error")

    path = settings.sync_path
    routes = [
        Route(path, sync_endpoint, methods=ALL_METHODS),
        Route(path + "/d/{token}", sync_endpoint, methods=ALL_METHODS),
    ]
    return Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: not_found, Exception: crashed},
    )


def factory() -> Starlette:
    """Build the app from ``SMSSYNC_*`` variables (uvicorn workers start here)."""
    return create_app(Settings.from_env())
