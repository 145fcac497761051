"""Fleet scale: one phone's exchanges run the same SQL with 10 or 1,000 registered devices.

Statements are counted on the real engines (SQLAlchemy's ``before_cursor_execute``), through
the whole app in-process, so a verb that reads every device, or runs one query per device,
shows up as a count that grows with the fleet.
"""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, event
from starlette.applications import Starlette

from smssync.records import DeviceSettings, new_outbound
from smssync.server import app as app_module
from smssync.server.app import create_app
from smssync.server.credentials import issue
from smssync.settings import Settings
from smssync.store import devices, messages, queue, serverkey, wire
from smssync.store.engine import Database

JSON = {"content-type": "application/json; charset=UTF-8"}
FORM = {"content-type": "application/x-www-form-urlencoded"}


class Statements:
    """Count the statements every engine of the process executes while ``counting``."""

    def __init__(self) -> None:
        self.count = 0
        self.on = False
        #: Statements that read the devices table without a WHERE: a scan of the fleet.
        self.scans: Counter[str] = Counter()
        #: Writes other than the last-seen time of the polling device.
        self.writes: Counter[str] = Counter()

    def __call__(self, *args: Any) -> None:
        if self.on:
            self.count += 1
            text = " ".join(str(args[2]).split())
            if re.search(r"\bFROM devices\b", text) and " WHERE " not in text:
                self.scans[text[:200]] += 1
            if re.match(r"(UPDATE|INSERT|DELETE)\b", text) and "SET last_seen_at" not in text:
                self.writes[text[:200]] += 1

    @contextlib.contextmanager
    def counting(self) -> Iterator[Statements]:
        self.count, self.writes, self.on = 0, Counter(), True
        try:
            yield self
        finally:
            self.on = False


@pytest.fixture
def statements() -> Iterator[Statements]:
    counter = Statements()
    event.listen(Engine, "before_cursor_execute", counter)
    try:
        yield counter
    finally:
        event.remove(Engine, "before_cursor_execute", counter)


@contextlib.asynccontextmanager
async def idle(*args: object) -> AsyncIterator[None]:
    yield


@pytest.fixture
async def app(store: Database, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Starlette]:
    # No background work (webhooks, liveness): its statements would land in the counts.
    monkeypatch.setattr(app_module, "background", idle)
    built = create_app(Settings(), store)
    async with built.router.lifespan_context(built):
        yield built


async def register(store: Database, prefix: str, count: int) -> list[tuple[str, str]]:
    """Register ``count`` devices in bulk; return their Sync URL paths and secrets."""
    key = await serverkey.server_key(store)
    entries, phones = [], []
    for i in range(count):
        secret = f"{prefix}-secret-{i}"
        issued, hashed = issue(key, secret=secret)
        entries.append((f"{prefix}{i}", hashed, DeviceSettings()))
        phones.append((f"/smssync/d/{issued.token}", secret))
    assert await devices.add_devices(store, entries, datetime.now(UTC)) == count
    return phones


async def exchanges(
    app: Starlette, store: Database, statements: Statements, phone: tuple[str, str], name: str
) -> dict[str, int]:
    """Run one device's E1, API-side enqueue, E4, E5, E6 and E7; count each one's SQL."""
    path, secret = phone
    url = f"{path}?secret={secret}&"
    counts: dict[str, int] = {}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sms") as client:

        async def run(label: str, request: Any) -> httpx.Response:
            assert app.state.ctx.hooks is not None
            app.state.ctx.hooks.invalidate()  # the same cache state for every round
            with statements.counting():
                reply: httpx.Response = await request
            assert reply.status_code == 200, reply.text
            counts[label] = statements.count
            return reply

        # Nothing to take and nothing to report: a read, no write.
        reply = await run("empty E4", client.get(f"{url}task=send"))
        assert reply.json()["payload"]["messages"] == []
        assert statements.writes == Counter()
        reply = await run("empty E6", client.get(f"{url}task=result"))
        assert reply.json()["message_uuids"] == []
        assert statements.writes == Counter()
        body = f"secret={secret}&from=%2B254700000001&message=hi&message_id={uuid.uuid4()}"
        await run("E1", client.post(path, content=body.encode(), headers=FORM))
        message = new_outbound(
            f"+2547{uuid.uuid4().int % 10**8:08d}", "hi", None, datetime.now(UTC)
        )
        with statements.counting():
            await queue.enqueue(store, [message])
        counts["enqueue"] = statements.count
        reply = await run("E4", client.get(f"{url}task=send"))
        # The phone is told the wire id, not the public uuid (docs/security.md).
        wire_id = (await wire.wire_ids(store, [message.message_id]))[message.message_id]
        assert [m["uuid"] for m in reply.json()["payload"]["messages"]] == [wire_id]
        sent = json.dumps({"queued_messages": [wire_id]}).encode()
        reply = await run("E5", client.post(f"{path}?task=sent", content=sent, headers=JSON))
        assert reply.json()["message_uuids"] == [wire_id]
        reply = await run("E6", client.get(f"{url}task=result"))
        assert reply.json()["message_uuids"] == [wire_id]
        result = {"message_result": [{"uuid": wire_id, "sent_result_code": -1}]}
        await run(
            "E7",
            client.post(f"{url}task=result", content=json.dumps(result), headers=JSON),
        )
    [stored] = await messages.list_outbound(store, message_id=message.message_id)
    assert (stored.status.value, stored.device) == ("sent", name)
    return counts


async def test_a_phone_costs_the_same_sql_with_10_or_1000_devices(
    app: Starlette, store: Database, statements: Statements
) -> None:
    # Each round polls with a device not seen before, so every cache is as cold as the last.
    first, second, third = await register(store, "live", 3)
    await register(store, "fleet", 7)
    await exchanges(app, store, statements, first, "live0")  # warm-up: imports, prepared plans
    small = await exchanges(app, store, statements, second, "live1")
    # 990 more, never seen: to the old claim each was a silent device to take over from.
    await register(store, "more", 990)
    large = await exchanges(app, store, statements, third, "live2")
    assert large == small
    assert all(count > 0 for count in small.values())
    assert statements.scans == Counter()
