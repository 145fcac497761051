"""The two error shapes: the phone's (S-20) on the Sync URL, the API's under ``/api/v1``.

Every refusal is an exception of ``smssync.errors`` carrying its status; ``for_phone`` and
``for_api`` are the only places that turn one into bytes, and ``for_path`` picks between them
by the path the request line named.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Any

from starlette.responses import Response
from starlette.types import Send

from smssync.errors import (
    InternalError,
    Refused,
    SmssyncError,
    StoreError,
    StoreUnavailable,
    Unavailable,
)
from smssync.protocol import replies

log = logging.getLogger("smssync.server")

#: Where the API lives; everything else is the Sync URL's.
API_PREFIX = "/api/v1"
_API_CONTENT_TYPE = "application/json"


@dataclasses.dataclass(frozen=True, slots=True)
class Answer:
    """A status, an encoded body and its headers: a whole HTTP response."""

    status: int
    body: bytes
    headers: tuple[tuple[bytes, bytes], ...] = ()
    content_type: str = replies.CONTENT_TYPE

    async def __call__(self, send: Send) -> None:
        """Send the response."""
        headers = [
            (b"content-type", self.content_type.encode()),
            (b"content-length", str(len(self.body)).encode()),
            *self.headers,
        ]
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})

    def response(self) -> Response:
        """The same answer as a Starlette Response, for exception handlers."""
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in self.headers}
        return Response(self.body, self.status, headers, media_type=self.content_type)


def _encoded(headers: dict[str, str]) -> tuple[tuple[bytes, bytes], ...]:
    return tuple((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items())


def _parts(error: SmssyncError) -> tuple[int, str, list[dict[str, Any]], dict[str, str]]:
    """Status, message, bad fields and headers of ``error``; internal messages stay in the log."""
    if isinstance(error, Refused):
        return error.status, error.message, error.errors, error.headers
    if error.public:
        return error.status, error.message, [], {}
    log.error("request failed: %s: %s", type(error).__name__, error)
    return _parts(InternalError())


def for_phone(error: SmssyncError) -> Answer:
    """Render the phone's shape: ``{"payload":{"success":false,"error":...}}`` (S-20)."""
    if isinstance(error, StoreError):
        # The App retries on anything but success, so a 503 loses nothing (S-13).
        log.warning("store failed (%s); answered 503", type(error).__name__)
        error = Unavailable("storage unavailable, retry later")
    status, message, _, headers = _parts(error)
    return Answer(status, replies.failure(message), _encoded(headers))


def api_body(status: int, message: str, errors: list[dict[str, Any]] | None = None) -> bytes:
    """Encode the API's shape (as Starlette's JSONResponse encodes JSON)."""
    body = {"ok": False, "error": message, "errors": errors or [], "status": status}
    return json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def for_api(error: SmssyncError) -> Answer:
    """Render the API's shape: ``{"ok":false,"error":...,"errors":[...],"status":N}``."""
    if isinstance(error, StoreUnavailable):
        error = Unavailable("database unavailable; retry", retry_after_s=None)
    status, message, errors, headers = _parts(error)
    return Answer(status, api_body(status, message, errors), _encoded(headers), _API_CONTENT_TYPE)


def is_api(path: str) -> bool:
    """Whether a path is the API's (anything else is the Sync URL's)."""
    return path == API_PREFIX or path.startswith(API_PREFIX + "/")


def for_path(path: str, error: SmssyncError) -> Answer:
    """Render ``error`` in the shape of the endpoint ``path`` names."""
    return for_api(error) if is_api(path) else for_phone(error)
