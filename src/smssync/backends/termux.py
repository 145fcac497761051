"""The Termux:API backend: the gateway runs on the Android phone itself (spec §3).

Every ``termux-*`` call runs with a timeout, because battery optimisation can kill the
Termux:API app and leave the command hanging. Inbound SMS are polled by ``_id``; the cursor
moves (and is saved) only when the gateway acknowledges a stored SMS. Android gives no send
result and no delivery report here, so the capabilities say so and nothing is invented: an
accepted send has no sent code unless the operator opts in to "submitted = sent".
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import time
from collections.abc import AsyncGenerator, Sequence
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any

from smssync.backends.base import (
    SENT_GENERIC_FAILURE,
    SENT_OK,
    BackendEvent,
    Capabilities,
    DeviceStatus,
    InboundSms,
    SendResult,
)
from smssync.errors import BackendError

log = logging.getLogger("smssync.backends.termux")

TERMUX_CAPABILITIES = Capabilities(delivery_reports=False, battery=True, signal=True)
#: Rows per termux-sms-list call.
PAGE = 50
#: Old termux-sms-list (no selection) is paged back at most this far per poll.
MAX_PAGES = 20


@dataclasses.dataclass(frozen=True)
class TermuxOptions:
    """How often to poll, how long to wait for Termux:API, how fast to send."""

    poll_interval_s: float = 10.0
    command_timeout_s: float = 30.0
    sim_slot: str = ""
    send_interval_s: float = 65.0
    #: Where the ``_id`` cursor is kept between runs; None keeps it in memory.
    cursor_file: Path | None = None
    #: The phone's time zone for ``received`` (device local time); None: this host's.
    zone: tzinfo | None = None
    #: Report exit 0 of termux-sms-send as sent ``-1``; False: no sent code (spec §7).
    submitted_is_sent: bool = False


class TermuxBackend:
    """This Android phone, through the ``termux-*`` commands of Termux:API."""

    capabilities = TERMUX_CAPABILITIES

    def __init__(self, options: TermuxOptions | None = None) -> None:
        self.options = options or TermuxOptions()
        self._cursor: int | None = None
        self._yielded = 0
        self._selection: bool | None = None
        self._last_send = 0.0

    @property
    def own_number(self) -> str | None:
        """Android does not tell Termux the SIM's number reliably: configure it."""
        return None

    async def open(self) -> None:
        """Check that Termux:API answers, and load (or start) the ``_id`` cursor."""
        await self._json(["termux-battery-status"])
        saved = self._load_cursor()
        if saved is None:
            # First run: start after the newest SMS already on the phone, as the App does.
            rows = await self._list(["-t", "inbox", "-l", "1"])
            saved = max((_row_id(r) for r in rows), default=0)
            self._save_cursor(saved)
        self._cursor = saved
        self._yielded = saved

    async def close(self) -> None:
        """Nothing to release."""

    # -- commands ------------------------------------------------------------------------------

    async def _run(self, argv: Sequence[str], stdin: str | None = None) -> str:
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            raise BackendError(
                f"{argv[0]}: {exc.strerror}; install it with: pkg install termux-api"
            ) from None
        try:
            out, err = await asyncio.wait_for(
                proc.communicate(stdin.encode() if stdin is not None else None),
                self.options.command_timeout_s,
            )
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise BackendError(
                f"{argv[0]} did not answer in {self.options.command_timeout_s:g} s; "
                "is Termux:API exempt from battery optimisation?"
            ) from None
        if proc.returncode != 0:
            detail = (err or out).decode(errors="replace").strip()
            raise BackendError(f"{argv[0]} failed ({proc.returncode}): {detail}")
        return out.decode(errors="replace")

    async def _json(self, argv: Sequence[str], stdin: str | None = None) -> Any:
        text = (await self._run(argv, stdin)).strip()
        if not text:
            raise BackendError(f"{argv[0]} printed nothing")
        try:
            data = json.loads(text)
        except ValueError:
            raise BackendError(
                f"{argv[0]} printed something that is not JSON: {text[:80]!r}"
            ) from None
        if isinstance(data, dict) and "error" in data:
            raise BackendError(f"{argv[0]}: {data['error']}")
        return data

    async def _list(self, args: list[str]) -> list[dict[str, Any]]:
        data = await self._json(["termux-sms-list", *args])
        if not isinstance(data, list):
            raise BackendError("termux-sms-list did not print a list")
        return [row for row in data if isinstance(row, dict)]

    # -- receiving -----------------------------------------------------------------------------

    async def events(self) -> AsyncGenerator[BackendEvent, None]:
        """Poll the inbox for rows newer than the cursor, oldest first."""
        while True:
            for row in await self._new_rows():
                sms = self._sms(row)
                if sms is not None:
                    yield sms
                self._yielded = max(self._yielded, _row_id(row))
            await asyncio.sleep(self.options.poll_interval_s)

    async def _new_rows(self) -> list[dict[str, Any]]:
        after = max(self._yielded, self._cursor or 0)
        if self._selection is not False:
            try:
                rows = await self._list(
                    ["-t", "inbox", "--message-selection", f"_id > {after}", "-l", str(PAGE)]
                )
                self._selection = True
                return sorted((r for r in rows if _row_id(r) > after), key=_row_id)
            except BackendError as exc:
                if self._selection:
                    raise
                log.info("termux-sms-list has no --message-selection (%s); paging", exc.message)
                self._selection = False
        found: dict[int, dict[str, Any]] = {}
        for page in range(MAX_PAGES):
            rows = await self._list(["-t", "inbox", "-l", str(PAGE), "-o", str(page * PAGE)])
            found.update((_row_id(r), r) for r in rows if _row_id(r) > after)
            if len(rows) < PAGE or any(_row_id(r) <= after for r in rows):
                break
        return [found[i] for i in sorted(found)]

    def _sms(self, row: dict[str, Any]) -> InboundSms | None:
        # New Termux:API apps give "address" (and a deprecated "number"); old ones "number".
        sender = row.get("address") or row.get("number")
        body = row.get("body")
        row_id = _row_id(row)
        if not isinstance(sender, str) or not isinstance(body, str) or row_id <= 0:
            log.warning("skipping a termux-sms-list row without address, body or _id: %r", row)
            return None
        return InboundSms(
            from_addr=sender,
            content=body,
            sent_at=self._utc(row.get("received")),
            natural_key=f"termux:{row_id}",
            handle=str(row_id),
        )

    def _utc(self, raw: Any) -> datetime | None:
        if not isinstance(raw, str):
            return None
        try:
            local = datetime.strptime(raw.strip(), "%Y-%m-%d %H:%M:%S")
        except ValueError:
            return None
        if self.options.zone is not None:
            return local.replace(tzinfo=self.options.zone).astimezone(UTC)
        return local.astimezone().astimezone(UTC)  # naive: this host's local time

    async def acknowledge(self, event: BackendEvent) -> None:
        """Move the cursor past a stored SMS and save it."""
        with contextlib.suppress(ValueError):
            row_id = int(event.handle)
            if row_id > (self._cursor or 0):
                self._cursor = row_id
                self._save_cursor(row_id)

    def _load_cursor(self) -> int | None:
        path = self.options.cursor_file
        if path is None:
            return self._cursor
        try:
            return int(path.read_text().strip())
        except (OSError, ValueError):
            return None

    def _save_cursor(self, value: int) -> None:
        path = self.options.cursor_file
        if path is None:
            return
        tmp = path.with_suffix(".tmp")
        tmp.write_text(f"{value}\n")
        tmp.replace(path)

    # -- sending and status --------------------------------------------------------------------

    async def send(self, to_addr: str, content: str, request_report: bool) -> SendResult:
        """Hand the text to Android; exit 0 means submitted, never "delivered".

        Submitted is reported as sent ``-1`` only with ``submitted_is_sent``; otherwise the
        result has no sent code (None): the outcome is unknown (device-backends.md §7).
        """
        wait = self._last_send + self.options.send_interval_s - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        self._last_send = time.monotonic()
        argv = ["termux-sms-send", "-n", to_addr]
        if self.options.sim_slot:
            argv += ["-s", self.options.sim_slot]
        try:
            out = await self._run(argv, stdin=content)
        except BackendError as exc:
            return SendResult(SENT_GENERIC_FAILURE, None, datetime.now(UTC), exc.message)
        if '"error"' in out:
            return SendResult(SENT_GENERIC_FAILURE, None, datetime.now(UTC), out.strip())
        # Android's sendMultipartTextMessage gives Termux no sent intent: "submitted" is all
        # we know, and no report reference, so no delivered code is ever made up.
        code = SENT_OK if self.options.submitted_is_sent else None
        return SendResult(code, None, datetime.now(UTC), "submitted to Android")

    async def status(self) -> DeviceStatus:
        """Battery from termux-battery-status, signal from the registered cell."""
        battery = await self._json(["termux-battery-status"])
        percent = battery.get("percentage") if isinstance(battery, dict) else None
        state = battery.get("status") if isinstance(battery, dict) else None
        dbm = level = None
        registered = True
        with contextlib.suppress(BackendError):
            cells = await self._json(["termux-telephony-cellinfo"])
            cell = (
                next((c for c in cells if isinstance(c, dict) and c.get("registered")), None)
                if isinstance(cells, list)
                else None
            )
            if cell is not None:
                dbm = _int(cell.get("dbm"))
                level = _int(cell.get("level"))
        with contextlib.suppress(BackendError):
            info = await self._json(["termux-telephony-deviceinfo"])
            if isinstance(info, dict) and "sim_state" in info:
                registered = info.get("sim_state") == "ready" and bool(info.get("network_operator"))
        return DeviceStatus(
            battery_percent=_int(percent),
            charging=None if state is None else state in ("CHARGING", "FULL"),
            signal_dbm=dbm,
            signal_level=level,
            registered=registered,
        )


def _row_id(row: dict[str, Any]) -> int:
    value = row.get("_id")
    return value if isinstance(value, int) else _int(value) or 0


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return round(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None
