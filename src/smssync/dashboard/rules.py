"""Rules: how incoming SMS are routed (auto-reply, forward to a webhook, tag), the first
match acting; listed in evaluation order, added and removed by an admin.

A form is checked as the API checks ``POST /rules`` (``RuleRequest``) and the CLI its
options, and a refusal comes back in the form with what was typed. The rules are not paged:
every server process holds all of them in memory to route each SMS (``server.hooks``), so a
list too long for one page would already be too long for that.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from smssync.dashboard.guard import Visitor, action, context, page, refused, row_id
from smssync.dashboard.render import PREFIX, render
from smssync.errors import NotFound
from smssync.records import NewRule, Role, RuleKind
from smssync.store import rules

#: The API's bounds (``RuleRequest``).
PATTERN_MAX = 200
REPLY_MAX = 1000
TAG_MAX = 100
POSITION_MAX = 100_000
FIELDS = ("kind", "pattern", "auto_reply", "forward", "tag", "position")


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _bounded(value: str, most: int, what: str) -> str | None:
    if len(value) > most:
        return f"{what} has at most {most} characters."
    if "\x00" in value:
        return f"{what} cannot hold a NUL character."
    return None


def parse_rule(form: FormData) -> tuple[NewRule | None, dict[str, str]]:
    """Read a rule from the form, or say what is wrong with each field."""
    errors: dict[str, str] = {}
    values = {name: _text(form, name) for name in FIELDS}
    kind = next((k for k in RuleKind if k.value == values["kind"]), None)
    if kind is None:
        errors["kind"] = "Choose keyword, regex or sender."
    # A keyword or a number typed with a space around it means the same without.
    pattern = values["pattern"] if kind is RuleKind.REGEX else values["pattern"].strip()
    problem = _bounded(pattern, PATTERN_MAX, "The pattern") if pattern else "Give a pattern."
    if problem is None and kind is RuleKind.REGEX:
        try:
            re.compile(pattern)
        except re.error as exc:
            problem = f"Not a regular expression: {exc}."
    if problem:
        errors["pattern"] = problem
    reply = values["auto_reply"].strip()
    if reply and (problem := _bounded(reply, REPLY_MAX, "An auto-reply")):
        errors["auto_reply"] = problem
    tag = values["tag"].strip()
    if tag and (problem := _bounded(tag, TAG_MAX, "A tag")):
        errors["tag"] = problem
    forward = None
    if values["forward"]:
        forward = row_id(values["forward"])
        if forward is None:
            errors["forward"] = "Choose a webhook from the list."
    position = None
    if values["position"].strip():
        raw = values["position"].strip()
        position = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 6 else 0
        if not 1 <= position <= POSITION_MAX:
            errors["position"] = f"A position is a whole number from 1 to {POSITION_MAX}."
    if not (reply or forward or tag) and "auto_reply" not in errors:
        errors["auto_reply"] = "Give an action: an auto-reply, a webhook to forward to or a tag."
    if errors or kind is None:
        return None, errors
    return NewRule(kind, pattern, reply or None, forward, tag or None, position), {}


async def _page(
    request: Request,
    who: Visitor,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    config = await rules.hook_config(context(request).store)
    return render(
        request,
        "rules.html",
        status=status,
        visitor=who,
        rules=config.rules,
        endpoints={e.id: e for e in config.endpoints},
        kinds=[k.value for k in RuleKind],
        errors=errors or {},
        values=values or {},
        removed=request.query_params.get("removed") == "1",
    )


@page(Role.ADMIN)
async def rules_page(request: Request, who: Visitor) -> Response:
    """List the rules in evaluation order, with the form that adds one."""
    return await _page(request, who)


@action(Role.ADMIN)
async def add(request: Request, who: Visitor, form: FormData) -> Response:
    """Add a rule; every server process routes by it from its next SMS."""
    new, errors = parse_rule(form)
    values = {name: _text(form, name) for name in FIELDS}
    if new is None:
        return await _page(request, who, errors, values, status=400)
    try:
        await rules.add_rule(context(request).store, new, datetime.now(UTC))
    except NotFound:
        # Removed since the page was shown.
        errors = {"forward": "That webhook no longer exists."}
        return await _page(request, who, errors, values, status=409)
    return RedirectResponse(f"{PREFIX}/rules", status_code=303)


@action(Role.ADMIN)
async def remove(request: Request, who: Visitor, form: FormData) -> Response:
    """Remove a rule."""
    rule_id = row_id(request.path_params["rule_id"])
    if rule_id is None:
        return refused(request, "No such rule.", status=404)
    try:
        await rules.remove_rule(context(request).store, rule_id)
    except NotFound:
        return refused(request, "No such rule.", status=404)
    return RedirectResponse(f"{PREFIX}/rules?removed=1", status_code=303)
