"""The application API under ``/api/v1``: keys checked first, one error shape everywhere.

Every refusal is an exception of ``smssync.errors`` rendered by ``shapes.for_api``; FastAPI's
own (404, 405, validation) are translated to ours first. Validation errors are answered 400
with every bad field listed, never FastAPI's 422.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from smssync import __version__
from smssync.errors import (
    BadRequest,
    BodyTooLarge,
    InternalError,
    InvalidKey,
    MethodNotAllowed,
    NotFound,
    ProtocolError,
    SmssyncError,
    Throttled,
)
from smssync.protocol.body import body_charset
from smssync.server.api import activity, admin, alerts, campaigns, docs, messages, optouts
from smssync.server.api.deps import responses
from smssync.server.apikeys import SHOWN
from smssync.server.shapes import API_PREFIX, for_api

__all__ = ["API_PREFIX", "create_api"]

log = logging.getLogger("smssync.api")

#: Readable without a key: the description of the API, not its data. Exact paths only:
#: ``/messages/docs`` is a message's uuid, not the docs.
PUBLIC = frozenset({"/openapi.json", "/docs"})
#: What any route may answer; each route adds its own (404, 409, 413).
ERROR_RESPONSES = responses(400, 401, 403, 429, 431, 503)


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


def check_charset(scope: Scope) -> None:
    """Refuse a body labelled with a charset other than UTF-8: JSON is UTF-8 (RFC 8259), and
    a label naming another encoding, or none at all (``utf-7``, ``base64``), is a mistake to
    report rather than a text to guess at."""
    try:
        codec = body_charset(header(scope, b"content-type"))
    except ProtocolError as exc:
        raise BadRequest(exc.message, [{"field": "content-type", "message": exc.message}]) from None
    if codec != "utf-8":
        message = f"JSON bodies are UTF-8, not {codec}"
        raise BadRequest(message, [{"field": "content-type", "message": message}])


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
            # Bodies of unknown length (chunked) are counted as they arrive; FastAPI turns
            # the exception into a 400 of its own chained to it, which ``_as_ours`` unwraps.
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise BodyTooLarge()
            return message

        try:
            declared = declared_length(scope)
            if declared is not None and declared > limit:
                raise BodyTooLarge()
            path = scope["path"][len(scope.get("root_path", "")) :] or scope["path"]
            if path not in PUBLIC:
                await self._authenticate(scope)
                check_charset(scope)
        except SmssyncError as exc:
            await for_api(exc)(send)
            return
        try:
            await self.app(scope, bounded, watch)
        except Exception:
            log.exception("unhandled API error on %s", scope.get("path"))
            if not started:
                await for_api(InternalError())(send)

    async def _authenticate(self, scope: Scope) -> None:
        scheme, _, presented = (header(scope, b"authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            raise InvalidKey("missing API key: send Authorization: Bearer <key>")
        ctx = scope["app"].state.ctx
        address = scope["client"][0] if scope.get("client") else None
        wait = None if ctx.throttle is None else ctx.throttle.blocked(address, "apikey")
        if wait is not None:
            raise Throttled(wait)
        key = await ctx.api_keys.resolve(presented.strip())
        if key is None:
            if ctx.throttle is not None:
                # A key's first characters are shown in listings: guesses at one key's rest
                # share that key's bucket.
                target = "apikey:" + presented.strip()[:SHOWN]
                wait = ctx.throttle.failed(address, target, "apikey")
                if wait is not None:
                    raise Throttled(wait)
            raise InvalidKey("invalid API key")
        scope.setdefault("state", {})["api_key"] = key


async def _refused(request: Request, exc: Exception) -> Response:
    """The one exception handler: FastAPI's errors become ours, then the API's shape."""
    return for_api(_as_ours(request, exc)).response()


def _as_ours(request: Request, exc: Exception) -> SmssyncError:
    if isinstance(exc, SmssyncError):
        return exc
    if isinstance(exc, RequestValidationError):
        errors = [
            {"field": ".".join(str(part) for part in item.get("loc", ())), "message": item["msg"]}
            for item in exc.errors()
        ]
        return BadRequest("invalid request", json.loads(json.dumps(errors, default=str)))
    if isinstance(exc, HTTPException):
        if isinstance(exc.__cause__, SmssyncError):
            # FastAPI answers any error while it reads the body with a 400 of its own,
            # chained to ours (413 counted as it arrives, 408 at the request's deadline).
            return exc.__cause__
        if exc.status_code == 404:
            return NotFound("not found")
        if exc.status_code == 405:
            # RFC 9110 15.5.6: every method of the path. Starlette names only the first
            # route's, and GET and POST /messages are two routes.
            return MethodNotAllowed("method not allowed", allowed_methods(request))
        return BadRequest(str(exc.detail), headers=exc.headers)
    return InternalError()


def allowed_methods(request: Request) -> list[str]:
    """Return the methods that the routes of a request's path answer."""
    root: str = request.scope.get("root_path", "")
    path = request.scope["path"][len(root) :] if request.scope["path"].startswith(root) else ""
    table: list[tuple[re.Pattern[str], set[str]]] = request.app.state.route_methods
    return sorted({m for pattern, methods in table if pattern.match(path) for m in methods})


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
    for kind in (SmssyncError, HTTPException, RequestValidationError):
        api.add_exception_handler(kind, _refused)
    api.include_router(messages.router)
    api.include_router(admin.router)
    api.include_router(activity.router)
    api.include_router(alerts.router)
    api.include_router(campaigns.router)
    api.include_router(optouts.router)
    api.include_router(docs.router)
    api.state.route_methods = [
        (route.path_regex, route.methods)
        for router in (
            messages.router,
            admin.router,
            activity.router,
            alerts.router,
            campaigns.router,
            optouts.router,
            docs.router,
        )
        for route in router.routes
        if isinstance(route, APIRoute)
    ]

    def openapi() -> dict[str, Any]:
        # FastAPI documents a 422 for every route with parameters; validation errors are
        # answered 400 in the error shape (``_as_ours``), so the 422 would be false.
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
