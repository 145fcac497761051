"""Sign-in and sign-out. Attempts are limited per address and per account, and a correct
password from an address or for an account out of tries is refused like a wrong one."""

from __future__ import annotations

import logging

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from smssync.dashboard.guard import Visitor, action, context, read_form, refused, visitor
from smssync.dashboard.passwords import check_password
from smssync.dashboard.render import PREFIX, render
from smssync.dashboard.sessions import Session, attach, forget, read_session, same_token
from smssync.records import Role
from smssync.store import users

log = logging.getLogger("smssync.dashboard")

#: The name throttle counters use for this kind of credential.
CREDENTIAL = "password"


def _next(target: object) -> str:
    # Only a path of the dashboard: never an open redirect to another site ("//evil").
    if isinstance(target, str) and target.startswith(PREFIX) and not target.startswith("//"):
        return target
    return f"{PREFIX}/conversations"


def _form(
    request: Request, session: Session, target: object, status: int = 200, error: str = ""
) -> Response:
    response = render(
        request,
        "signin.html",
        status=status,
        csrf=session.csrf,
        error=error,
        next=_next(target),
        visitor=None,
    )
    attach(response, request, context(request), session)
    return response


async def signin_page(request: Request) -> Response:
    """Show the sign-in form (or go on when already signed in)."""
    if await visitor(request) is not None:
        return RedirectResponse(_next(request.query_params.get("next")), status_code=303)
    session = read_session(request, context(request))
    if session is None or session.user_id is not None:
        session = Session.anonymous()
    return _form(request, session, request.query_params.get("next"))


async def signin(request: Request) -> Response:
    """Check the name and password; start a session on success."""
    ctx = context(request)
    session = read_session(request, ctx)
    form: FormData = await read_form(request)
    if session is None or not same_token(session, form.get("csrf")):
        return refused(request, "This form has expired: open the sign-in page again.")
    name, password, target = form.get("name"), form.get("password"), form.get("next")
    if not isinstance(name, str) or not isinstance(password, str) or not name or not password:
        return _form(request, session, target, 400, "Enter a name and a password.")
    address = request.client.host if request.client else None
    wait = ctx.limiter.blocked(address, CREDENTIAL) or ctx.limiter.target_blocked(name)
    if wait is not None:
        return _throttled(request, session, target, wait)
    user = await users.user_by_name(ctx.store, name)
    if not await check_password(user.password_hash if user else None, password) or not user:
        # Never the name or the password in the log: either may be someone's secret.
        log.info("dashboard sign-in failed from %s", address)
        wait = ctx.limiter.failed(address, name, CREDENTIAL)
        if wait is not None:
            return _throttled(request, session, target, wait)
        return _form(request, session, target, 401, "Wrong name or password.")
    response = RedirectResponse(_next(target), status_code=303)
    attach(response, request, ctx, Session.signed_in(user))
    log.info("dashboard sign-in: %s", user.name)
    return response


def _throttled(request: Request, session: Session, target: object, wait: int) -> Response:
    response = _form(
        request, session, target, 429, f"Too many failed sign-ins: try again in {wait} s."
    )
    response.headers["retry-after"] = str(wait)
    return response


@action(Role.VIEWER)
async def signout(request: Request, who: Visitor, form: FormData) -> Response:
    """End the session."""
    response = RedirectResponse(f"{PREFIX}/signin", status_code=303)
    forget(response, request, context(request))
    return response
