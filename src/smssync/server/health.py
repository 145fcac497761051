"""Probes for an orchestrator or a load balancer: ``/healthz`` and ``/readyz``.

``/healthz`` says the process answers, and touches nothing else: a restart is the cure for
its failure. ``/readyz`` says the process can serve phones now: the database answers a read
and is migrated to the revision this code ships (a server started on an older or a newer
database must not take traffic). Both answer without authentication and reveal nothing but
that; both are cheap (one indexed read at most).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from smssync.errors import SmssyncError
from smssync.server.context import ServerContext
from smssync.store import migrate


async def healthz(request: Request) -> JSONResponse:
    """The process answers."""
    return JSONResponse({"ok": True})


async def readyz(request: Request) -> JSONResponse:
    """The store answers and is at the code's migration head; 503 otherwise."""
    ctx: ServerContext = request.app.state.ctx
    try:
        revision = await ctx.store.read(migrate.current)
    except SmssyncError:
        return JSONResponse({"ok": False, "reason": "database unavailable"}, status_code=503)
    if revision != migrate.head():
        reason = f"database at migration {revision}, this server needs {migrate.head()}"
        return JSONResponse({"ok": False, "reason": reason}, status_code=503)
    return JSONResponse({"ok": True, "migration": revision})
