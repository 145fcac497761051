"""API keys: the keys applications call ``/api/v1`` with, listed by prefix and scopes,
created (the key shown once, as ``smssync apikey create`` prints it) and revoked by an
admin. Running servers refuse a revoked key at once (``server.apikeys.KeyCache``)."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from smssync.dashboard.guard import Visitor, action, context, page, refused, row_id
from smssync.dashboard.render import PREFIX, render
from smssync.errors import NotFound
from smssync.records import ApiKey, Role, Scope
from smssync.store import apikeys

PAGE = 100
NAME_MAX = 100
#: What each scope lets a key do, for the form.
SCOPES = {
    Scope.SEND: "queue and cancel outgoing SMS",
    Scope.READ: "read messages, the inbox and phones",
    Scope.ADMIN: "everything, webhooks and rules too",
}


async def _page(
    request: Request,
    who: Visitor,
    *,
    error: str = "",
    name: str = "",
    chosen: frozenset[str] = frozenset(),
    created: tuple[ApiKey, str] | None = None,
    status: int = 200,
) -> Response:
    raw = request.query_params.get("after", "")
    after = row_id(raw) if raw else 0
    if after is None:
        return refused(request, "That is not a page of keys.", status=400)
    found = await apikeys.list_api_keys(context(request).store, after=after, limit=PAGE + 1)
    shown = found[:PAGE]
    more = f"{PREFIX}/keys?after={shown[-1].id}" if len(found) > PAGE else None
    return render(
        request,
        "keys.html",
        status=status,
        visitor=who,
        keys=shown,
        newer=more,
        scopes=SCOPES,
        error=error,
        key_name=name,
        chosen=chosen,
        created=created,
        revoked=request.query_params.get("revoked") == "1",
    )


@page(Role.ADMIN)
async def keys_page(request: Request, who: Visitor) -> Response:
    """List the API keys (never the keys themselves), with the form that creates one."""
    return await _page(request, who)


@action(Role.ADMIN)
async def create(request: Request, who: Visitor, form: FormData) -> Response:
    """Create a key and show it, with its status callbacks' signing secret, only now."""
    raw = form.get("name")
    name = raw.strip() if isinstance(raw, str) else ""
    picked = frozenset(v for v in form.getlist("scopes") if isinstance(v, str))
    problem = None
    if not name or len(name) > NAME_MAX or "\x00" in name:
        problem = f"A key's name has 1 to {NAME_MAX} characters."
    elif not picked:
        problem = "Choose at least one scope."
    elif not picked <= {s.value for s in Scope}:
        problem = "Choose scopes from the list."
    if problem is not None:
        return await _page(request, who, error=problem, name=name, chosen=picked, status=400)
    scopes = [s for s in Scope if s.value in picked]
    created = await context(request).create_key(name, scopes, datetime.now(UTC))
    return await _page(request, who, created=created)


@action(Role.ADMIN)
async def revoke(request: Request, who: Visitor, form: FormData) -> Response:
    """Revoke a key: every server refuses it from its next request."""
    key_id = row_id(request.path_params["key_id"])
    if key_id is None:
        return refused(request, "No such key.", status=404)
    try:
        await apikeys.revoke_api_key(context(request).store, key_id, datetime.now(UTC))
    except NotFound:
        return refused(request, "No such key.", status=404)
    return RedirectResponse(f"{PREFIX}/keys?revoked=1", status_code=303)
