"""Routing rules and webhook endpoints as incoming SMS meet them; the routed inbound write."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import Connection, func, select, update

from smssync.errors import NotFound
from smssync.records import (
    HookConfig,
    Inbound,
    InboundPlan,
    NewInbound,
    NewRule,
    Rule,
    RuleKind,
    WebhookEndpoint,
)
from smssync.serialize import inbound_json
from smssync.store import inbox, queue, webhooks
from smssync.store.engine import changes, reads, writes
from smssync.store.rows import RowMap, from_us, to_us
from smssync.store.schema import inbound, rules, webhook_endpoints


def _rule_of(row: RowMap) -> Rule:
    return Rule(
        id=row["id"],
        position=row["position"],
        kind=RuleKind(row["kind"]),
        pattern=row["pattern"],
        auto_reply=row["auto_reply"],
        forward_endpoint_id=row["forward_endpoint_id"],
        tag=row["tag"],
    )


@changes("hooks")
def add_rule(conn: Connection, rule: NewRule, now: datetime) -> Rule:
    """Insert a rule at the end, or at ``position`` shifting later ones down."""
    if rule.forward_endpoint_id is not None:
        found = conn.execute(
            select(webhook_endpoints.c.id).where(webhook_endpoints.c.id == rule.forward_endpoint_id)
        ).first()
        if found is None:
            raise NotFound(f"no webhook {rule.forward_endpoint_id}")
    last = conn.execute(select(func.coalesce(func.max(rules.c.position), 0))).scalar_one()
    position = int(last) + 1 if rule.position is None else rule.position
    if rule.position is not None:
        conn.execute(
            update(rules).where(rules.c.position >= position).values(position=rules.c.position + 1)
        )
    row = conn.execute(
        rules.insert()
        .values(
            position=position,
            kind=rule.kind.value,
            pattern=rule.pattern,
            auto_reply=rule.auto_reply,
            forward_endpoint_id=rule.forward_endpoint_id,
            tag=rule.tag,
            created_at=to_us(now),
        )
        .returning(*rules.c)
    ).one()
    return _rule_of(row._mapping)


@changes("hooks")
def remove_rule(conn: Connection, rule_id: int) -> None:
    """Delete a rule; NotFound."""
    gone = conn.execute(rules.delete().where(rules.c.id == rule_id).returning(rules.c.id)).first()
    if gone is None:
        raise NotFound(f"no rule {rule_id}")


@reads
def hook_config(conn: Connection) -> HookConfig:
    """Read rules in order and endpoints together."""
    found = conn.execute(select(rules).order_by(rules.c.position, rules.c.id))
    return HookConfig(
        rules=tuple(_rule_of(row._mapping) for row in found),
        endpoints=tuple(
            WebhookEndpoint(
                id=row["id"],
                url=row["url"],
                events=frozenset(json.loads(row["events"])),
                secret=row["secret"],
                created_at=from_us(row["created_at"]),
            )
            for row in webhooks.endpoints(conn)
        ),
    )


@writes
def record_inbound_routed(
    conn: Connection, message: NewInbound, plan: InboundPlan
) -> tuple[bool, int]:
    """Store an inbound SMS unless (device, dedupe_key) exists and, when new, tag it, queue
    its replies and write its events, in one transaction: (created, id) (S-10)."""
    created, inbound_id = inbox.record_one(conn, message)
    if not created:
        return created, inbound_id
    tags = [plan.tag] if plan.tag else []
    if tags:
        conn.execute(
            update(inbound).where(inbound.c.id == inbound_id).values(tags=json.dumps(tags))
        )
    if plan.replies:
        queue.enqueue.run(conn, list(plan.replies))
    stored = Inbound(
        id=inbound_id,
        device=plan.device,
        from_addr=message.from_addr,
        from_raw=message.from_raw,
        to_addr=message.to_addr,
        content=message.content,
        message_id=message.message_id,
        sent_timestamp_raw=message.sent_timestamp_raw,
        sent_at=message.sent_at,
        received_at=message.received_at,
        flags=message.flags,
        status=inbox.RECEIVED,
        tags=tuple(tags),
    )
    data = inbound_json(stored) | {"rule_id": plan.rule_id}
    webhooks.emit_received(conn, plan.endpoint_ids, data, to_us(message.received_at))
    return created, inbound_id
