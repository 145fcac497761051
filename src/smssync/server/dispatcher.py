"""Background work of a server process: sending webhooks, watching device liveness and
alerts, marking messages stuck ``accepted`` (S-30), purging old SMS text (``retention``),
releasing campaigns into the queue and hearing other processes' changes.

Every process of every server on one database runs them all, and each job's work is done
once per fleet: a delivery is claimed by one process at a time (a lease, taken with ``FOR
UPDATE SKIP LOCKED`` on PostgreSQL), the liveness check, the stuck sweep and the purge run
once per time slot (``schedule.claim_run``), and a transition, a stuck message or an alert
is recorded (and announced) by the one process whose conditional update or insert lands.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx

from smssync import __version__
from smssync import webhooks as signing
from smssync.egress import GuardedTransport
from smssync.errors import SmssyncError
from smssync.records import Alert, Delivery, DeliveryOutcome, StuckMessage
from smssync.server import metrics
from smssync.server.hooks import Hooks
from smssync.server.retention import watch_retention
from smssync.settings import Settings
from smssync.store import alert_sweep, alerts, liveness, release, schedule, stuck, webhooks
from smssync.store.engine import Database

log = logging.getLogger("smssync.webhooks")
alerts_log = logging.getLogger("smssync.alerts")

#: Deliveries sent concurrently by one process (each from a different lane).
BATCH = 50
#: Longest wait between attempts.
MAX_DELAY = timedelta(hours=1)
#: How long a claim outlasts the deadline of its attempts: the time between taking a claim
#: and starting to send.
CLAIM_MARGIN_S = 10
#: How often an idle dispatcher looks for due retries or other processes' events.
IDLE_S = 1.0
#: How often each process looks for messages stuck ``accepted``: the threshold is in hours.
STUCK_CHECK_S = 60.0
#: Most stuck messages one sweep marks, so that its transaction stays short.
STUCK_BATCH = 500
#: How often campaigns' held recipients are released: well inside the release horizon.
RELEASE_S = 5.0


def next_attempt(settings: Settings, delivery: Delivery, now: datetime) -> datetime | None:
    """Return when to try again after a failure, or None when the retry window is over.

    Exponential from ``webhook_retry_ms``, capped at an hour, with a little jitter so that
    a receiver coming back is not hit by every lane in the same second.
    """
    base = timedelta(milliseconds=settings.webhook_retry_ms) * 2 ** max(delivery.attempts - 1, 0)
    delay: timedelta = min(base, MAX_DELAY) * random.uniform(0.9, 1.1)
    retry_at: datetime = now + delay
    if retry_at > delivery.created_at + timedelta(seconds=settings.webhook_max_age_s):
        return None
    return retry_at


async def attempt(
    client: httpx.AsyncClient, delivery: Delivery, deadline_s: float | None = None
) -> str | None:
    """POST one signed delivery, giving up after ``deadline_s`` in all; return None on 2xx,
    else the error."""
    body = delivery.body.encode()
    headers = {
        "content-type": "application/json",
        "user-agent": f"smssync-webhooks/{__version__}",
        signing.EVENT_ID_HEADER: delivery.event_id,
        "X-Smssync-Event": delivery.event,
        **signing.sign(delivery.secret, body),
    }
    try:
        # The client's timeout bounds each phase (connect, each read); this bounds the whole
        # attempt, so that it always ends inside the claim (a receiver answering a byte at
        # a time would otherwise outlast it, and another process would send it meanwhile).
        response = await asyncio.wait_for(
            client.post(delivery.url, content=body, headers=headers), deadline_s
        )
    except TimeoutError:
        return f"no answer within {deadline_s} s"
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"[:500]
    if 200 <= response.status_code < 300:
        return None
    return f"HTTP {response.status_code}"


def shown_url(url: str) -> str:
    """A receiver's URL for the log: scheme, host and path; its user, password and query,
    where receivers put their tokens, masked."""
    try:
        parts = httpx.URL(url)
    except httpx.InvalidURL:
        return "(an invalid URL)"
    bare = parts.copy_with(username=None, password=None, query=None, fragment=None)
    return f"{bare}?***" if parts.query else str(bare)


def delivery_client(settings: Settings) -> httpx.AsyncClient:
    """Return the client that sends webhooks and status callbacks.

    Every attempt resolves and checks the receiver's address again (egress.py); no redirect
    is followed, and no proxy from the environment is used: it would connect to an address
    nobody checked.
    """
    return httpx.AsyncClient(
        timeout=httpx.Timeout(settings.webhook_timeout_s),
        follow_redirects=False,
        trust_env=False,
        transport=GuardedTransport(settings.egress),
    )


class Dispatcher:
    """Send due webhook deliveries until cancelled."""

    def __init__(self, settings: Settings, store: Database, hooks: Hooks) -> None:
        self.settings = settings
        self.store = store
        self.hooks = hooks

    async def run(self) -> None:
        """Loop: claim, send, record; sleep when idle or woken by a local event."""
        async with delivery_client(self.settings) as client:
            while True:
                try:
                    sent = await self.once(client)
                except SmssyncError as exc:
                    log.warning("webhook dispatch failed: %s", exc.message)
                    sent = 0
                if sent:
                    continue
                self.hooks.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.hooks.wake.wait(), IDLE_S)

    async def once(self, client: httpx.AsyncClient) -> int:
        """Send one batch; return how many deliveries were attempted."""
        # The claim outlasts every attempt (each ends by its deadline), so only a crashed
        # process's claim expires, and another process then sends its deliveries again.
        deadline_s = self.settings.webhook_timeout_s
        hold_s = deadline_s + CLAIM_MARGIN_S
        batch = await webhooks.claim_deliveries(self.store, datetime.now(UTC), BATCH, hold_s)
        if not batch:
            return 0
        errors = await asyncio.gather(*(attempt(client, d, deadline_s) for d in batch))
        now = datetime.now(UTC)
        outcomes = []
        for delivery, error in zip(batch, errors, strict=True):
            if error is None:
                metrics.webhook_attempt(delivered=True)
                outcomes.append(DeliveryOutcome(delivery.id, True))
                continue
            retry_at = next_attempt(self.settings, delivery, now)
            metrics.webhook_attempt(delivered=False, final=retry_at is None)
            if retry_at is None:
                shown = shown_url(delivery.url)
                log.warning("webhook %s to %s dead: %s", delivery.event_id, shown, error)
            outcomes.append(DeliveryOutcome(delivery.id, False, error, retry_at))
        await webhooks.finish_deliveries(self.store, outcomes, now)
        if self.settings.alert_webhook_failures > 0:
            try:
                await alerts.track_deliveries(
                    self.store, outcomes, now, self.settings.alert_webhook_failures
                )
            except SmssyncError as exc:
                alerts_log.warning("webhook alert check failed: %s", exc.message)
        return len(batch)


def log_alert(alert: Alert) -> None:
    """Write an alert's one WARNING line: its id, kind, device and details (which hold no
    secret: a webhook alert names the receiver's host, not its URL)."""
    alerts_log.warning(
        "alert %d %s%s: %s",
        alert.id,
        alert.kind.value,
        "" if alert.device is None else f" device={json.dumps(alert.device)}",
        json.dumps(alert.details, ensure_ascii=False, sort_keys=True),
    )


