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
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from smssync import __version__
from smssync.errors import Conflict, NotFound, ProtocolError, SmssyncError, StoreUnavailable
from smssync.protocol.body import body_charset
from smssync.server.api import admin, docs, messages
from smssync.server.api.deps import ApiError, responses
from smssync.server.apikeys import SHOWN

log = logging.getLogger("smssync.api")

#: Where the API lives; everything else is the Sync URL's.
API_PREFIX = "/api/v1"
#: Readable without a key: the description of the API, not its data. Exact paths only:
#: ``/messages/docs`` is a message's uuid, not the docs.
PUBLIC = frozenset({"/openapi.json", "/docs"})
#: What any route may answer; each route adds its own (404, 409, 413).
ERROR_RESPONSES = responses(400, 401, 403, 429, 431, 503)


def error_body(status: int, message: str, errors: list[dict[str, Any]] | None = None) -> bytes:
    """Encode the one error shape."""
    body = {"ok": False, "error": message, "errors": errors or [], "status": status}
    return json.dumps(body, separators=(",", ":")).encode()


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


class BodyTooLarge(HTTPException):
    """The body is over ``api_max_body_bytes``."""

    def __init__(self) -> None:
        super().__init__(413, "body too large")


def header(scope: Scope, wanted: bytes) -> str | None:
    """Return the first value of a request header."""
    for name, value in scope.get("headers", []):
        if name == wanted:
            text: str = value.decode("latin-1")
            return text
    return None


def declared_length(scope: Scope) -> int | None:
    """Return the Content-Length of a request, None when absent or not a number."""
    value = header(scope, b"content-length")
    return int(value) if value is not None and value.isdigit() else None


def charset_refusal(scope: Scope) -> JSONResponse | None:
    """Refuse a body labelled with a charset other than UTF-8: JSON is UTF-8 (RFC 8259), and
    a label naming another encoding, or none at all (``utf-7``, ``base64``), is a mistake to
    report rather than a text to guess at."""
    try:
        codec = body_charset(header(scope, b"content-type"))
    except ProtocolError as exc:
        return error_response(400, exc.message, [{"field": "content-type", "message": exc.message}])
    if codec != "utf-8":
        message = f"JSON bodies are UTF-8, not {codec}"
        return error_response(400, message, [{"field": "content-type", "message": message}])
    return None


class KeyAuth:
    """Resolve the API key before anything else, and turn crashes into the error shape.

    Authentication comes before routing and body parsing, so that no request without a
    valid key learns anything, not even whether its JSON was well formed. Only a body
    declared too large is refused before it (413), as nothing of it is read.
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

        limit: int = scope["app"].state.ctx.settings.api_max_body_bytes
        received = 0

        async def bounded() -> Message:
            # Bodies of unknown length (chunked) are counted as they arrive; the exception
            # reaches FastAPI's handlers, which answer it in the error shape.
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise BodyTooLarge()
            return message

        try:
            declared = declared_length(scope)
            if declared is not None and declared > limit:
                await error_response(413, "body too large")(scope, receive, send)
                return
            path = scope["path"][len(scope.get("root_path", "")) :] or scope["path"]
            if path not in PUBLIC:
                refusal = await self._authenticate(scope) or charset_refusal(scope)
                if refusal is not None:
                    await refusal(scope, receive, send)
                    return
            await self.app(scope, bounded, watch)
        except Exception:
            log.exception("unhandled API error on %s", scope.get("path"))
            if not started:
                await error_response(500, "internal error")(scope, receive, send)

    async def _authenticate(self, scope: Scope) -> JSONResponse | None:
        scheme, _, presented = (header(scope, b"authorization") or "").partition(" ")
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

    def __init__(self, app: ASGIApp, api: ASGIApp, prefix: str = API_PREFIX) -> None:
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
    headers = dict(exc.headers or {}) if isinstance(exc, HTTPException) else None
    if status == 405:
        # RFC 9110 15.5.6: every method of the path. Starlette names only the first route's,
        # and GET and POST /messages are two routes.
        headers = {"Allow": ", ".join(allowed_methods(request))}
    return error_response(status, message, headers=headers)


def allowed_methods(request: Request) -> list[str]:
    """Return the methods that the routes of a request's path answer."""
    root: str = request.scope.get("root_path", "")
    path = request.scope["path"][len(root) :] if request.scope["path"].startswith(root) else ""
    table: list[tuple[re.Pattern[str], set[str]]] = request.app.state.route_methods
    return sorted({m for pattern, methods in table if pattern.match(path) for m in methods})


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
    api.state.route_methods = [
        (route.path_regex, route.methods)
        for router in (messages.router, admin.router, docs.router)
        for route in router.routes
        if isinstance(route, APIRoute)
    ]

    def openapi() -> dict[str, Any]:
        # FastAPI documents a 422 for every route with parameters; validation errors are
        # answered 400 in the error shape (``_validation_error``), so the 422 would be false.
        if api.openapi_schema is None:
            schema = FastAPI.openapi(api)
            for operations in schema["paths"].values():
                for operation in operations.values():
                    operation.get("responses", {}).pop("422", None)
            for name in ("HTTPValidationError", "ValidationError"):
                schema.get("components", {}).get("schemas", {}).pop(name, None)
        return api.openapi_schema or {}

    api.openapi = openapi  # type: ignore[method-assign]
    return api
