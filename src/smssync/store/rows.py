"""Conversions between stored rows and the records of ``base``: times, JSON, devices."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from sqlalchemy import Connection, RowMapping

from smssync.records import (
    AckMode,
    Device,
    DeviceSettings,
    HistoryEntry,
    Inbound,
    Outbound,
    OutboundStatus,
    is_online,
)
from smssync.store.schema import outbound_history

T = TypeVar("T")

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

#: Row mappings as SQLAlchemy returns them (``Row._mapping``).
RowMap = RowMapping


def to_us(moment: datetime) -> int:
    """Return an aware datetime as integer microseconds since the epoch."""
    if moment.tzinfo is None:
        raise ValueError("store times must be timezone-aware")
    return (moment - EPOCH) // timedelta(microseconds=1)


def delta_us(delta: timedelta) -> int:
    """Return a duration as whole microseconds."""
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(value: int) -> datetime:
    """Return stored microseconds as an aware UTC datetime."""
    return EPOCH + timedelta(microseconds=value)


def maybe_us(moment: datetime | None) -> int | None:
    """Return ``to_us`` of a datetime, or None."""
    return None if moment is None else to_us(moment)


def maybe_dt(value: int | None) -> datetime | None:
    """Return ``from_us`` of a stored value, or None."""
    return None if value is None else from_us(value)


def initial_mode(ack_mode: AckMode) -> AckMode:
    """Return the mode a device starts in: ``auto`` begins as handoff (S-23)."""
    return AckMode.HANDOFF if ack_mode is AckMode.AUTO else ack_mode


def settings_json(settings: DeviceSettings) -> str:
    """Serialise device settings for the ``settings`` column."""
    return json.dumps(settings.to_json(), sort_keys=True)


def settings_of(row: RowMap) -> DeviceSettings:
    """Parse the ``settings`` column of a device row."""
    return DeviceSettings.from_json(json.loads(row["settings"]))


def device_of(row: RowMap) -> Device:
    """Build a Device from a ``devices`` row."""
    return Device(
        id=row["id"],
        name=row["name"],
        settings=settings_of(row),
        has_secret=row["secret_hash"] is not None,
        basic_user=row["basic_user"],
        effective_mode=AckMode(row["effective_mode"]),
        created_at=from_us(row["created_at"]),
        last_seen_at=maybe_dt(row["last_seen_at"]),
        last_user_agent=row["last_user_agent"],
        disabled_at=maybe_dt(row["disabled_at"]),
    )


def inbound_of(row: RowMap) -> Inbound:
    """Build an Inbound from an ``inbound`` row joined with its device's name."""
    return Inbound(
        id=row["id"],
        # A removed device leaves its SMS behind with no name.
        device=row["device_name"] or "",
        from_addr=row["from_addr"],
        from_raw=row["from_raw"],
        to_addr=row["to_addr"],
        content=row["content"],
        message_id=row["message_id"],
        sent_timestamp_raw=row["sent_timestamp_raw"],
        sent_at=from_us(row["sent_at"]),
        received_at=from_us(row["received_at"]),
        flags=tuple(json.loads(row["flags"])),
        status=row["status"],
        tags=tuple(json.loads(row.get("tags") or "[]")),
    )


def history_of(row: RowMap) -> HistoryEntry:
    """Build a HistoryEntry from an ``outbound_history`` row."""
    return HistoryEntry(
        at=from_us(row["at"]), status=OutboundStatus(row["status"]), detail=row["detail"]
    )


def outbound_of(row: RowMap, history: list[HistoryEntry]) -> Outbound:
    """Build an Outbound from an ``outbound`` row joined with its device's name."""
    return Outbound(
        message_id=row["uuid"],
        device=row["device_name"],
        to_addr=row["to_addr"],
        content=row["content"],
        segments=row["segments"],
        status=OutboundStatus(row["status"]),
        created_at=from_us(row["created_at"]),
        updated_at=from_us(row["updated_at"]),
        reason=row["reason"],
        history=tuple(history),
        priority=-int(row.get("claim_rank") or 0),
        send_at=maybe_dt(row.get("send_at")),
        expires_at=maybe_dt(row.get("expires_at")),
        callback_url=row.get("callback_url"),
        seq=row["id"],
        sent_at=maybe_dt(row.get("sent_at")),
        delivered_at=maybe_dt(row.get("delivered_at")),
        sent_timestamp_raw=row.get("sent_timestamp_raw"),
        delivered_timestamp_raw=row.get("delivered_timestamp_raw"),
    )


def is_silent(row: RowMap, now_us: int) -> bool:
    """Tell whether a device row has been silent past its liveness window (S-9)."""
    return not is_online(
        maybe_dt(row["last_seen_at"]), settings_of(row).liveness_s, from_us(now_us)
    )


#: Keeps IN lists well under SQLite's and psycopg's bound-parameter limits.
CHUNK = 1000


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    """Yield slices of at most ``size`` items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def add_history(
    conn: Connection, ids: Iterable[int], at_us: int, status: OutboundStatus, detail: str | None
) -> None:
    """Record one status change for each message id."""
    rows = [{"outbound_id": i, "at": at_us, "status": status.value, "detail": detail} for i in ids]
    if rows:
        conn.execute(outbound_history.insert(), rows)
