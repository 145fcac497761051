"""Users: who may sign in to the dashboard and with which role, as ``smssync user`` manages
them: listed, added, given a new password, removed by an admin.

A new password or a removal ends that user's sessions at their next request (a session is
void once its user changed password after it began, or is gone: ``sessions``). Nobody
removes their own account here, and the store refuses to remove the last admin. Names
travel in form fields, not the path: a name may hold any character.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from smssync.dashboard.guard import Visitor, action, context, page, refused
from smssync.dashboard.passwords import hash_password, password_problem
from smssync.dashboard.render import PREFIX, render
from smssync.errors import Conflict, NotFound
from smssync.records import Role
from smssync.store import users

PAGE = 100
NAME_MAX = 100
#: What each role may do, for the form.
ROLES = {
    Role.VIEWER: "reads conversations, phones and messages",
    Role.OPERATOR: "also sends SMS and replies",
    Role.ADMIN: "also manages phones, rules, webhooks, API keys and users",
}
#: The notices a redirect may ask for, by key: a link never puts its own text on the page.
DONE = {
    "added": "The user was added.",
    "password": "The password was changed: that user's browsers are signed out.",
    "removed": "The user was removed and signed out everywhere.",
}


def _field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


async def _page(
    request: Request,
    who: Visitor,
    *,
    error: str = "",
    values: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    after = request.query_params.get("after") or None
    if after is not None and len(after) > NAME_MAX:
        return refused(request, "That is not a page of users.", status=400)
    found = await users.list_users(context(request).store, after=after, limit=PAGE + 1)
    shown = found[:PAGE]
    more = shown[-1].name if len(found) > PAGE else None
    return render(
        request,
        "users.html",
        status=status,
        visitor=who,
        users=shown,
        more=more,
        roles=ROLES,
        error=error,
        values=values or {},
        notice=DONE.get(request.query_params.get("done", ""), ""),
    )


@page(Role.ADMIN)
async def users_page(request: Request, who: Visitor) -> Response:
    """List the users by name with their roles, and the forms that manage them."""
    return await _page(request, who)


def _password_problem(password: str) -> str | None:
    problem = password_problem(password)
    if problem is None and "\x00" in password:
        problem = "a password cannot hold a NUL character"
    return None if problem is None else problem[0].upper() + problem[1:] + "."


async def _hash(password: str) -> str:
    # argon2 costs tens of milliseconds of CPU: off the event loop.
    return await asyncio.to_thread(hash_password, password)


@action(Role.ADMIN)
async def add(request: Request, who: Visitor, form: FormData) -> Response:
    """Add a user with a role and a password."""
    name, role, password = (_field(form, f) for f in ("name", "role", "password"))
    name = name.strip()
    values = {"name": name, "role": role}
    if not name or len(name) > NAME_MAX or "\x00" in name:
        problem: str | None = f"A name has 1 to {NAME_MAX} characters."
    elif role not in {r.value for r in Role}:
        problem = "Choose viewer, operator or admin."
    else:
        problem = _password_problem(password)
    if problem is not None:
        return await _page(request, who, error=problem, values=values, status=400)
    store = context(request).store
    taken = f"A user named {name} exists already."
    # Looked up first, so a taken name costs no hash (the insert still decides a race).
    if await users.user_by_name(store, name) is not None:
        return await _page(request, who, error=taken, values=values, status=409)
    hashed = await _hash(password)
    try:
        await users.add_user(store, name, Role(role), hashed, datetime.now(UTC))
    except Conflict:
        return await _page(request, who, error=taken, values=values, status=409)
    return RedirectResponse(f"{PREFIX}/users?done=added", status_code=303)


@action(Role.ADMIN)
async def set_password(request: Request, who: Visitor, form: FormData) -> Response:
    """Give a user a new password; every browser signed in as them is signed out (this
    admin's too, when it is their own)."""
    name, password = _field(form, "name"), _field(form, "password")
    problem = _password_problem(password)
    if problem is not None:
        return await _page(request, who, error=f"{name}: {problem}", status=400)
    store = context(request).store
    if await users.user_by_name(store, name) is None:
        return refused(request, "No such user.", status=404)
    hashed = await _hash(password)
    try:
        await users.set_password(store, name, hashed, datetime.now(UTC))
    except NotFound:
        return refused(request, "No such user.", status=404)
    return RedirectResponse(f"{PREFIX}/users?done=password", status_code=303)


@action(Role.ADMIN)
async def remove(request: Request, who: Visitor, form: FormData) -> Response:
    """Remove a user (not oneself, not the last admin); their sessions end with them."""
    name = _field(form, "name")
    if name == who.user.name:
        problem = "You cannot remove yourself: another admin can."
        return await _page(request, who, error=problem, status=409)
    try:
        await users.remove_user(context(request).store, name)
    except NotFound:
        return refused(request, "No such user.", status=404)
    except Conflict:
        problem = f"{name} is the last admin: make another admin first."
        return await _page(request, who, error=problem, status=409)
    return RedirectResponse(f"{PREFIX}/users?done=removed", status_code=303)
