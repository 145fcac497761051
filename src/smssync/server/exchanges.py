"""What each SMSsync exchange does to the store, once the device is known."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import zoneinfo
from datetime import UTC, datetime, timedelta, tzinfo

from smssync.addresses import looks_numeric, normalize
from smssync.protocol import replies
from smssync.protocol.inbound import Alert, InboundPost, TestIntegration, classify_post
from smssync.protocol.results import outcome, parse_result_request
from smssync.protocol.tasks import build_inbound_reply, build_send_reply, build_uuids_reply
from smssync.protocol.timestamps import parse_epoch_or_iso
from smssync.records import Device, InboundPlan, NewInbound, TaskMessage, new_outbound
from smssync.server.context import ServerContext
from smssync.store import alerts, devices, inbox, queue, results, rules, wire

log = logging.getLogger("smssync.server")

#: Longest ``message_id`` kept as the dedupe key (S-10).
MAX_MESSAGE_ID = 255


def device_zone(device: Device) -> tzinfo:
    """Return the device's zone for zone-less timestamps (S-34), UTC if unknown."""
    return _zone(device.settings.timezone)


@functools.lru_cache(maxsize=256)
def _zone(name: str) -> tzinfo:
    # Every incoming SMS asks; ZoneInfo's own cache still costs a lookup and a failed
    # name an exception each time.
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return UTC


async def _task_messages(ctx: ServerContext, claimed: list[TaskMessage]) -> list[TaskMessage]:
    # The phone is told each message's wire id, never its public uuid (S-29).
    told = await wire.wire_ids(ctx.store, [c.message_id for c in claimed if c.message_id])
    return [dataclasses.replace(c, message_id=told[c.message_id or ""]) for c in claimed]


async def post(ctx: ServerContext, device: Device, fields: dict[str, str], now: datetime) -> bytes:
    """Handle a POST or PUT without ``task``: E1, E3 or E8."""
    request = classify_post(fields, device.settings.keys)
    if isinstance(request, TestIntegration):
        await devices.record_event(ctx.store, device.id, "test_integration", {}, now)
        return replies.success()
    if isinstance(request, Alert):
        detail = {
            "message": request.message,
            "error_code": request.error_code,
            "battery_percent": request.battery_percent,
        }
        raised = await alerts.record_phone_alert(ctx.store, device.id, detail, now)
        if raised is not None and ctx.hooks is not None:
            ctx.hooks.wake.set()
        return replies.success()
    return await incoming(ctx, device, request, now)


def inbound_record(
    ctx: ServerContext, device: Device, sms: InboundPost, now: datetime
) -> NewInbound:
    """Normalise an E1 request into a record, flagging what looks wrong (S-11, S-12)."""
    flags: list[str] = []
    from_raw = sms.from_addr if sms.from_addr is not None else ""
    content = sms.content if sms.content is not None else ""
    if not from_raw.strip():
        flags.append("empty_from")
    if not content:
        flags.append("empty_message")
    sent_at = parse_epoch_or_iso(sms.sent_timestamp, device_zone(device))
    if sent_at is None:
        flags.append("missing_timestamp" if not sms.sent_timestamp else "bad_timestamp")
        sent_at = now
    message_id = sms.message_id or None
    if message_id is not None and len(message_id) <= MAX_MESSAGE_ID:
        dedupe_key = "id:" + message_id
    else:
        # No usable id: the same sender, text and timestamp is the same SMS. Without a
        # timestamp, a day bucket approximates the 24 h window of S-10. An id too long to
        # store takes part in the hash, and is kept only there.
        flags.append("missing_message_id" if message_id is None else "long_message_id")
        stamp = sms.sent_timestamp or now.strftime("day:%Y-%m-%d")
        digest = hashlib.sha256(
            "\0".join((from_raw, content, stamp, message_id or "")).encode()
        ).hexdigest()
        dedupe_key = "hash:" + digest
        message_id = None
    return NewInbound(
        device_id=device.id,
        dedupe_key=dedupe_key,
        message_id=message_id,
        from_raw=from_raw,
        from_addr=normalize(from_raw, ctx.settings.default_region) if from_raw.strip() else "",
        to_addr=sms.sent_to or "",
        content=content,
        sent_timestamp_raw=sms.sent_timestamp,
        sent_at=sent_at,
        device_label=sms.device_id,
        received_at=now,
        flags=tuple(flags),
    )


