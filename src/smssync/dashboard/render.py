"""Pages rendered from the package's Jinja2 templates, every value escaped."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.templating import Jinja2Templates

from smssync.gsm.segments import count_segments
from smssync.serialize import iso

#: Where server/app.py mounts the dashboard; links and redirects start with it.
PREFIX = "/dashboard"
#: What a page may load: only from smssync itself (the dashboard works offline).
CSP = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'"


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "never"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _iso(moment: datetime | None) -> str:
    return iso(moment) if moment is not None else ""


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("smssync.dashboard", "templates"),
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.filters["iso"] = _iso
    env.globals["prefix"] = PREFIX
    env.globals["segments"] = count_segments
    return env


templates = Jinja2Templates(env=_environment())


def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    """Render template ``name`` with ``context`` (and the request) as an HTML page."""
    response = templates.TemplateResponse(request, name, context, status_code=status)
    # Pages show SMS and secrets: no cache keeps them after sign-out.
    response.headers["cache-control"] = "no-store"
    # Every asset is our own; the QR code is a data: image; no one frames the pages.
    response.headers["content-security-policy"] = CSP
    response.headers["x-frame-options"] = "DENY"
    response.headers["referrer-policy"] = "same-origin"
    return response


def fragment(name: str, **context: Any) -> str:
    """Render a template that is part of a page (a live update's HTML)."""
    return templates.get_template(name).render(**context)