async def check_liveness(settings: Settings, store: Database, now: datetime) -> bool:
    """Run the liveness check and the alert sweep if no other process has run them in this
    slot, logging each alert raised since; True when devices changed state or alerts were
    raised (their events await delivery)."""
    # The check reads every device: one process per slot does it, not each worker.
    if not await schedule.claim_run(store, "liveness", now, settings.liveness_check_s):
        return False
    changed = bool(await liveness.check_liveness(store, now))
    announced = await alert_sweep.sweep(store, now)
    for alert in announced:
        log_alert(alert)
    return changed or bool(announced)


async def watch_liveness(settings: Settings, store: Database, hooks: Hooks) -> None:
    """Record device online/offline transitions (and their events) and hand silent
    devices' queued messages to the others, until cancelled."""
    while True:
        try:
            if await check_liveness(settings, store, datetime.now(UTC)):
                hooks.wake.set()
        except SmssyncError as exc:
            log.warning("liveness check failed: %s", exc.message)
        await asyncio.sleep(settings.liveness_check_s)


async def sweep_stuck(
    settings: Settings, store: Database, now: datetime, *, every_s: float = 0.0
) -> list[StuckMessage]:
    """Alert once on messages ``accepted`` longer than ``accepted_alert_h`` (S-30); with
    ``every_s``, only if no other process swept in this slot of ``every_s`` seconds."""
    # The conditional update already alerts once; the slot spares the fleet's other
    # processes the scan.
    if every_s and not await schedule.claim_run(store, "stuck", now, every_s):
        return []
    found = await stuck.alert_stuck(store, now, settings.accepted_alert_h * 3600, STUCK_BATCH)
    if found:
        # Counts only: the uuids are in the device events and message.stuck webhooks.
        alerts_log.warning(
            "%d message(s) accepted by their device over %d h ago without a result "
            "(lost task=sent reply?); see the device events",
            len(found),
            settings.accepted_alert_h,
        )
    return found


