"""API keys and idempotent submission: a retried POST never queues a second copy."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, select, update

from smssync.errors import NotFound
from smssync.records import (
    ApiKey,
    NewOutbound,
    Scope,
)
from smssync.store import dialects, queue
from smssync.store.engine import changes, reads, writes
from smssync.store.rows import RowMap, from_us, maybe_dt, to_us
from smssync.store.schema import (
    api_keys,
    idempotency,
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


@writes
def add_api_key(
    conn: Connection,
    name: str,
    key_hash: bytes,
    prefix: str,
    scopes: list[str],
    secret: str,
    now: datetime,
) -> ApiKey:
    """Store a new API key by its keyed hash."""
    row = conn.execute(
        api_keys.insert()
        .values(
            name=name,
            prefix=prefix,
            key_hash=key_hash,
            scopes=",".join(sorted(set(scopes))),
            signing_secret=secret,
            created_at=to_us(now),
        )
        .returning(*api_keys.c)
    ).one()
    return _key_of(row._mapping)


@reads
def list_api_keys(
    conn: Connection, key_hash: bytes | None = None, after: int = 0, limit: int | None = None
) -> list[ApiKey]:
    """Return API keys by id, revoked ones too: every one, those after id ``after`` (a
    page), or the one with this hash."""
    query = select(api_keys).where(api_keys.c.id > after).order_by(api_keys.c.id).limit(limit)
    if key_hash is not None:
        query = query.where(api_keys.c.key_hash == key_hash)
    return [_key_of(row._mapping) for row in conn.execute(query)]


@changes("apikeys")
def revoke_api_key(conn: Connection, key_id: int, now: datetime) -> ApiKey:
    """Revoke a key (idempotent); NotFound."""
    conn.execute(
        update(api_keys)
        .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=to_us(now))
    )
    row = conn.execute(select(api_keys).where(api_keys.c.id == key_id)).one_or_none()
    if row is None:
        raise NotFound(f"no API key {key_id}")
    return _key_of(row._mapping)


@writes
def submit(
    conn: Connection,
    api_key_id: int,
    idempotency_key: str | None,
    request_hash: str,
    messages: list[NewOutbound],
    status_code: int,
    response: str,
    now: datetime,
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
            "created_at": to_us(now),
        }
        if conn.execute(statement, values).first() is None:
            stored = conn.execute(
                select(idempotency).where(
                    idempotency.c.api_key_id == api_key_id, idempotency.c.key == idempotency_key
                )
            ).one()
            return False, stored.request_hash, stored.status_code, stored.response
    queue.enqueue.run(conn, messages)
    return True, request_hash, status_code, response
