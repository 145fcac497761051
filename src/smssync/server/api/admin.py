"""Webhook endpoints, dead letters and rules: the ``admin`` scope."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path

from smssync.errors import BadRequest
from smssync.records import (
    ApiKey,
    DeliveryState,
    Event,
    NewRule,
    Rule,
    RuleKind,
    Scope,
    WebhookEndpoint,
)
from smssync.serialize import delivery_json
from smssync.server.api.deps import context, require, responses
from smssync.server.api.models import (
    DeliveryList,
    DeliveryOut,
    Done,
    Redriven,
    RedriveRequest,
    RuleCreated,
    RuleList,
    RuleOut,
    RuleRequest,
    WebhookCreated,
    WebhookList,
    WebhookOut,
    WebhookRequest,
)
from smssync.server.apikeys import generate_signing_secret
from smssync.server.context import ServerContext
from smssync.store import rules, webhooks

router = APIRouter(tags=["admin"])

Ctx = Annotated[ServerContext, Depends(context)]
Admin = Annotated[ApiKey, Depends(require(Scope.ADMIN))]
Id = Annotated[int, Path(ge=1, le=2**31 - 1)]


def webhook_out(endpoint: WebhookEndpoint) -> WebhookOut:
    """Describe an endpoint without its secret."""
    return WebhookOut(
        id=endpoint.id,
        url=endpoint.url,
        events=sorted(endpoint.events),
        created_at=endpoint.created_at,
    )


def rule_out(rule: Rule) -> RuleOut:
    """Describe a rule."""
    return RuleOut(
        id=rule.id,
        position=rule.position,
        kind=rule.kind,
        pattern=rule.pattern,
        auto_reply=rule.auto_reply,
        forward_webhook_id=rule.forward_endpoint_id,
        tag=rule.tag,
    )


@router.post(
    "/webhooks",
    status_code=201,
    response_model=WebhookCreated,
    summary="Add a webhook",
    responses=responses(413),
)
async def add_webhook(request: WebhookRequest, ctx: Ctx, _: Admin) -> WebhookCreated:
    """Register a receiver; its signing secret is shown only in this answer."""
    refused = ctx.settings.egress.check_url(request.url)
    if refused is not None:
        raise BadRequest(refused, [{"field": "url", "message": refused}])
    events = [e.value for e in (request.events or list(Event))]
    secret = generate_signing_secret()
    endpoint_id = await webhooks.add_webhook(
        ctx.store, request.url, events, secret, datetime.now(UTC)
    )
    config = await rules.hook_config(ctx.store)
    endpoint = next(e for e in config.endpoints if e.id == endpoint_id)
    return WebhookCreated(webhook=webhook_out(endpoint), secret=secret)


@router.get("/webhooks", response_model=WebhookList, summary="List webhooks")
async def list_webhooks(ctx: Ctx, _: Admin) -> WebhookList:
    """Every receiver (without secrets)."""
    config = await rules.hook_config(ctx.store)
    return WebhookList(webhooks=[webhook_out(e) for e in config.endpoints])


@router.delete(
    "/webhooks/{webhook_id}",
    response_model=Done,
    summary="Remove a webhook",
    responses=responses(404),
)
async def remove_webhook(webhook_id: Id, ctx: Ctx, _: Admin) -> Done:
    """Delete a receiver and its undelivered events."""
    await webhooks.remove_webhook(ctx.store, webhook_id)
    return Done()


@router.get("/webhooks/dead-letters", response_model=DeliveryList, summary="List dead letters")
async def dead_letters(ctx: Ctx, _: Admin) -> DeliveryList:
    """Deliveries whose retries ran out, oldest first."""
    found = await webhooks.deliveries(ctx.store, DeliveryState.DEAD.value, limit=1000)
    return DeliveryList(deliveries=[DeliveryOut.model_validate(delivery_json(d)) for d in found])


@router.post(
    "/webhooks/dead-letters/redrive",
    response_model=Redriven,
    summary="Send dead letters again",
    responses=responses(413),
)
async def redrive(request: RedriveRequest, ctx: Ctx, _: Admin) -> Redriven:
    """Put the given dead letters (or all) back in the queue with a fresh retry window.

    400 unless exactly one of ``ids`` and ``"all": true`` is given.
    """
    if request.all == (request.ids is not None):
        raise BadRequest("give either ids or all: true", [{"field": "ids", "message": "xor"}])
    count = await webhooks.redrive(
        ctx.store, None if request.all else request.ids, datetime.now(UTC)
    )
    if count and ctx.hooks is not None:
        ctx.hooks.wake.set()
    return Redriven(redriven=count)


@router.post(
    "/rules",
    status_code=201,
    response_model=RuleCreated,
    summary="Add a rule",
    responses=responses(404, 413),
)
async def add_rule(request: RuleRequest, ctx: Ctx, _: Admin) -> RuleCreated:
    """Add a rule on incoming SMS; rules are tried in position order, the first match acts.

    400 without an action (``auto_reply``, ``forward_webhook_id`` or ``tag``) or with a
    ``regex`` pattern that does not compile; 404 for an unknown ``forward_webhook_id``.
    """
    if not (request.auto_reply or request.forward_webhook_id or request.tag):
        raise BadRequest(
            "a rule needs an action",
            [{"field": "auto_reply", "message": "give auto_reply, forward_webhook_id or tag"}],
        )
    if request.kind is RuleKind.REGEX:
        try:
            re.compile(request.pattern)
        except re.error as exc:
            raise BadRequest("invalid regex", [{"field": "pattern", "message": str(exc)}]) from None
    rule = await rules.add_rule(
        ctx.store,
        NewRule(
            kind=request.kind,
            pattern=request.pattern,
            auto_reply=request.auto_reply,
            forward_endpoint_id=request.forward_webhook_id,
            tag=request.tag,
            position=request.position,
        ),
        datetime.now(UTC),
    )
    return RuleCreated(rule=rule_out(rule))


@router.get("/rules", response_model=RuleList, summary="List rules")
async def list_rules(ctx: Ctx, _: Admin) -> RuleList:
    """Every rule in evaluation order."""
    config = await rules.hook_config(ctx.store)
    return RuleList(rules=[rule_out(r) for r in config.rules])


@router.delete(
    "/rules/{rule_id}", response_model=Done, summary="Remove a rule", responses=responses(404)
)
async def remove_rule(rule_id: Id, ctx: Ctx, _: Admin) -> Done:
    """Delete a rule."""
    await rules.remove_rule(ctx.store, rule_id)
    return Done()
