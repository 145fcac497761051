"""Small builders shared by the store tests."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from smssync.errors import StoreUnavailable
from smssync.records import Credentials, Device, DeviceSettings, NewInbound, NewOutbound
from smssync.store import devices, messages, queue
from smssync.store.engine import Database

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    """Return T0 plus some seconds."""
    return T0 + timedelta(seconds=seconds)


async def device(store: Database, name: str, *, seen: float | None = 0, **settings: Any) -> Device:
    """Add a device with random credentials, seen at ``at(seen)`` unless None."""
    creds = Credentials(secrets.token_bytes(16), None, None, None)
    added = await devices.add_device(store, name, creds, DeviceSettings(**settings), T0)
    if seen is not None:
        await devices.LastSeen(store).touch(added.id, at(seen), "test")
    return added


def outgoing(
    to_addr: str = "+254700000001",
    content: str = "hello",
    *,
    device: str | None = None,
    segments: int = 1,
    created: float = 0,
    expires: float | None = None,
) -> NewOutbound:
    """Build one outgoing SMS."""
    return NewOutbound(
        message_id=str(uuid.uuid4()),
        to_addr=to_addr,
        content=content,
        segments=segments,
        device=device,
        created_at=at(created),
        expires_at=None if expires is None else at(expires),
    )


async def queue_some(store: Database, count: int, **kwargs: Any) -> list[str]:
    """Enqueue ``count`` messages and return their ids in order."""
    batch = [outgoing(content=f"m{i}", **kwargs) for i in range(count)]
    await queue.enqueue(store, batch)
    return [m.message_id for m in batch]


def incoming(device_id: int, key: str = "k1", content: str = "hi") -> NewInbound:
    """Build one incoming SMS."""
    return NewInbound(
        device_id=device_id,
        dedupe_key=key,
        message_id=key,
        from_raw="0700 000001",
        from_addr="+254700000001",
        to_addr="+254700000002",
        content=content,
        sent_timestamp_raw="1893499200000",
        sent_at=T0,
        device_label="phone",
        received_at=at(1),
        flags=("a", "b"),
    )


async def status_of(store: Database, message_id: str) -> str:
    """Return the current status of one outgoing SMS."""
    [message] = await messages.list_outbound(store, message_id=message_id)
    return message.status.value


class FailingStore(Database):
    """A store whose writes of the given jobs fail as a full disk or a lost database would;
    everything else reaches the real store underneath."""

    def __init__(self, inner: Database, *failing: Any) -> None:
        super().__init__()
        self.inner, self.dialect, self.key = inner, inner.dialect, inner.key
        self.failing = failing

    async def open(self) -> None:
        await self.inner.open()

    async def close(self) -> None:
        await self.inner.close()

    async def fresh(self) -> None:
        pass  # one process: its own verbs already tell its caches

    async def follow_changes(self) -> None:
        pass

    async def read(self, job: Any, *args: Any, **kwargs: Any) -> Any:
        return await self.inner.read(job, *args, **kwargs)

    async def write(self, job: Any, *args: Any, **kwargs: Any) -> Any:
        if job in self.failing:
            raise StoreUnavailable()
        return await self.inner.write(job, *args, **kwargs)
