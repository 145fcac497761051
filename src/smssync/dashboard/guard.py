"""The one place every dashboard request is checked: session, role and, for a POST, the
form's CSRF token. A page without a session redirects to sign-in; a POST without a valid
session, with a role too low or without its token is refused with 403."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Awaitable, Callable
from urllib.parse import quote

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import Message

from smssync.dashboard.context import DashboardContext
from smssync.dashboard.render import PREFIX, render
from smssync.dashboard.sessions import Session, read_session, same_token, session_user
from smssync.records import Role, User
from smssync.store import alerts, threads

#: Most fields and bytes of one form: a reply or a phone's name, never a file.
MAX_FIELDS = 20
MAX_PART_BYTES = 64 * 1024


@dataclasses.dataclass(frozen=True)
class Visitor:
    """A signed-in user and their session, as every page sees them."""

    user: User
    session: Session

    @property
    def csrf(self) -> str:
        """The token this visitor's forms carry."""
        return self.session.csrf

    def may(self, role: str) -> bool:
        """Tell whether the visitor's role allows what ``role`` may do (templates ask)."""
        return self.user.role.allows(Role(role))


Endpoint = Callable[[Request], Awaitable[Response]]
Page = Callable[[Request, Visitor], Awaitable[Response]]
Action = Callable[[Request, Visitor, FormData], Awaitable[Response]]


def context(request: Request) -> DashboardContext:
    """Return the dashboard's context (set by the server's lifespan)."""
    ctx: DashboardContext = request.app.state.ctx
    return ctx


async def visitor(request: Request) -> Visitor | None:
    """Return the signed-in visitor of a request, or None."""
    ctx = context(request)
    session = read_session(request, ctx)
    user = await session_user(ctx, session)
    if user is None or session is None:
        return None
    return Visitor(user, session)


def refused(request: Request, message: str, status: int = 403) -> Response:
    """Answer a refused request with a page saying why."""
    return render(request, "error.html", status=status, message=message, visitor=None)


def _to_signin(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"{PREFIX}/signin?next={quote(target, safe='')}", status_code=303)


def page(role: Role = Role.VIEWER) -> Callable[[Page], Endpoint]:
    """Guard a page (GET): sign-in first; 403 when the role is too low."""

    def wrap(handler: Page) -> Endpoint:
        @functools.wraps(handler)
        async def endpoint(request: Request) -> Response:
            who = await visitor(request)
            if who is None:
                return _to_signin(request)
            if not who.user.role.allows(role):
                return refused(request, f"This page needs the {role.value} role.")
            # The header's count of open alerts, on every page (one indexed count).
            counts = await alerts.count_open_alerts(context(request).store)
            request.state.alerts_open = sum(counts.values())
            # And of unread incoming SMS (a range over the unread conversations).
            found = await threads.total_unread(context(request).store)
            request.state.unread = threads.unread_label(found)
            return await handler(request, who)

        return endpoint

    return wrap


def feed(handler: Page) -> Endpoint:
    """Guard a JSON feed read by the pages' script: 401 without a session, no redirect."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        who = await visitor(request)
        if who is None:
            return JSONResponse({"ok": False, "error": "sign in first", "status": 401}, 401)
        return await handler(request, who)

    return endpoint


async def read_form(request: Request) -> FormData:
    """Parse a form body within the dashboard's bounds (no files)."""
    return await request.form(max_files=0, max_fields=MAX_FIELDS, max_part_size=MAX_PART_BYTES)


class UploadTooLarge(Exception):
    """The body is over the form's limit."""


FormReader = Callable[[Request], Awaitable[FormData]]


def upload_reader(max_bytes: int) -> FormReader:
    """Return a reader of a multipart form with one file, the whole body at most
    ``max_bytes`` (declared or counted as it arrives: a chunked body has no length)."""

    async def read(request: Request) -> FormData:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise UploadTooLarge()
        received = 0
        upstream = request.receive

        async def bounded() -> Message:
            nonlocal received
            message = await upstream()
            received += len(message.get("body", b""))
            if received > max_bytes:
                raise UploadTooLarge()
            return message

        # Fields are bounded by the body's limit too: a preview carries the CSV back.
        return await Request(request.scope, bounded).form(
            max_files=1, max_fields=MAX_FIELDS, max_part_size=max_bytes
        )

    return read


def action(
    role: Role = Role.OPERATOR, read: FormReader = read_form, too_large: str = ""
) -> Callable[[Action], Endpoint]:
    """Guard a state-changing form (POST): a session, the role, then the CSRF token;
    ``read`` parses the form (an upload's reader answers 413 with ``too_large``)."""

    def wrap(handler: Action) -> Endpoint:
        @functools.wraps(handler)
        async def endpoint(request: Request) -> Response:
            who = await visitor(request)
            if who is None:
                return refused(request, "Sign in first: the session has ended.")
            try:
                form = await read(request)
            except UploadTooLarge:
                return refused(request, too_large or "The form is too large.", 413)
            # The token before the role: a forged request learns nothing of either.
            if not same_token(who.session, form.get("csrf")):
                return refused(request, "This form has expired or was not sent by this page.")
            if not who.user.role.allows(role):
                return refused(request, f"This needs the {role.value} role.")
            try:
                return await handler(request, who, form)
            finally:
                await form.close()

        return endpoint

    return wrap


def row_id(raw: str, below: int = 2**31) -> int | None:
    """Read a row id from a path or query (a positive integer below ``below``: 32 bits, or
    64 for the big tables), or None: a bad one is a 404 or 400 for the caller to say,
    never a database error."""
    if not (0 < len(raw) <= 19 and raw.isascii() and raw.isdigit()):
        return None
    value = int(raw)
    return value if 0 < value < below else None
