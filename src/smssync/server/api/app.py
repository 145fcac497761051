"""The application API under ``/api/v1``: keys checked first, one error shape everywhere.

::

    ApiError          401 no or bad key, 403 missing scope, 400 bad input, 404, 409
    SmssyncError      NotFound 404, Conflict 409, StoreUnavailable 503, others 500
    validation        FastAPI's 422 answered as 400 with every bad field listed
    anything else     500 "internal error", the traceback only in the log
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from smssync import __version__
from smssync.errors import Conflict, NotFound, SmssyncError, StoreUnavailable
from smssync.server.api import admin, docs, messages
from smssync.server.api.deps import ApiError
from smssync.server.api.models import ErrorBody
from smssync.server.apikeys import SHOWN

log = logging.getLogger("smssync.api")

#: Readable without a key: the description of the API, not its data.
PUBLIC = ("/openapi.json", "/docs")
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in (
        (400, "Invalid request"),
        (401, "Missing or invalid API key"),
        (403, "The key lacks the scope"),
        (404, "Not found"),
        (409, "Conflict"),
        (429, "Too many failed authentications from this address or for this key; see Retry-After"),
        (503, "The database is unavailable; retry"),
    )
}


def error_response(
    status: int,
    message: str,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """Render the one error shape."""
    body = {"ok": False, "error": message, "errors": errors or [], "status": status}
    return JSONResponse(body, status_code=status, headers=headers)


def _too_many(retry_after_s: int) -> JSONResponse:
    return error_response(
        429, "too many failed attempts, retry later", headers={"Retry-After": str(retry_after_s)}
    )


def _unauthorized(message: str) -> JSONResponse:
    return error_response(401, message, headers={"WWW-Authenticate": 'Bearer realm="smssync"'})


class KeyAuth:
    """Resolve the API key before anything else, and turn crashes into the error shape.

    Authentication comes before routing and body parsing, so that no request without a
    valid key learns anything, not even whether its JSON was well formed.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            path = scope["path"][len(scope.get("root_path", "")) :] or scope["path"]
            if not path.endswith(PUBLIC):
                refusal = await self._authenticate(scope)
                if refusal is not None:
                    await refusal(scope, receive, send)
                    return
            await self.app(scope, receive, watch)
        except Exception:
            log.exception("unhandled API error on %s", scope.get("path"))
            if not started:
                await error_response(500, "internal error")(scope, receive, send)

    async def _authenticate(self, scope: Scope) -> JSONResponse | None:
        header = ""
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                header = value.decode("latin-1")
                break
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            return _unauthorized("missing API key: send Authorization: Bearer <key>")
        ctx = scope["app"].state.ctx
        address = scope["client"][0] if scope.get("client") else None
        wait = None if ctx.throttle is None else ctx.throttle.blocked(address, "apikey")
        if wait is not None:
            return _too_many(wait)
        key = await ctx.api_keys.resolve(presented.strip())
        if key is None:
            if ctx.throttle is not None:
                # A key's first characters are shown in listings: guesses at one key's rest
                # share that key's bucket.
                target = "apikey:" + presented.strip()[:SHOWN]
                wait = ctx.throttle.failed(address, target, "apikey")
                if wait is not None:
                    return _too_many(wait)
            return _unauthorized("invalid API key")
        scope.setdefault("state", {})["api_key"] = key
        return None


class ApiPrefix:
    """Hand every path under ``prefix`` to the API app, as Starlette's Mount would.

    Mount matches with a regular expression whose ``.`` stops at a newline, so a path with
    an encoded one would fall through to the Sync URL's 404 in the wrong error shape.
    """

    def __init__(self, app: ASGIApp, api: ASGIApp, prefix: str = "/api/v1") -> None:
        self.app = app
        self.api = api
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if path == self.prefix or path.startswith(self.prefix + "/"):
                root = scope.get("root_path", "")
                child = {**scope, "root_path": root + self.prefix, "app_root_path": root}
                await self.api(child, receive, send)
                return
        await self.app(scope, receive, send)


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, ApiError):
        return error_response(exc.status, exc.message, exc.errors)
    return error_response(500, "internal error")


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    detail = exc.detail if isinstance(exc, HTTPException) else "internal error"
    message = {404: "not found", 405: "method not allowed"}.get(status, str(detail))
    return error_response(status, message)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    items = exc.errors() if isinstance(exc, RequestValidationError) else []
    errors = [
        {"field": ".".join(str(part) for part in item.get("loc", ())), "message": item["msg"]}
        for item in items
    ]
    return error_response(400, "invalid request", json.loads(json.dumps(errors, default=str)))


async def _smssync_error(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, NotFound):
        return error_response(404, exc.message)
    if isinstance(exc, Conflict):
        return error_response(409, exc.message)
    if isinstance(exc, StoreUnavailable):
        return error_response(503, "database unavailable; retry", headers=None)
    log.error("API request failed: %s", exc)
    return error_response(500, "internal error")


def create_api() -> FastAPI:
    """Build the API app; ``create_app`` mounts it and sets ``state.ctx`` in its lifespan."""
    api = FastAPI(
        title="smssync API",
        version=__version__,
        description=(
            "Send SMS through your own phones, learn each message's fate from signed "
            "webhooks, and receive incoming SMS routed by rules. Authenticate with "
            "`Authorization: Bearer <key>` (`smssync apikey create`)."
        ),
        docs_url=None,
        redoc_url=None,
        responses=ERROR_RESPONSES,
    )
    api.add_middleware(KeyAuth)
    api.add_exception_handler(ApiError, _api_error)
    api.add_exception_handler(HTTPException, _http_error)
    api.add_exception_handler(RequestValidationError, _validation_error)
    api.add_exception_handler(SmssyncError, _smssync_error)
    api.include_router(messages.router)
    api.include_router(admin.router)
    api.include_router(docs.router)
    return api
