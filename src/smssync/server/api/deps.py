"""What every API route depends on: the server context, the key and its scope."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from smssync.errors import Forbidden, InvalidKey
from smssync.records import ApiKey, Scope
from smssync.server.api.models import ErrorBody
from smssync.server.context import ServerContext

#: Declares the scheme in the OpenAPI document; the check itself runs in ``KeyAuth``.
bearer = HTTPBearer(auto_error=False, description="An API key from `smssync apikey create`.")


_ERRORS = {
    400: "Invalid request: a parameter or body field, or a charset other than UTF-8",
    401: "Missing or invalid API key",
    403: "The key lacks the scope",
    404: "Not found",
    409: "Conflict with the message's state or an earlier request",
    413: "Body over the server's limit (api_max_body_bytes)",
    429: "Too many failed authentications; retry after Retry-After",
    431: "Request line and headers over max_header_bytes, or more than max_headers fields",
    503: "The database is unavailable; retry",
}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Describe error answers in the OpenAPI document: every one has the error shape."""
    return {status: {"model": ErrorBody, "description": _ERRORS[status]} for status in statuses}


def context(request: Request) -> ServerContext:
    """Return the server context the lifespan put on the API app."""
    ctx: ServerContext = request.app.state.ctx
    return ctx


def require(scope: Scope) -> Callable[..., Awaitable[ApiKey]]:
    """Return a dependency giving the request's key, 403 when it lacks ``scope``."""

    async def check(
        request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
    ) -> ApiKey:
        key: ApiKey | None = getattr(request.state, "api_key", None)
        if key is None:  # KeyAuth refuses such requests; this is the belt to its braces
            raise InvalidKey("missing API key")
        if not key.allows(scope):
            raise Forbidden(f"this API key lacks the {scope.value!r} scope")
        return key

    return check
