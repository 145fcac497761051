"""The gateway's one loop: receive, store, forward; poll tasks and send; watch the device.

Order of durability (G-8): an SMS is committed before the device may forget it; an upload is
marked done only after the server confirmed it; a task SMS is marked ``sending`` before the
radio sees it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import math
import random
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import httpx

from smssync.backends.base import Backend, DeliveryReport, InboundSms
from smssync.errors import ProtocolError, SmssyncError
from smssync.gateway.alerts import alert, compose
from smssync.gateway.backoff import retry_delay_s
from smssync.gateway.breaker import Breaker, BreakerState, Tripped
from smssync.gateway.client import Contact, SyncClient
from smssync.gateway.config import GatewayConfig
from smssync.gateway.outbound import TASK_MEMORY_S, Outbound, name_replies
from smssync.gateway.records import ForwardJob, InboundRecord
from smssync.gateway.routing import battery_text, route
from smssync.gateway.store import GatewayStore
from smssync.protocol.timestamps import to_epoch_ms
from smssync.records import InboundMessage

log = logging.getLogger("smssync.gateway")

#: Alerts are best effort: at most this many attempts each (G-18).


@dataclasses.dataclass
class Progress:
    """Upload counters since start, for the backlog display."""

    forwarded: int = 0
    failed_attempts: int = 0
    received: int = 0


class Gateway:
    """Plays the SMSsync app for every configured Sync URL over one backend."""

    def __init__(
        self,
        config: GatewayConfig,
        backend: Backend,
        store: GatewayStore,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.backend = backend
        self.store = store
        self.clock = clock
        self.rng = rng or random.Random()
        self.progress = Progress()
        self._poll_wake = {url.name: asyncio.Event() for url in config.enabled_urls}
        self.breakers = {
            url.name: Breaker(
                config.forward, clock, self.rng, functools.partial(self._resumed, url.name)
            )
            for url in config.enabled_urls
        }
        self.clients = {
            url.name: SyncClient(
                url,
                user_agent=config.device.user_agent,
                timeout_s=config.forward.timeout_s,
                secret_in_sent=config.tasks.secret_in_sent,
                transport=transport,
                on_contact=self._on_contact,
                # Uploads, plus a task poll and a results exchange alongside them.
                connections=config.forward.concurrency + 2,
                breaker=self.breakers[url.name],
            )
            for url in config.enabled_urls
        }
        self.outbound = Outbound(
            config, backend, store, clock, functools.partial(compose, self.clients, backend)
        )
        self._forward_wake = asyncio.Event()
        self._contacts: dict[str, Contact] = {}
        self._unreachable: set[str] = set()
        self._offline_since: float | None = None
        self._offline_alerted = False
        self._battery_low = False
        self._background: set[asyncio.Task[None]] = set()

    @property
    def sent_to(self) -> str:
        """The own number if known, else the device id (G-2)."""
        return (
            self.config.device.own_number or self.backend.own_number or self.config.device.device_id
        )

    # -- running ---------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Run every loop until ``stop`` is set (or the task is cancelled)."""
        stop = stop or asyncio.Event()
        await self.backend.open()
        await self.store.prune_tasks(self.clock() - TASK_MEMORY_S)
        loops = [self._receive(), self._forward(stop), self.outbound.run(stop), self._watch(stop)]
        if self.config.tasks.enabled:
            loops += [self._poll_loop(client, stop) for client in self.clients.values()]
        tasks = [asyncio.create_task(loop) for loop in loops]
        try:
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for task in list(self._background):
                task.cancel()
            await self.close()

    async def close(self) -> None:
        """Close the HTTP clients and the backend."""
        for client in self.clients.values():
            await client.close()
        with contextlib.suppress(SmssyncError):
            await self.backend.close()

    # -- receiving -------------------------------------------------------------------------

    async def _receive(self) -> None:
        while True:
            try:
                async for event in self.backend.events():
                    if isinstance(event, InboundSms):
                        await self.accept(event)
                    elif isinstance(event, DeliveryReport):
                        await self.store.record_report(
                            event.reference,
                            event.delivered_code,
                            event.at.timestamp(),
                            self.clock(),
                        )
                    # Only now, with the event committed, may the device forget it (G-8).
                    await self.backend.acknowledge(event)
            except SmssyncError as exc:
                log.warning("receiving stopped: %s; retrying", exc.message)
                await asyncio.sleep(1.0)

    async def accept(self, sms: InboundSms) -> bool:
        """Store one incoming SMS with its routing; False for a re-read of a stored one."""
        now = self.clock()
        routing = route(sms.from_addr, sms.content, self.config)
        replies: list[tuple[str, str, str]] = []
        if routing.query_code is not None:
            replies.append(("query", sms.from_addr, routing.query_code))
        elif routing.accepted and self.config.replies.auto_reply:
            replies.append(("auto_reply", sms.from_addr, self.config.replies.auto_reply))
        sent_at = sms.sent_at or datetime.fromtimestamp(now, UTC)
        record = InboundRecord(
            natural_key=sms.natural_key,
            message_id=str(uuid.uuid4()),
            from_addr=sms.from_addr,
            content=sms.content,
            sent_timestamp=to_epoch_ms(sent_at),
            received_at=now,
        )
        inbound_id = await self.store.record_inbound(record, routing.routes, replies)
        if inbound_id is None:
            return False
        self.progress.received += 1
        self._forward_wake.set()
        if replies:
            self.outbound.wake.set()
        return True

    # -- forwarding (E1, E2) ---------------------------------------------------------------

    async def _forward(self, stop: asyncio.Event) -> None:
        names = list(self.clients)
        limit = self.config.forward.concurrency
        slots = asyncio.Semaphore(limit)
        in_flight: set[tuple[int, str]] = set()

        async def one(job: ForwardJob) -> None:
            try:
                await self.forward_one(job)
            except Exception:
                log.exception("forwarding %s failed", job.message_id)
            finally:
                in_flight.discard((job.inbound_id, job.sync_url))
                slots.release()
                self._forward_wake.set()

        while not stop.is_set():
            self._forward_wake.clear()
            started = 0
            for job in await self._due_jobs(names, limit * 4):
                key = (job.inbound_id, job.sync_url)
                if key in in_flight:
                    continue
                await slots.acquire()
                in_flight.add(key)
                started += 1
                self._spawn(one(job))
            if started:
                continue
            wait_s = await self._forward_wait_s(names)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._forward_wake.wait(), wait_s)

    async def _due_jobs(self, names: list[str], limit: int) -> list[ForwardJob]:
        """The due uploads of URLs that are up, and one probe per down URL whose probe is
        due: the oldest pending SMS, whatever its own schedule says."""
        up = [n for n in names if self.breakers[n].state is BreakerState.CLOSED]
        jobs = await self.store.due_forwards(up, self.clock(), limit) if up else []
        for name in names:
            breaker = self.breakers[name]
            if breaker.state is BreakerState.OPEN and breaker.waiting_s is None:
                jobs += await self.store.due_forwards([name], math.inf, 1)
        return jobs

    async def _forward_wait_s(self, names: list[str]) -> float:
        """Until the next upload or probe is due. A URL that is down costs no store read
        until its probe is due: every stored SMS wakes this loop, and reads share the
        store's one thread with the intake's commits."""
        waits = [30.0]
        up = [n for n in names if self.breakers[n].state is BreakerState.CLOSED]
        next_due = await self.store.next_due_at(up) if up else None
        if next_due is not None:
            waits.append(next_due - self.clock())
        for name in names:
            breaker = self.breakers[name]
            if breaker.state is BreakerState.CLOSED:
                continue
            # Half-open: the probe may be a task poll, whose failure wakes nobody here.
            waiting_s = breaker.waiting_s
            if waiting_s is not None:
                waits.append(waiting_s)
            elif await self.store.next_due_at([name]) is not None:
                waits.append(0.0)
        return max(min(waits), 0.02)

    async def forward_one(self, job: ForwardJob) -> bool:
        """Upload one pair once; record success, or the failure and the next attempt."""
        client = self.clients[job.sync_url]
        sms = InboundMessage(
            from_addr=job.from_addr,
            content=job.content,
            sent_timestamp=job.sent_timestamp,
            sent_to=self.sent_to,
            message_id=job.message_id,
            device_id=self.config.device.device_id,
        )
        try:
            messages = await client.post_incoming(sms)
        except Tripped:
            # Not attempted: the URL went down meanwhile; the next probe decides.
            return False
        except ProtocolError as exc:
            delay = retry_delay_s(job.attempts + 1, self.config.forward, self.rng)
            await self.store.mark_failed(
                job.inbound_id, job.sync_url, self.clock() + delay, exc.message
            )
            self.progress.failed_attempts += 1
            return False
        replies = name_replies(messages) if self.config.replies.from_server else []
        fresh = await self.store.mark_forwarded(job.inbound_id, job.sync_url, self.clock(), replies)
        self.progress.forwarded += 1
        if fresh:
            self.outbound.wake.set()
        return True

    def _spawn(self, work: object) -> None:
        task: asyncio.Task[None] = asyncio.create_task(work)  # type: ignore[arg-type]
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- contact and connectivity ----------------------------------------------------------

    def _on_contact(self, contact: Contact) -> None:
        self._contacts[contact.sync_url] = contact
        if contact.reached:
            self._offline_since = None
            self._offline_alerted = False
            if contact.sync_url in self._unreachable:
                # Connectivity is back: the backoff resets (G-8).
                self._unreachable.discard(contact.sync_url)
                self._spawn(self._reset_backoff(contact.sync_url))
        else:
            self._unreachable.add(contact.sync_url)
            if self._offline_since is None:
                self._offline_since = self.clock()

    async def _reset_backoff(self, sync_url: str) -> None:
        await self.store.reset_backoff(sync_url, self.clock())
        self._forward_wake.set()

    def _resumed(self, sync_url: str) -> None:
        """The breaker closed: uploads, task polls and results go now (G-8)."""
        self._spawn(self._reset_backoff(sync_url))
        self._poll_wake[sync_url].set()

    async def _flush_contacts(self) -> None:
        contacts, self._contacts = self._contacts, {}
        for contact in contacts.values():
            await self.store.touch_contact(
                contact.sync_url,
                self.clock(),
                contact.ok,
                contact.error if not contact.ok else None,
            )

    # -- tasks (E4 to E7) -------------------------------------------------------------------

    async def _poll_loop(self, client: SyncClient, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.outbound.poll(client)
            except ProtocolError as exc:
                log.info("task poll of %s: %s", client.name, exc.message)
            except Exception:
                log.exception("task poll of %s failed", client.name)
            wake = self._poll_wake[client.name]
            wake.clear()
            breaker = self.breakers[client.name]
            # While the URL is down, a round waits for the probe's time, not a whole interval.
            wait_s = min(self.config.tasks.interval_s, breaker.waiting_s or math.inf)
            stopping = asyncio.ensure_future(stop.wait())
            waking = asyncio.ensure_future(wake.wait())
            await asyncio.wait({stopping, waking}, timeout=wait_s, return_when="FIRST_COMPLETED")
            stopping.cancel()
            waking.cancel()

    # -- device watch, alerts, query codes --------------------------------------------------

    async def _watch(self, stop: asyncio.Event) -> None:
        last_check = 0.0
        tick_s = min(1.0, self.config.alerts.check_interval_s)
        while not stop.is_set():
            await self._flush_contacts()
            now = self.clock()
            if now - last_check >= self.config.alerts.check_interval_s:
                last_check = now
                with contextlib.suppress(SmssyncError):
                    await self.check_device()
            await self._check_offline(now)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), tick_s)

    async def check_device(self) -> None:
        """Alert once per crossing below the battery threshold (G-18)."""
        if not self.backend.capabilities.battery:
            return
        percent = (await self.backend.status()).battery_percent
        if percent is None:
            return
        if percent >= self.config.alerts.battery_low_percent:
            self._battery_low = False
            return
        if self._battery_low:
            return
        self._battery_low = True
        text = battery_text(percent)
        for client in self.clients.values():
            self._spawn(alert(client, text))
        await self._sms_alert(text)

    async def _sms_alert(self, text: str) -> None:
        if self.config.alerts.number:
            await self.store.add_local_send("alert", self.config.alerts.number, text, self.clock())
            self.outbound.wake.set()

    async def _check_offline(self, now: float) -> None:
        since = self._offline_since
        if since is None or self._offline_alerted:
            return
        if now - since >= self.config.alerts.no_data_after_s:
            self._offline_alerted = True
            stamp = datetime.fromtimestamp(since, UTC).strftime("%Y-%m-%d %H:%M UTC")
            await self._sms_alert(f"No data connection: no Sync URL reachable since {stamp}")
