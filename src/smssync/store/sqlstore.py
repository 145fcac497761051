"""The Store verbs once for both engines; a backend only says how a transaction runs."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select

from smssync.messages import OutboundStatus, SendOutcome
from smssync.store import (
    apistore,
    devices,
    inbox,
    outbox,
    queue,
    results,
    schedule,
    serverkey,
    wire,
)
from smssync.store.base import (
    Claimed,
    Credentials,
    Device,
    DeviceSettings,
    Inbound,
    NewInbound,
    NewOutbound,
    Outbound,
    StuckMessage,
)
from smssync.store.batching import GroupCommit
from smssync.store.engine import Engine
from smssync.store.integration import (
    ApiKey,
    Delivery,
    DeliveryOutcome,
    HookConfig,
    InboundPlan,
    NewRule,
    OutboundQuery,
    Rule,
)
from smssync.store.rows import to_us
from smssync.store.schema import outbound

#: touch_device writes at most this often per device, so polls do not each cost a commit.
TOUCH_EVERY = timedelta(seconds=5)
#: Most devices remembered by touch_device: an entry only matters for TOUCH_EVERY.
TOUCHED_SIZE = 10_000


def _any_awaiting(conn: Connection, device_id: int) -> bool:
    """Tell whether ``results.awaiting_results`` could list or change anything."""
    query = select(outbound.c.id).where(
        outbound.c.device_id == device_id, outbound.c.status.in_(results.AWAITING)
    )
    return conn.execute(query.limit(1)).first() is not None


class SqlStore(Engine):
    """Every Store verb, built from the shared Core queries; subclasses run transactions."""

    def __init__(self) -> None:
        super().__init__()
        self._key: bytes | None = None
        self._touched: dict[int, tuple[datetime, str | None]] = {}
        self._touches = GroupCommit(self._touch_many, 1000, linger=0)

    async def use_server_key(self, data_dir: Path, given: str = "") -> bytes:
        """Take the key for keyed hashes from ``given`` (hex) or ``data_dir/server.key``,
        moving a key the database still holds out to that file; ConfigError when it does
        not match the database's credential hashes (serverkey.py)."""
        key = serverkey.configured_key(data_dir, given)
        if key is None:
            # First start, or a database from before that holds its key: the file gets it,
            # written and flushed before the database forgets it.
            key = await self.read(serverkey.legacy_key) or serverkey.generated()
            key = serverkey.write_key_file(data_dir, key)
        await self.write(serverkey.adopt, key)
        self._key = key
        return key

    async def server_key(self) -> bytes:
        """Return the key for keyed hashes: the one given to ``use_server_key``; without
        one (a store opened by a library caller or a test), one kept in the database, which
        the next ``use_server_key`` moves out."""
        if self._key is None:
            found = await self.read(devices.read_server_key)
            self._key = found if found is not None else await self.write(devices.server_key)
        return self._key

    async def add_device(
        self, name: str, credentials: Credentials, settings: DeviceSettings, now: datetime
    ) -> Device:
        """Create a device; Conflict when the name, token, secret or Basic user is taken."""
        return await self.write(devices.add_device, name, credentials, settings, now)

    async def add_devices(
        self, entries: list[tuple[str, Credentials, DeviceSettings]], now: datetime
    ) -> int:
        """Create many devices in one transaction; Conflict when a unique value is taken."""
        return await self.write(devices.add_devices, entries, now)

    async def update_device(
        self,
        name: str,
        *,
        settings: DeviceSettings | None = None,
        credentials: Credentials | None = None,
    ) -> Device:
        """Change a device's settings or credentials; NotFound, Conflict."""
        return await self.write(devices.update_device, name, settings, credentials)

    async def remove_device(self, name: str) -> None:
        """Delete a device and unassign its queued messages; NotFound."""
        await self.write(devices.remove_device, name)
        self._touched.clear()

    async def devices(self) -> list[Device]:
        """Return every device, by name."""
        return await self.read(devices.all_devices)

    async def device_by_name(self, name: str) -> Device | None:
        """Return the named device."""
        return await self.read(devices.device_where, "name", name)

    async def device_by_token(self, token_hash: bytes) -> Device | None:
        """Look a device up by keyed hash of its path token."""
        return await self.read(devices.device_where, "token_hash", token_hash)

    async def device_by_secret(self, secret_hash: bytes) -> Device | None:
        """Look a device up by keyed hash of its secret."""
        return await self.read(devices.device_by_secret, secret_hash)

    async def device_by_basic_user(self, user: str) -> tuple[Device, bytes | None] | None:
        """Return the device of a Basic user and its password hash."""
        return await self.read(devices.device_by_basic_user, user)

    async def device_credentials(self, device_id: int) -> Credentials:
        """Return the stored hashes of a device (to check a presented secret)."""
        return await self.read(devices.device_credentials, device_id)

    async def touch_device(self, device_id: int, now: datetime, user_agent: str | None) -> None:
        """Record last seen and User-Agent, at most every few seconds per device."""
        last = self._touched.get(device_id)
        if (
            last is not None
            and last[1] == user_agent
            and timedelta(0) <= now - last[0] < TOUCH_EVERY
        ):
            return
        # Concurrent polls share one statement and one commit, as incoming SMS do.
        await self._touches((device_id, now, user_agent))
        if len(self._touched) >= TOUCHED_SIZE:
            # Bounded at any fleet size; forgetting only costs one early write per device.
            self._touched.clear()
        self._touched[device_id] = (now, user_agent)

    async def _touch_many(self, touches: list[tuple[int, datetime, str | None]]) -> list[None]:
        return await self.write(devices.touch_devices, touches)

    async def record_event(
        self, device_id: int, kind: str, detail: dict[str, Any], now: datetime
    ) -> None:
        """Record a device event (E3 test, E8 alert, liveness change)."""
        await self.write(devices.record_event, device_id, kind, detail, now)

    async def events(self, device: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Return recent device events, newest first."""
        return await self.read(devices.recent_events, device, limit)

    async def record_inbound(self, message: NewInbound) -> tuple[bool, int]:
        """Store an incoming SMS unless (device, dedupe_key) exists: (created, id) (S-10).

        Concurrent calls share one statement and one commit (group commit, see ``batching``).
        """
        return await self.batch(
            inbox.record_inbound_many, inbox.row_of(message), limit=inbox.MAX_ROWS
        )

    async def inbound(
        self, device: str | None = None, limit: int = 1000, after_id: int = 0
    ) -> list[Inbound]:
        """Return stored incoming SMS, oldest first, after ``after_id``."""
        return await self.read(inbox.list_inbound, device, limit, after_id)

    async def enqueue(self, messages: list[NewOutbound]) -> None:
        """Queue outgoing SMS in one transaction; NotFound for an unknown device name."""
        if messages:
            await self.write(queue.enqueue, messages)

    async def claim_outbound(
        self, device_id: int, limit: int, now: datetime, *, piggyback: bool = False
    ) -> list[Claimed]:
        """Hand up to ``limit`` queued messages to the device atomically (S-22)."""
        # A read first: most polls find nothing, and then cost no turn of the single SQLite
        # writer (nor a PostgreSQL write transaction). A message queued after this read
        # goes to the next poll, as it would had it been queued after the claim.
        if not await self.read(queue.anything_to_claim, device_id, to_us(now)):
            return []
        return await self.write(queue.claim, device_id, limit, now, piggyback)

    async def acknowledge(self, device_id: int, message_ids: list[str], now: datetime) -> list[str]:
        """E5: accept the listed messages dispatched to this device (S-27)."""
        return await self.write(results.acknowledge, device_id, message_ids, now)

    async def lease_owner(self, message_ids: list[str]) -> int | None:
        """E5 lease binding (S-26): the one device the dispatched uuids belong to."""
        return await self.read(results.lease_owner, message_ids)

    async def wire_ids(self, message_ids: list[str]) -> dict[str, str]:
        """Return the wire id (E2, E4 to E7) of each known public uuid."""
        return await self.read(wire.wire_ids, message_ids) if message_ids else {}

    async def message_ids(self, wire_ids: list[str]) -> dict[str, str]:
        """Return the public uuid of each known wire id."""
        return await self.read(wire.message_ids, wire_ids) if wire_ids else {}

    async def awaiting_results(
        self, device_id: int, now: datetime, limit: int, max_listings: int, max_age_s: int
    ) -> list[str]:
        """E6 (S-31): the device's unreported uuids, oldest first, counting each listing."""
        # A read first, as for task=send: most phones of a fleet have nothing to report.
        if not await self.read(_any_awaiting, device_id):
            return []
        return await self.write(
            results.awaiting_results, device_id, now, limit, max_listings, max_age_s
        )

    async def record_results(
        self, device_id: int, outcomes: list[tuple[str, SendOutcome]], now: datetime
    ) -> int:
        """E7 (S-33, S-35): apply this device's outcomes idempotently; return changes."""
        if not outcomes:
            return 0
        return await self.write(results.record_results, device_id, outcomes, now)

    async def cancel(self, message_id: str, now: datetime) -> Outbound:
        """Cancel a message no device has accepted; NotFound, Conflict."""
        return await self.write(results.cancel, message_id, now)

    async def outbound(
        self,
        message_id: str | None = None,
        device: str | None = None,
        status: OutboundStatus | None = None,
        limit: int = 1000,
    ) -> list[Outbound]:
        """Return outgoing SMS with history, oldest first."""
        return await self.read(results.list_outbound, message_id, device, status, limit)

    async def queue_depths(self) -> dict[str | None, int]:
        """Return the number of queued messages per assigned device name (None: unassigned)."""
        return await self.read(results.queue_depths)

    # The application API (issue 5).

    async def add_api_key(
        self, name: str, key_hash: bytes, prefix: str, scopes: list[str], secret: str, now: datetime
    ) -> ApiKey:
        """Store a new API key by its keyed hash."""
        return await self.write(
            apistore.add_api_key, name, key_hash, prefix, scopes, secret, to_us(now)
        )

    async def api_keys(self, key_hash: bytes | None = None) -> list[ApiKey]:
        """Return every API key, or the one with this hash."""
        return await self.read(apistore.list_api_keys, key_hash)

    async def revoke_api_key(self, key_id: int, now: datetime) -> ApiKey:
        """Revoke a key; NotFound."""
        return await self.write(apistore.revoke_api_key, key_id, to_us(now))

    async def submit(
        self,
        api_key_id: int,
        idempotency_key: str | None,
        request_hash: str,
        messages: list[NewOutbound],
        status_code: int,
        response: str,
        now: datetime,
    ) -> tuple[bool, str, int, str]:
        """Queue messages and remember the answer under the idempotency key, atomically."""
        return await self.write(
            apistore.submit,
            api_key_id,
            idempotency_key,
            request_hash,
            messages,
            status_code,
            response,
            to_us(now),
        )

    async def outbound_page(self, query: OutboundQuery) -> list[Outbound]:
        """Return outgoing SMS matching the filters after the cursor, oldest first."""
        return await self.read(apistore.outbound_page, query)

    async def add_webhook(self, url: str, events: list[str], secret: str, now: datetime) -> int:
        """Register a webhook endpoint; return its id."""
        return await self.write(outbox.add_endpoint, url, events, secret, to_us(now))

    async def remove_webhook(self, endpoint_id: int) -> None:
        """Delete an endpoint and its deliveries; NotFound."""
        await self.write(outbox.remove_endpoint, endpoint_id)

    async def add_rule(self, rule: NewRule, now: datetime) -> Rule:
        """Add a rule; NotFound for an unknown endpoint."""
        return await self.write(apistore.add_rule, rule, to_us(now))

    async def remove_rule(self, rule_id: int) -> None:
        """Delete a rule; NotFound."""
        await self.write(apistore.remove_rule, rule_id)

    async def hook_config(self) -> HookConfig:
        """Return the rules in order and the webhook endpoints."""
        return await self.read(apistore.hook_config)

    async def record_inbound_routed(
        self, message: NewInbound, plan: InboundPlan, now: datetime
    ) -> tuple[bool, int]:
        """Store an incoming SMS and, when new, apply the plan in the same transaction."""
        return await self.write(apistore.record_inbound_routed, message, plan)

    async def claim_deliveries(self, now: datetime, limit: int, hold_s: int) -> list[Delivery]:
        """Take due deliveries for ``hold_s`` seconds, in lane order."""
        now_us = to_us(now)
        # A read first: idle dispatchers then never queue behind the single SQLite writer.
        if not await self.read(outbox.any_due, now_us):
            return []
        return await self.write(outbox.claim, now_us, limit, hold_s * 1_000_000)

    async def finish_deliveries(self, outcomes: list[DeliveryOutcome], now: datetime) -> None:
        """Record attempts: delivered, retry later, or dead."""
        if outcomes:
            await self.write(outbox.finish, outcomes, to_us(now))

    async def deliveries(self, state: str, limit: int = 100) -> list[Delivery]:
        """Return deliveries in a state, oldest first."""
        return await self.read(outbox.by_state, state, limit)

    async def redrive(self, delivery_ids: list[int] | None, now: datetime) -> int:
        """Put dead deliveries back in the queue; return how many."""
        return await self.write(outbox.redrive, delivery_ids, to_us(now))

    async def check_liveness(self, now: datetime) -> list[tuple[str, bool]]:
        """Record online/offline transitions and their events once across processes."""
        now_us = to_us(now)
        # A read first: the usual answer is "nothing changed", which then costs no commit.
        changes = await self.read(outbox.liveness_changes, now_us)
        if not changes:
            return []
        return await self.write(outbox.record_liveness, changes, now_us)

    async def claim_run(self, job: str, now: datetime, every_s: float) -> bool:
        """Take the slot of ``now`` for a periodic job, once across processes."""
        return await self.write(schedule.claim_slot, job, to_us(now), int(every_s * 1_000_000))

    async def alert_stuck(
        self, now: datetime, older_than_s: int, limit: int = 500
    ) -> list[StuckMessage]:
        """S-30: mark and announce, once across processes, messages long ``accepted``."""
        # A read first, as for liveness: the usual answer is "none", which then costs no
        # turn of the single SQLite writer.
        if not await self.read(results.any_stuck, now, older_than_s):
            return []
        return await self.write(results.alert_stuck, now, older_than_s, limit)
