"""The gateway's local store: nothing is lost, nothing is uploaded or sent twice.

Domain verbs, each one function over one connection in one transaction (``storefile.py``
runs them); the SQL is named in ``queries.py``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

import sqlalchemy as sa

from smssync.gateway import queries as q
from smssync.gateway.records import (
    ForwardJob,
    InboundRecord,
    LocalSend,
    TaskRecord,
    TaskToSend,
    UrlCounts,
)
from smssync.gateway.storefile import StoreFile
from smssync.records import TaskMessage

#: How long before its send an early delivery report may have arrived.
EARLY_S = 120.0
#: Handed to the platform, outcome unknown (no sent code): sent, as far as G-13 goes.
SUBMITTED = "submitted"


def send_state(sent_code: int | None) -> str:
    """Return the state a send ends in: ``sent`` for -1, ``submitted`` with no code (the
    backend cannot know), ``failed`` otherwise. None of them is ever sent again (G-13)."""
    if sent_code is None:
        return SUBMITTED
    return "sent" if sent_code == -1 else "failed"


class GatewayStore(StoreFile):
    """Domain verbs over the local SQLite file."""

    # -- incoming SMS ----------------------------------------------------------------------

    async def record_inbound(
        self,
        sms: InboundRecord,
        routes: dict[str, str],
        local_sends: Iterable[tuple[str, str, str]] = (),
    ) -> int | None:
        """Store an SMS with its per-URL states and the SMS to send back, atomically.

        Returns the new row id, or None when the natural key is known (a re-read).
        """
        replies = list(local_sends)

        def run(conn: sa.Connection) -> int | None:
            row = conn.execute(sa.text(q.INSERT_INBOUND), dataclasses.asdict(sms)).first()
            if row is None:
                return None
            inbound_id = int(row[0])
            now = sms.received_at
            for url, state in routes.items():
                params = {"inbound_id": inbound_id, "sync_url": url, "state": state, "now": now}
                conn.execute(sa.text(q.INSERT_FORWARD), params)
            for kind, to_addr, content in replies:
                conn.execute(
                    sa.text(q.INSERT_LOCAL_SEND),
                    {
                        "inbound_id": inbound_id,
                        "kind": kind,
                        "to_addr": to_addr,
                        "content": content,
                        "now": now,
                    },
                )
            return inbound_id

        return await self._write(run)

    async def due_forwards(self, sync_urls: list[str], now: float, limit: int) -> list[ForwardJob]:
        """Return pending pairs for these URLs whose next attempt is due, oldest first."""
        statement = sa.text(q.DUE_FORWARDS).bindparams(sa.bindparam("urls", expanding=True))
        params = {"now": now, "limit": limit, "urls": sync_urls}

        def run(conn: sa.Connection) -> list[ForwardJob]:
            return [ForwardJob(*row) for row in conn.execute(statement, params)]

        return await self._read(run)

    async def next_due_at(self, sync_urls: list[str]) -> float | None:
        """Return when the earliest pending pair is due, None when none is pending."""
        statement = sa.text(q.NEXT_DUE).bindparams(sa.bindparam("urls", expanding=True))
        value = await self._read(lambda c: c.execute(statement, {"urls": sync_urls}).scalar())
        return None if value is None else float(value)

    async def pending_count(self) -> int:
        """Return how many pairs wait for upload."""
        value = await self._read(lambda c: c.execute(sa.text(q.PENDING_COUNT)).scalar())
        return int(value or 0)

    async def mark_forwarded(
        self, inbound_id: int, sync_url: str, now: float, replies: Sequence[TaskMessage] = ()
    ) -> list[TaskMessage]:
        """Record the server's confirmation: this pair is never uploaded again (G-7). The E2
        replies of that answer are stored with it, so a crash cannot keep one and lose the
        other; return the replies this SMS has not had yet."""
        params = {"inbound_id": inbound_id, "sync_url": sync_url, "now": now}

        def run(conn: sa.Connection) -> list[TaskMessage]:
            conn.execute(sa.text(q.MARK_FORWARDED), params)
            return _insert_tasks(conn, sync_url, replies, "reply", "listed", now, inbound_id)

        return await self._write(run)

    async def mark_failed(self, inbound_id: int, sync_url: str, next_at: float, error: str) -> None:
        """Count a failed attempt and schedule the next one."""
        params = {
            "inbound_id": inbound_id,
            "sync_url": sync_url,
            "next_at": next_at,
            "error": error[:500],
        }
        await self._write(lambda c: c.execute(sa.text(q.MARK_ATTEMPT_FAILED), params))

    async def reset_backoff(self, sync_url: str, now: float) -> None:
        """Make every waiting upload to this URL due now (connectivity returned)."""
        params = {"sync_url": sync_url, "now": now}
        await self._write(lambda c: c.execute(sa.text(q.RESET_BACKOFF), params))

    async def touch_contact(self, sync_url: str, now: float, ok: bool, error: str | None) -> None:
        """Record the last answer (any HTTP status) or transport failure of a URL."""
        params = {
            "sync_url": sync_url,
            "contact_at": now if error is None or ok else None,
            "ok_at": now if ok else None,
            "error": error,
        }
        await self._write(lambda c: c.execute(sa.text(q.TOUCH_CONTACT), params))

    async def counts(self) -> list[UrlCounts]:
        """Return per-URL counts and last contact for ``gateway status``."""

        def run(conn: sa.Connection) -> list[UrlCounts]:
            found: dict[str, UrlCounts] = {}
            for url, pending, failed, forwarded, filtered, dropped in conn.execute(
                sa.text(q.FORWARD_COUNTS)
            ):
                found[url] = UrlCounts(
                    url,
                    pending=int(pending or 0),
                    failed=int(failed or 0),
                    forwarded=int(forwarded or 0),
                    filtered=int(filtered or 0),
                    dropped=int(dropped or 0),
                )
            for url, contact, ok_at, error in conn.execute(sa.text(q.CONTACTS)):
                base = found.get(url, UrlCounts(url))
                found[url] = dataclasses.replace(
                    base, last_contact_at=contact, last_ok_at=ok_at, last_error=error
                )
            return sorted(found.values(), key=lambda c: c.sync_url)

        return await self._read(run)

    # -- task messages ---------------------------------------------------------------------

    async def record_tasks(
        self,
        sync_url: str,
        messages: list[TaskMessage],
        source: str,
        state: str,
        now: float,
        inbound_id: int = 0,
    ) -> list[TaskMessage]:
        """Remember task messages; return only those never seen before from this URL (G-13),
        or, for E2 replies (``inbound_id`` of the incoming SMS), in this SMS's reply."""

        return await self._write(
            lambda c: _insert_tasks(c, sync_url, messages, source, state, now, inbound_id)
        )

    async def set_task_states(
        self, sync_url: str, message_ids: Iterable[str], from_state: str, state: str
    ) -> None:
        """Move task messages from one state to another."""
        rows = [
            {"sync_url": sync_url, "message_id": m, "from_state": from_state, "state": state}
            for m in message_ids
        ]

        def run(conn: sa.Connection) -> None:
            if rows:
                conn.execute(sa.text(q.SET_TASK_STATE), rows)

        await self._write(run)

    async def tasks_to_send(self) -> list[TaskToSend]:
        """Return task messages cleared for sending, oldest first."""
        return await self._read(
            lambda c: [TaskToSend(*row) for row in c.execute(sa.text(q.TASKS_TO_SEND))]
        )

    async def accept_offered(
        self, sync_url: str, message_ids: Iterable[str], offered_before: float
    ) -> None:
        """Clear for sending the offered tasks the server listed, offered before the time
        given (their lease is over)."""
        rows = [
            {"sync_url": sync_url, "message_id": m, "offered_before": offered_before}
            for m in message_ids
        ]

        def run(conn: sa.Connection) -> None:
            if rows:
                conn.execute(sa.text(q.ACCEPT_OFFERED), rows)

        await self._write(run)

    async def claim_task(self, row: int) -> bool:
        """Mark a task as being sent, durably, before the radio sees it (at most once)."""
        result = await self._write(lambda c: c.execute(sa.text(q.CLAIM_TASK), {"row": row}))
        return bool(result.rowcount == 1)

    async def record_send(
        self,
        row: int,
        sent_code: int | None,
        reference: str | None,
        at: float,
    ) -> None:
        """Record the radio's result for a task message, with a report that came early.
        No sent code (None) records it ``submitted``: sent, outcome unknown, never resent."""
        params = {
            "row": row,
            "sent_code": sent_code,
            "reference": reference,
            "sent_at": at,
            "state": send_state(sent_code),
        }

        def run(conn: sa.Connection) -> None:
            conn.execute(sa.text(q.RECORD_SEND), params)
            if reference is None or sent_code != -1:
                return
            early = conn.execute(
                sa.text(q.TAKE_EARLY_REPORT), {"reference": reference, "since": at - EARLY_S}
            ).first()
            if early is not None:
                report = {"reference": reference, "code": early[0], "at": early[1]}
                conn.execute(sa.text(q.RECORD_REPORT), report)

        await self._write(run)

    async def record_report(self, reference: str, code: int, at: float, now: float) -> bool:
        """Attach a delivery report to the latest sent task with its reference; keep it for
        the next send with that reference when none waits (True when attached now)."""
        params = {"reference": reference, "code": code, "at": at, "received_at": now}

        def run(conn: sa.Connection) -> bool:
            if conn.execute(sa.text(q.RECORD_REPORT), params).rowcount == 1:
                return True
            conn.execute(sa.text(q.INSERT_EARLY_REPORT), params)
            return False

        return await self._write(run)

    async def task_records(self, sync_url: str, message_ids: list[str]) -> list[TaskRecord]:
        """Return what is known of each listed uuid, in order; unknown ones left out."""

        def run(conn: sa.Connection) -> list[TaskRecord]:
            found = []
            for message_id in message_ids:
                row = conn.execute(
                    sa.text(q.TASK_RESULT), {"sync_url": sync_url, "message_id": message_id}
                ).first()
                if row is not None:
                    found.append(TaskRecord(*row))
            return found

        return await self._read(run)

    async def unasked_results(self, sync_url: str, since: float, limit: int) -> list[TaskRecord]:
        """Return task results this URL has not taken as they are now, oldest first."""
        params = {"sync_url": sync_url, "since": since, "limit": limit}
        return await self._read(
            lambda c: [TaskRecord(*row) for row in c.execute(sa.text(q.UNASKED_RESULTS), params)]
        )

    async def mark_reported(self, records: Iterable[TaskRecord]) -> None:
        """Remember the results an E7 delivered (the server answered 200)."""
        rows = [{"row": r.row, "fingerprint": r.fingerprint} for r in records]

        def run(conn: sa.Connection) -> None:
            if rows:
                conn.execute(sa.text(q.MARK_REPORTED), rows)

        await self._write(run)

    async def prune_tasks(self, before: float) -> None:
        """Forget task messages first seen before ``before``."""
        await self._write(lambda c: c.execute(sa.text(q.PRUNE_TASKS), {"before": before}))

    # -- SMS the gateway sends by itself ---------------------------------------------------

    async def add_local_send(self, kind: str, to_addr: str, content: str, now: float) -> None:
        """Queue an SMS of the gateway's own (an alert)."""
        params = {
            "inbound_id": None,
            "kind": kind,
            "to_addr": to_addr,
            "content": content,
            "now": now,
        }
        await self._write(lambda c: c.execute(sa.text(q.INSERT_LOCAL_SEND), params))

    async def local_sends_due(self) -> list[LocalSend]:
        """Return the gateway's own SMS waiting to go out."""
        return await self._read(
            lambda c: [LocalSend(*row) for row in c.execute(sa.text(q.LOCAL_SENDS_DUE))]
        )

    async def set_local_send(self, send_id: int, state: str, sent_code: int | None) -> None:
        """Move one of the gateway's own SMS along (``sending`` is committed before sending)."""
        params = {"id": send_id, "state": state, "sent_code": sent_code}
        await self._write(lambda c: c.execute(sa.text(q.SET_LOCAL_SEND), params))


def _insert_tasks(
    conn: sa.Connection,
    sync_url: str,
    messages: Iterable[TaskMessage],
    source: str,
    state: str,
    now: float,
    inbound_id: int,
) -> list[TaskMessage]:
    fresh = []
    for message in messages:
        params = {
            "sync_url": sync_url,
            "message_id": message.message_id,
            "inbound_id": inbound_id,
            "source": source,
            "to_addr": message.to_addr,
            "content": message.content,
            "state": state,
            "now": now,
        }
        if conn.execute(sa.text(q.INSERT_TASK), params).first() is not None:
            fresh.append(message)
    return fresh
