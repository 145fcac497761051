"""Store verbs of the application API: keys, idempotent submission, pages, rules."""

from __future__ import annotations

import json
from datetime import UTC

from sqlalchemy import Connection, func, select, update

from smssync.errors import NotFound
from smssync.store import dialects, inbox, outbox, queue, results
from smssync.store.base import NewInbound, NewOutbound, Outbound
from smssync.store.integration import (
    ApiKey,
    HookConfig,
    InboundPlan,
    NewRule,
    OutboundQuery,
    Rule,
    RuleKind,
    Scope,
    WebhookEndpoint,
)
from smssync.store.rows import RowMap, from_us, maybe_dt, to_us
from smssync.store.schema import (
    api_keys,
    devices,
    idempotency,
    inbound,
    outbound,
    rules,
    webhook_endpoints,
)


def _key_of(row: RowMap) -> ApiKey:
    return ApiKey(
        id=row["id"],
        name=row["name"],
        prefix=row["prefix"],
        scopes=frozenset(Scope(s) for s in row["scopes"].split(",") if s),
        signing_secret=row["signing_secret"],
        created_at=from_us(row["created_at"]),
        revoked_at=maybe_dt(row["revoked_at"]),
    )


def add_api_key(
    conn: Connection,
    name: str,
    key_hash: bytes,
    prefix: str,
    scopes: list[str],
    secret: str,
    now_us: int,
) -> ApiKey:
    """Insert a key by its hash."""
    row = conn.execute(
        api_keys.insert()
        .values(
            name=name,
            prefix=prefix,
            key_hash=key_hash,
            scopes=",".join(sorted(set(scopes))),
            signing_secret=secret,
            created_at=now_us,
        )
        .returning(*api_keys.c)
    ).one()
    return _key_of(row._mapping)


def list_api_keys(conn: Connection, key_hash: bytes | None) -> list[ApiKey]:
    """Return every key, or the one with this hash."""
    query = select(api_keys).order_by(api_keys.c.id)
    if key_hash is not None:
        query = query.where(api_keys.c.key_hash == key_hash)
    return [_key_of(row._mapping) for row in conn.execute(query)]


def revoke_api_key(conn: Connection, key_id: int, now_us: int) -> ApiKey:
    """Revoke a key (idempotent); NotFound."""
    conn.execute(
        update(api_keys)
        .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=now_us)
    )
    row = conn.execute(select(api_keys).where(api_keys.c.id == key_id)).one_or_none()
    if row is None:
        raise NotFound(f"no API key {key_id}")
    return _key_of(row._mapping)


def submit(
    conn: Connection,
    api_key_id: int,
    idempotency_key: str | None,
    request_hash: str,
    messages: list[NewOutbound],
    status_code: int,
    response: str,
    now_us: int,
) -> tuple[bool, str, int, str]:
    """Claim the idempotency key, then queue; a used key returns its stored answer.

    Both in one transaction: a concurrent duplicate waits on the key's unique index until
    the first commits, then finds its row, so two requests never make two messages.
    """
    if idempotency_key is not None:
        statement = (
            dialects.insert(conn, idempotency)
            .on_conflict_do_nothing(index_elements=[idempotency.c.api_key_id, idempotency.c.key])
            .returning(idempotency.c.key)
        )
        values = {
            "api_key_id": api_key_id,
            "key": idempotency_key,
            "request_hash": request_hash,
            "status_code": status_code,
            "response": response,
            "created_at": now_us,
        }
        if conn.execute(statement, values).first() is None:
            stored = conn.execute(
                select(idempotency).where(
                    idempotency.c.api_key_id == api_key_id, idempotency.c.key == idempotency_key
                )
            ).one()
            return False, stored.request_hash, stored.status_code, stored.response
    queue.enqueue(conn, messages)
    return True, request_hash, status_code, response


def outbound_page(conn: Connection, query: OutboundQuery) -> list[Outbound]:
    """Return outgoing SMS after the cursor with their history, oldest first."""
    where = [outbound.c.id > query.after_id]
    if query.status is not None:
        where.append(outbound.c.status == query.status)
    if query.to_addr is not None:
        where.append(outbound.c.to_addr == query.to_addr)
    if query.since is not None:
        where.append(outbound.c.created_at >= to_us(query.since))
    if query.until is not None:
        where.append(outbound.c.created_at < to_us(query.until))
    if query.device is not None:
        device_id = conn.execute(
            select(devices.c.id).where(devices.c.name == query.device)
        ).scalar()
        if device_id is None:
            return []
        where.append(outbound.c.device_id == device_id)
    ids = list(
        conn.execute(
            select(outbound.c.id).where(*where).order_by(outbound.c.id).limit(query.limit)
        ).scalars()
    )
    return results.outbound_by_ids(conn, ids)


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


def add_rule(conn: Connection, rule: NewRule, now_us: int) -> Rule:
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
            created_at=now_us,
        )
        .returning(*rules.c)
    ).one()
    return _rule_of(row._mapping)


def remove_rule(conn: Connection, rule_id: int) -> None:
    """Delete a rule; NotFound."""
    gone = conn.execute(rules.delete().where(rules.c.id == rule_id).returning(rules.c.id)).first()
    if gone is None:
        raise NotFound(f"no rule {rule_id}")


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
            for row in outbox.endpoints(conn)
        ),
    )


def record_inbound_routed(
    conn: Connection, message: NewInbound, plan: InboundPlan
) -> tuple[bool, int]:
    """Store the SMS; when it is new, apply the plan in the same transaction."""
    created, inbound_id = inbox.record_inbound(conn, message)
    if not created:
        return created, inbound_id
    tags = [plan.tag] if plan.tag else []
    if tags:
        conn.execute(
            update(inbound).where(inbound.c.id == inbound_id).values(tags=json.dumps(tags))
        )
    if plan.replies:
        queue.enqueue(conn, list(plan.replies))
    now_us = to_us(message.received_at)
    data = {
        "id": inbound_id,
        "device": plan.device,
        "from": message.from_addr,
        "from_raw": message.from_raw,
        "to": message.to_addr,
        "body": message.content,
        "message_id": message.message_id,
        "sent_at": outbox.iso(to_us(message.sent_at.astimezone(UTC))),
        "received_at": outbox.iso(now_us),
        "tags": tags,
        "rule_id": plan.rule_id,
    }
    outbox.emit_received(conn, plan.endpoint_ids, data, now_us)
    return created, inbound_id
