"""The ASGI application: ``create_app(settings, store=None)``."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import Receive, Scope, Send

from smssync.server.api.app import ApiPrefix, create_api, error_response
from smssync.server.apikeys import KeyCache
from smssync.server.auth import CachedDirectory
from smssync.server.context import ServerContext
from smssync.server.dispatcher import background
from smssync.server.endpoint import SyncEndpoint, fail
from smssync.server.hooks import Hooks
from smssync.server.throttle import Throttle
from smssync.settings import Settings
from smssync.store import open_store, serverkey
from smssync.store.devices import LastSeen
from smssync.store.engine import Database

log = logging.getLogger("smssync.server")

#: The API's answer to a request cancelled by the server's shutdown.
STOPPING = error_response(503, "server stopping, retry later", headers={"retry-after": "5"})


class SmssyncApp(Starlette):
    """Starlette, except that phone requests are answered before its middleware runs."""

    def __init__(self, sync: SyncEndpoint, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sync = sync
        #: ``state.ctx``, kept where every phone request reads it without a failed attribute
        #: lookup first (Starlette's State answers through ``__getattr__``).
        self.ctx: ServerContext | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        ctx = self.ctx if self.ctx is not None else self.state.ctx
        if await self.sync.answer(ctx, scope, receive, send):
            return
        try:
            await super().__call__(scope, receive, send)
        except asyncio.CancelledError:
            # Cancelled by uvicorn's shutdown, as phone requests are (SyncEndpoint.answer):
            # a 503 to retry on rather than a traceback per request. A response already
            # under way cannot change: uvicorn then closes the connection.
            with contextlib.suppress(RuntimeError):
                await STOPPING(scope, receive, send)


def create_app(settings: Settings, store: Database | None = None) -> Starlette:
    """Build the server; it opens (and migrates) the store in its lifespan unless given one."""

    @contextlib.asynccontextmanager
    async def lifespan(app: SmssyncApp) -> AsyncIterator[None]:
        own = store is None
        active = store if store is not None else open_store(settings.store_url)
        if own:
            await active.open()
            try:
                key = await serverkey.use_server_key(active, settings.data_dir, settings.server_key)
            except BaseException:
                await active.close()
                raise
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
        app.state.ctx = api.state.ctx = app.ctx = ctx
        try:
            async with background(settings, active, hooks):
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

    api = create_api()
    routes: list[BaseRoute] = []
    return SmssyncApp(
        SyncEndpoint(settings.sync_path),
        routes=routes,
        middleware=[Middleware(ApiPrefix, api=api)],
        lifespan=lifespan,
        exception_handlers={HTTPException: not_found, Exception: crashed},
    )


def factory() -> Starlette:
    """Build the app from ``SMSSYNC_*`` variables (uvicorn workers start here)."""
    app = create_app(Settings.from_env())
    # What start-up made (modules, SQLAlchemy's tables, the app) lives as long as the
    # server: out of the collector's sight, a full collection no longer walks it every few
    # thousand requests (measured in-process: 2.6 to 0.5 µs of collection per incoming SMS).
    gc.collect()
    gc.freeze()
    return app