async def watch_stuck(settings: Settings, store: Database, hooks: Hooks) -> None:
    """Sweep for stuck ``accepted`` messages until cancelled."""
    backlog = False
    while True:
        # The process that claimed the slot works off a backlog without claiming again.
        every_s = 0.0 if backlog else STUCK_CHECK_S
        try:
            stuck = await sweep_stuck(settings, store, datetime.now(UTC), every_s=every_s)
        except SmssyncError as exc:
            alerts_log.warning("stuck-message check failed: %s", exc.message)
            stuck = []
        if stuck:
            hooks.wake.set()
        # A full batch means a backlog, whose next batch goes at once.
        backlog = len(stuck) >= STUCK_BATCH
        if not backlog:
            await asyncio.sleep(STUCK_CHECK_S)


async def release_campaigns(store: Database, now: datetime) -> int:
    """Release campaigns' next recipients, once per slot across processes."""
    if not await release.running(store):
        return 0
    if not await schedule.claim_run(store, "campaigns", now, RELEASE_S):
        return 0
    return await release.release_due(store, now)


async def watch_campaigns(store: Database) -> None:
    """Release campaigns' held recipients as the fleet and their windows allow, until
    cancelled."""
    while True:
        try:
            await release_campaigns(store, datetime.now(UTC))
        except SmssyncError as exc:
            log.warning("campaign release failed: %s", exc.message)
        await asyncio.sleep(RELEASE_S)


@contextlib.asynccontextmanager
async def background(settings: Settings, store: Database, hooks: Hooks) -> AsyncIterator[None]:
    """Run the dispatcher and the watches for the life of the server."""
    tasks = [
        asyncio.create_task(Dispatcher(settings, store, hooks).run(), name="smssync-webhooks"),
        asyncio.create_task(watch_liveness(settings, store, hooks), name="smssync-liveness"),
        asyncio.create_task(store.follow_changes(), name="smssync-changes"),
        asyncio.create_task(watch_campaigns(store), name="smssync-campaigns"),
    ]
    if settings.accepted_alert_h > 0:
        tasks.append(asyncio.create_task(watch_stuck(settings, store, hooks), name="smssync-stuck"))
    if settings.retention_days > 0:
        purging = watch_retention(settings, store)
        tasks.append(asyncio.create_task(purging, name="smssync-retention"))
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