async def incoming(ctx: ServerContext, device: Device, sms: InboundPost, now: datetime) -> bytes:
    """Store an incoming SMS exactly once; reply from the server when the device wants it."""
    record = inbound_record(ctx, device, sms, now)
    plan = None if ctx.hooks is None else await ctx.hooks.plan(device, record, now)
    text = device.settings.auto_reply
    if text and device.settings.reply_from_server and looks_numeric(record.from_addr):
        # Only a phone number can be answered; M-PESA cannot (and must not be asked to).
        # The reply is queued in the transaction that stores the SMS, like a rule's.
        reply = new_outbound(record.from_addr, text, device.name, now)
        plan = plan or InboundPlan(device=device.name)
        plan = dataclasses.replace(plan, replies=(*plan.replies, reply))
    if plan is None:
        created, _ = await inbox.record_inbound(ctx.store, record)
    else:
        # Rules, replies and webhooks apply only to a new SMS, in the transaction that
        # stores it.
        created, _ = await rules.record_inbound_routed(ctx.store, record, plan)
        if created and ctx.hooks is not None:
            ctx.hooks.wake.set()
    if not created or not device.settings.reply_from_server:
        # A duplicate gets success and nothing piggybacked (S-10, S-25).
        return build_inbound_reply([])
    claimed = await queue.claim_outbound(
        ctx.store, device.id, device.settings.batch_limit, now, piggyback=True
    )
    return build_inbound_reply(await _task_messages(ctx, claimed))


async def task_send(ctx: ServerContext, device: Device, secret: str | None, now: datetime) -> bytes:
    """E4: hand out queued messages, echoing the request's secret (S-19, S-22)."""
    claimed = await queue.claim_outbound(ctx.store, device.id, device.settings.batch_limit, now)
    return build_send_reply(await _task_messages(ctx, claimed), secret)


async def public_ids(ctx: ServerContext, listed: list[str | None]) -> dict[str, str]:
    """Map the wire ids a phone named to public uuids; unknown and null ones are dropped."""
    return await wire.message_ids(ctx.store, [u for u in listed if u])


async def acknowledge(
    ctx: ServerContext,
    device_id: int,
    listed: list[str | None],
    public: dict[str, str],
    now: datetime,
) -> bytes:
    """E5: list back exactly what this device may still send (S-27, S-28), by wire id."""
    wanted = [public[u] for u in listed if u and u in public]
    accepted = await results.acknowledge(ctx.store, device_id, wanted, now) if wanted else []
    wire = {message_id: wire_id for wire_id, message_id in public.items()}
    return build_uuids_reply([wire[m] for m in accepted])


async def result_list(ctx: ServerContext, device: Device, now: datetime) -> bytes:
    """E6: the uuids whose outcome the server still waits for (S-31)."""
    uuids = await results.awaiting_results(
        ctx.store,
        device.id,
        now,
        limit=100,
        max_listings=ctx.settings.result_max_listings,
        max_age_s=int(timedelta(hours=ctx.settings.result_max_age_h).total_seconds()),
    )
    told = await wire.wire_ids(ctx.store, uuids)
    return build_uuids_reply([told[u] for u in uuids])


async def result_report(ctx: ServerContext, device: Device, body: bytes, now: datetime) -> bytes:
    """E7: apply the reported outcomes (S-32 to S-35)."""
    reports = parse_result_request(body)
    zone = device_zone(device)
    public = await wire.message_ids(ctx.store, [r.message_id for r in reports])
    # A wire id this server never gave out names no message: ignored like an unknown uuid.
    outcomes = [(public[r.message_id], outcome(r, zone)) for r in reports if r.message_id in public]
    if outcomes:
        changed = await results.record_results(
            ctx.store, device.id, outcomes, now, ctx.settings.alert_send_failures
        )
        if changed and ctx.hooks is not None:
            ctx.hooks.wake.set()
    return replies.success()
