"""Alerts: list them (the ``read`` scope) and acknowledge one (``admin``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from smssync.records import ApiKey, Scope
from smssync.serialize import alert_json
from smssync.server.api.deps import context, require, responses
from smssync.server.api.models import AlertOut, AlertPage, AlertReply
from smssync.server.context import ServerContext
from smssync.store import alerts

router = APIRouter(tags=["alerts"])

Ctx = Annotated[ServerContext, Depends(context)]
Reader = Annotated[ApiKey, Depends(require(Scope.READ))]
Admin = Annotated[ApiKey, Depends(require(Scope.ADMIN))]
Id = Annotated[int, Path(ge=1, le=2**62, description="The alert's id.")]
Cursor = Annotated[
    str | None, Query(max_length=18, pattern=r"^[0-9]+$", description="next_cursor of a page")
]
Limit = Annotated[int, Query(ge=1, le=1000)]


@router.get("/alerts", response_model=AlertPage, summary="List alerts")
async def list_alerts(
    ctx: Ctx,
    _: Reader,
    include_all: Annotated[bool, Query(alias="all", description="Resolved alerts too.")] = False,
    cursor: Cursor = None,
    limit: Limit = 100,
) -> AlertPage:
    """Open alerts (acknowledged or not), newest first; with ``all``, resolved ones too."""
    found = await alerts.list_alerts(
        ctx.store, include_resolved=include_all, limit=limit, before_id=int(cursor or 0)
    )
    return AlertPage(
        alerts=[AlertOut.model_validate(alert_json(a)) for a in found],
        next_cursor=str(found[-1].id) if len(found) == limit else None,
    )


@router.post(
    "/alerts/{alert_id}/ack",
    response_model=AlertReply,
    summary="Acknowledge an alert",
    responses=responses(404, 413),
)
async def acknowledge(alert_id: Id, ctx: Ctx, key: Admin) -> AlertReply:
    """Say a person saw it; it stays listed until its condition clears. Acknowledging
    again keeps the first acknowledgement."""
    alert = await alerts.acknowledge(ctx.store, alert_id, f"api:{key.name}", datetime.now(UTC))
    return AlertReply(alert=AlertOut.model_validate(alert_json(alert)))
