"""Task messages: poll (E4), acknowledge (E5), send exactly once (G-13), report (E6/E7).

Also the SMS the gateway sends by itself (auto-replies, query answers, alerts). Every send is
claimed durably (``sending``) before the backend sees it, so a crash can lose a send's result
but never repeat the send.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, tzinfo

from smssync.backends.base import Backend, SendResult
from smssync.errors import BackendError
from smssync.gateway.client import SyncClient
from smssync.gateway.config import GatewayConfig
from smssync.gateway.records import TaskRecord
from smssync.gateway.store import SUBMITTED, GatewayStore, send_state
from smssync.protocol.results import DELIVERED_TEXTS, SENT_TEXTS, UNKNOWN_SENT_TEXT
from smssync.protocol.timestamps import format_app_timestamp
from smssync.records import MessageResult, TaskMessage

log = logging.getLogger("smssync.gateway")

#: Composes the text of a local send at send time (query answers need fresh probes).
Composer = Callable[[str, str], Awaitable[str]]
#: Task states reported in E7: the backend's result is known, or known to be unknowable.
REPORTED_STATES = ("sent", "failed", SUBMITTED)
#: Sent task uuids are remembered at least 7 days (G-13); keep 8. Unasked results are sent
#: for as long.
TASK_MEMORY_S = 8 * 86400
#: Unasked results per E7 POST, oldest first; the rest go in later rounds.
UNASKED_LIMIT = 100


def local_message_id() -> str:
    """Return an id for a task message that came without a uuid (never reported)."""
    return f"local-{uuid.uuid4()}"


def name_replies(messages: list[TaskMessage]) -> list[TaskMessage]:
    """Give E2 messages without a uuid a local one (they are never reported)."""
    return [
        m if m.message_id else TaskMessage(m.to_addr, m.content, local_message_id())
        for m in messages
    ]


class Outbound:
    """Everything the gateway sends through the backend."""

    def __init__(
        self,
        config: GatewayConfig,
        backend: Backend,
        store: GatewayStore,
        clock: Callable[[], float],
        compose: Composer,
    ) -> None:
        self.config = config
        self.backend = backend
        self.store = store
        self.clock = clock
        self.compose = compose
        self.wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._zone: tzinfo = datetime.now().astimezone().tzinfo or UTC

    @property
    def request_reports(self) -> bool:
        """Ask for delivery reports only when configured and the backend can give them."""
        return self.config.tasks.delivery_reports and self.backend.capabilities.delivery_reports

    async def poll(self, client: SyncClient) -> None:
        """One task round for one Sync URL: E4, E5 if on, send, then E6/E7 if on."""
        started = self.clock()
        offered = await client.poll_tasks()
        now = self.clock()
        with_uuid = [m for m in offered if m.message_id]
        without = [
            TaskMessage(m.to_addr, m.content, local_message_id())
            for m in offered
            if not m.message_id
        ]
        # Entries without a uuid cannot be acknowledged: they go without the handshake (G-12).
        await self.store.record_tasks(client.name, without, "task", "listed", now)
        if self.config.tasks.results_api:
            fresh = await self.store.record_tasks(client.name, with_uuid, "task", "offered", now)
            if with_uuid:
                # Known uuids are listed too (G-13), but only fresh ones can be sent. A lost
                # reply leaves the fresh ones offered: report() may clear them later.
                listed = set(
                    await client.acknowledge_queued([m.message_id or "" for m in with_uuid])
                )
                ids = [m.message_id or "" for m in fresh]
                await self.store.set_task_states(
                    client.name, [i for i in ids if i in listed], "offered", "listed"
                )
                await self.store.set_task_states(
                    client.name, [i for i in ids if i not in listed], "offered", "unlisted"
                )
        else:
            await self.store.record_tasks(client.name, with_uuid, "task", "listed", now)
        await self.send_pending()
        if self.config.tasks.results_api:
            await self.report(client, started)

    async def add_replies(
        self, sync_url: str, inbound_id: int, messages: list[TaskMessage]
    ) -> None:
        """Queue E2 messages from the reply to the current, successful E1 (G-13): once per
        incoming SMS, whatever uuid the server gave them (the PHP sample gives all one)."""
        fresh = await self.store.record_tasks(
            sync_url, name_replies(messages), "reply", "listed", self.clock(), inbound_id
        )
        if fresh:
            self.wake.set()

    async def send_pending(self) -> None:
        """Send every cleared task message and every queued local SMS, one at a time."""
        async with self._lock:
            for task in await self.store.tasks_to_send():
                if not await self.store.claim_task(task.row):
                    continue
                result = await self._send(task.to_addr, task.content, self.request_reports)
                await self.store.record_send(
                    task.row,
                    result.sent_code,
                    result.reference,
                    result.at.timestamp(),
                )
            for local in await self.store.local_sends_due():
                await self.store.set_local_send(local.id, "sending", None)
                try:
                    text = await self.compose(local.kind, local.content)
                except Exception:
                    log.exception("cannot compose %s", local.kind)
                    await self.store.set_local_send(local.id, "failed", None)
                    continue
                result = await self._send(local.to_addr, text, False)
                await self.store.set_local_send(
                    local.id, send_state(result.sent_code), result.sent_code
                )

    async def _send(self, to_addr: str, content: str, request_report: bool) -> SendResult:
        try:
            result = await self.backend.send(to_addr, content, request_report)
        except BackendError as exc:
            log.warning("send to %s failed: %s", to_addr, exc.message)
            return SendResult(exc.sent_code, None, datetime.now(UTC), exc.message)
        if result.sent_code is None:
            log.info("sent to %s; outcome unknown (%s)", to_addr, result.detail or "no sent code")
        elif not result.ok:
            log.warning("send to %s failed with code %s", to_addr, result.sent_code)
        return result

    async def run(self, stop: asyncio.Event) -> None:
        """Send whatever becomes due (E2 replies, local SMS) until stopped."""
        while not stop.is_set():
            self.wake.clear()
            try:
                await self.send_pending()
            except Exception:
                log.exception("sending failed")
            await _wait(self.wake, 5.0)

    async def report(self, client: SyncClient, round_started: float) -> None:
        """E6 then E7: every listed uuid the gateway knows, successes included (G-15); one
        sent with an unknown outcome goes as its bare uuid (no code is invented). The POST
        also carries results the server has not taken as they are now, unasked, and goes
        even when empty (G-15).

        An ``offered`` uuid in the listing is one whose E5 reply was lost. The server lists
        only the device's ``dispatched``, ``accepted`` and ``sent`` messages (S-31), so the
        listing alone does not prove acceptance: an E5 that never reached the server leaves
        the message ``dispatched`` under a lease, and once the lease ends the server queues
        it again for any phone. Sending it then could make two phones send it. The server
        ends expired leases when a device polls (E4), and this round's E4 came before this
        E6; so a listing in a round that started a lease after the offer can only be of an
        accepted message (a new offer of the uuid restarts the wait). Such a task is sent
        once (the ``sending`` claim holds) and reported as soon as its send has finished.
        """
        wanted = await client.result_uuids()
        await self.store.accept_offered(
            client.name, wanted, round_started - self.config.tasks.lease_s
        )
        if await self.store.tasks_to_send():
            await self.send_pending()
        records = await self.store.task_records(client.name, wanted)
        listed = [r for r in records if r.state in REPORTED_STATES]
        known = set(wanted)
        unasked = [
            r
            for r in await self.store.unasked_results(
                client.name, self.clock() - TASK_MEMORY_S, UNASKED_LIMIT
            )
            if r.message_id not in known
        ]
        entries = [self.result_of(r) for r in [*listed, *unasked]]
        app_string = self.config.tasks.results_encoding == "app_string"
        if await client.post_results(entries, app_string):
            await self.store.mark_reported([*listed, *unasked])

    def result_of(self, record: TaskRecord) -> MessageResult:
        """Build one ``message_result`` entry with the real codes (G-15, G-16). A send whose
        outcome the backend cannot know (state ``submitted``) carries only its uuid: no sent
        code, text, timestamp or delivery fields (device-backends.md §1, §7)."""
        if record.state == SUBMITTED or record.sent_code is None:
            return MessageResult(message_id=record.message_id)
        code = record.sent_code
        delivered = record.delivered_code
        return MessageResult(
            message_id=record.message_id,
            sent_code=code,
            sent_message=SENT_TEXTS.get(code, UNKNOWN_SENT_TEXT),
            delivered_code=delivered,
            delivered_message=None if delivered is None else DELIVERED_TEXTS.get(delivered),
            sent_timestamp=self._stamp(record.sent_at),
            delivered_timestamp=self._stamp(record.delivered_at),
        )

    def _stamp(self, epoch_s: float | None) -> str | None:
        if epoch_s is None:
            return None
        moment = datetime.fromtimestamp(epoch_s, UTC)
        if self.config.tasks.timestamps == "iso8601":
            return moment.astimezone(self._zone).isoformat(timespec="seconds")
        return format_app_timestamp(moment, self._zone)


async def _wait(event: asyncio.Event, timeout_s: float) -> None:
    try:
        await asyncio.wait_for(event.wait(), timeout_s)
    except TimeoutError:
        pass
