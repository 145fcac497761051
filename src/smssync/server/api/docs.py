"""A self-contained docs page: Swagger UI and ReDoc need CDN assets a LAN server may lack."""

from __future__ import annotations

import html
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

router = APIRouter()

STYLE = (
    "body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
    "code{background:#f3f3f3;padding:0 .2em}h2{border-top:1px solid #ddd;padding-top:1rem}"
    ".m{display:inline-block;min-width:4.5em;font-weight:bold}"
)


def render(spec: dict[str, Any]) -> str:
    """Return the OpenAPI document as one HTML page: each operation, its parameters."""
    info = spec.get("info", {})
    parts = [
        f"<!doctype html><meta charset=utf-8><title>{html.escape(info.get('title', ''))}</title>",
        f"<style>{STYLE}</style><h1>{html.escape(info.get('title', ''))} "
        f"{html.escape(info.get('version', ''))}</h1>",
        f"<p>{html.escape(info.get('description', ''))}</p>",
        '<p>Machine-readable: <a href="openapi.json">openapi.json</a>. '
        'Errors always have the shape <code>{"ok": false, "error": …, "errors": […], '
        '"status": N}</code>.</p>',
    ]
    for path, operations in spec.get("paths", {}).items():
        for method, op in operations.items():
            parts.append(
                f"<h2><span class=m>{method.upper()}</span><code>{html.escape(path)}</code></h2>"
                f"<p><b>{html.escape(op.get('summary', ''))}</b>. "
                f"{html.escape(op.get('description', ''))}</p>"
            )
            params = op.get("parameters", [])
            if params:
                parts.append("<ul>")
                for p in params:
                    parts.append(
                        f"<li><code>{html.escape(p['name'])}</code> ({p['in']}) "
                        f"{html.escape(p.get('description', '') or '')}</li>"
                    )
                parts.append("</ul>")
            body = op.get("requestBody", {}).get("content", {}).get("application/json")
            if body:
                ref = body.get("schema", {}).get("$ref", "").rsplit("/", 1)[-1]
                parts.append(f"<p>JSON body: <code>{html.escape(ref)}</code></p>")
    return "".join(parts)


@router.get("/docs", include_in_schema=False)
async def docs_page(request: Request) -> HTMLResponse:
    """Serve the API reference page."""
    return HTMLResponse(render(request.app.openapi()))
