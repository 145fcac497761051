"""The AT modem backend: PDU mode over pyserial, the one with all five capabilities (§2).

Received SMS stay in the modem's memory until the gateway acknowledges them, so a crash
re-reads them; concatenated parts stay until the whole message is acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncGenerator, Callable
from datetime import UTC, datetime

from smssync.backends.at import startup
from smssync.backends.at.options import AtOptions
from smssync.backends.at.port import AtError, AtPort, PortLost, SerialTransport, Transport
from smssync.backends.at.replies import (
    Stored,
    battery_from_cbc,
    find,
    indication,
    level_for_dbm,
    listed,
    number,
    read_one,
    signal_from_cesq,
    signal_from_csq,
)
from smssync.backends.at.reports import RETRYABLE, ReportBook, sent_code_for_error
from smssync.backends.base import (
    SENT_GENERIC_FAILURE,
    SENT_NO_SERVICE,
    SENT_NULL_PDU,
    SENT_OK,
    SENT_RADIO_OFF,
    BackendEvent,
    Capabilities,
    DeliveryReport,
    DeviceStatus,
    InboundSms,
    SendResult,
)
from smssync.errors import BackendError
from smssync.gsm.concat import Reassembled, Reassembler
from smssync.gsm.encode import encode_submit_parts
from smssync.gsm.pdu import Deliver, PduError, StatusReport, decode

log = logging.getLogger("smssync.backends.at")

_Item = tuple[str, str | None] | Stored
_LOST = "\x00lost"


class AtBackend:
    """A GSM/LTE modem on a serial port."""

    def __init__(
        self,
        options: AtOptions,
        transport_factory: Callable[[], Transport] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.options = options
        self._factory = transport_factory or (
            lambda: SerialTransport(options.port, options.baudrate)
        )
        self._clock = clock
        self.state = startup.ModemState()
        self._port: AtPort | None = None
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connected = asyncio.Event()
        self._reassembler = Reassembler()
        self._groups: dict[tuple[str, int, int], set[str]] = {}
        self._in_flight: set[str] = set()
        #: Reports that settle nothing are deleted at once; the gateway never sees them.
        self._to_delete: list[str] = []
        self._book = ReportBook(options.report_window_s)
        self._concat_ref = random.randrange(256)
        self._last_send = 0.0
        # The start-up lists the store: the first sweep is one interval later.
        self._last_sweep = clock()
        self._supervisor: asyncio.Task[None] | None = None

    @property
    def capabilities(self) -> Capabilities:
        """Reports and signal always; battery only when ``AT+CBC`` answered sensibly."""
        return Capabilities(delivery_reports=True, battery=self.state.has_battery, signal=True)

    @property
    def own_number(self) -> str | None:
        """SIMs rarely know their own number (``AT+CNUM``): configure it instead."""
        return None

    # -- connection ----------------------------------------------------------------------------

    async def open(self) -> None:
        """Open the port and run the start-up sequence; BackendError when it fails."""
        self._loop = asyncio.get_running_loop()
        await self._connect()
        self._supervisor = asyncio.create_task(self._supervise())

    async def _connect(self) -> None:
        transport = await asyncio.to_thread(self._factory)
        port = AtPort(transport, self._on_urc, self._on_lost)
        try:
            await startup.start(port, self.options, self.state)
        except BaseException:
            port.close()
            raise
        self._port = port
        self._in_flight.clear()
        for stored in self.state.backlog:
            self._queue.put_nowait(stored)
        self._connected.set()

    async def close(self) -> None:
        """Stop reconnecting and release the port."""
        if self._supervisor:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        self._connected.clear()
        if self._port:
            port, self._port = self._port, None
            await asyncio.to_thread(port.close)

    def _on_urc(self, line: str, pdu: str | None) -> None:
        # Called on the reader thread. A reboot banner means every setting is gone.
        if line == "RDY" and self._port is not None:
            self._port.mark_lost("the modem rebooted")
            return
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, (line, pdu))

    def _on_lost(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, (_LOST, None))

    async def _supervise(self) -> None:
        """Reopen a lost device with backoff and rerun start-up (spec §1, pitfall 12)."""
        while True:
            await asyncio.sleep(0.05)
            port = self._port
            if port is None or not port.lost:
                continue
            self._connected.clear()
            await asyncio.to_thread(port.close)
            self._port = None
            delay = self.options.retry_delay_s
            while True:
                try:
                    await self._connect()
                    log.info("modem back on %s", self.options.port)
                    break
                except BackendError as exc:
                    log.warning("reconnect failed: %s; next try in %g s", exc.message, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self.options.reconnect_max_s)

    async def _command(self, command: str, timeout_s: float | None = None) -> list[str]:
        port = self._port
        if port is None:
            raise PortLost(f"{command}: the modem is not connected")
        return await port.command(command, timeout_s or self.options.command_timeout_s)

    # -- sending -------------------------------------------------------------------------------

    async def send(self, to_addr: str, content: str, request_report: bool) -> SendResult:
        """Send every part with ``AT+CMGS``; the result covers the whole message (§2.4)."""
        try:
            await asyncio.wait_for(self._connected.wait(), self.options.send_timeout_s)
        except TimeoutError:
            return self._failed(SENT_GENERIC_FAILURE, "the modem is not connected")
        await self._pace()
        try:
            if not self.state.radio_on:
                return self._failed(SENT_RADIO_OFF, "the radio is off (AT+CFUN)")
            if not self.state.registered:
                self.state.registered = await startup.is_registered(self._require_port())
                if not self.state.registered:
                    return self._failed(SENT_NO_SERVICE, "not registered (CREG/CEREG)")
            self._concat_ref = (self._concat_ref + 1) % 256
            try:
                parts = encode_submit_parts(to_addr, content, self._concat_ref, request_report)
            except (PduError, ValueError) as exc:
                return self._failed(SENT_NULL_PDU, f"cannot build the PDU: {exc}")
            mrs = [await self._send_part(part.length, part.pdu) for part in parts]
        except AtError as exc:
            code = sent_code_for_error(exc.kind, exc.code)
            if code == SENT_NO_SERVICE:
                self.state.registered = False
            return self._failed(code, exc.message)
        except BackendError as exc:
            return self._failed(SENT_GENERIC_FAILURE, exc.message)
        now = self._clock()
        reference = self._book.add(to_addr, mrs, now) if request_report else None
        # A report can beat the +CMGS reply home; it waits as an orphan until now.
        for settled in self._book.retry_orphans(now):
            self._queue.put_nowait(("+SETTLED", f"{settled[0]} {settled[1]}"))
        return SendResult(SENT_OK, reference, _utc(now), f"{len(mrs)} part(s), MR {mrs}")

    async def _send_part(self, length: int, pdu: str) -> int:
        for attempt in range(3):
            try:
                port = self._require_port()
                lines = await port.command(
                    f"AT+CMGS={length}", self.options.send_timeout_s, data=pdu
                )
                return number(find(lines, "+CMGS:")[0], "+CMGS reference")
            except AtError as exc:
                if (exc.kind, exc.code) not in RETRYABLE or attempt == 2:
                    raise
                await asyncio.sleep(self.options.retry_delay_s * 2**attempt)
        raise AssertionError("unreachable")

    def _require_port(self) -> AtPort:
        if self._port is None:
            raise PortLost("the modem is not connected")
        return self._port

    async def _pace(self) -> None:
        wait = self._last_send + self.options.send_interval_s - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        self._last_send = time.monotonic()

    def _failed(self, code: int, detail: str) -> SendResult:
        log.warning("send failed (%d): %s", code, detail)
        return SendResult(code, None, _utc(self._clock()), detail)

    # -- receiving -----------------------------------------------------------------------------

    async def events(self) -> AsyncGenerator[BackendEvent, None]:
        """Yield stored SMS and settled reports: the backlog first, then as they arrive."""
        tick = min(1.0, self.options.concat_timeout_s, self.options.sweep_interval_s)
        while True:
            try:
                item = await asyncio.wait_for(self._queue.get(), tick)
            except TimeoutError:
                item = None
            if isinstance(item, Stored):
                for event in self._events_of(item):
                    yield event
            elif item is not None:
                for event in await self._events_of_urc(*item):
                    yield event
            while self._to_delete:
                await self._delete_quietly(self._to_delete.pop())
            for stored in await self._sweep():
                for event in self._events_of(stored):
                    yield event
            for partial in self._reassembler.expired(self._clock(), self.options.concat_timeout_s):
                log.warning("SMS from %s is missing parts %s", partial.originator, partial.missing)
                yield self._joined(partial)

    async def _events_of_urc(self, line: str, pdu: str | None) -> list[BackendEvent]:
        if line == "+SETTLED" and pdu:
            reference, code = pdu.split()
            return [DeliveryReport(reference, int(code), _utc(self._clock()), "")]
        if line.startswith(("+CMTI:", "+CDSI:")):
            where = indication(line)
            if where is None:
                return []
            try:
                stored = await self._read(*where)
            except BackendError as exc:
                log.warning("cannot read %s: %s", line, exc.message)
                return []
            return self._events_of(stored) if stored else []
        if line.startswith(("+CMT:", "+CDS:")) and pdu:
            # Inline delivery (ds=1 or a modem that ignores mt=1): nothing to delete.
            return self._events_of(Stored("", 0, pdu))
        if line != _LOST:
            log.debug("URC %s", line)
        return []

    async def _sweep(self) -> list[Stored]:
        """List the store when due: an SMS whose ``+CMTI`` was lost would otherwise wait on
        the SIM until a restart. It runs between events, never inside a memory switch of a
        read, and the port's lock keeps it apart from sends; SMS already read and not yet
        acknowledged are in flight and skipped by _events_of."""
        now = self._clock()
        if now - self._last_sweep < self.options.sweep_interval_s or not self._connected.is_set():
            return []
        self._last_sweep = now
        try:
            return listed(await self._command("AT+CMGL=4"), self.options.storage)
        except BackendError as exc:
            log.warning("cannot list the stored SMS: %s", exc.message)
            return []

    async def _read(self, memory: str, index: int) -> Stored | None:
        async with self._memory(memory):
            return read_one(await self._command(f"AT+CMGR={index}"), memory, index)

    @contextlib.asynccontextmanager
    async def _memory(self, memory: str) -> AsyncGenerator[None, None]:
        # Reports may live in "SR": switch the read memory there and back.
        switch = memory not in ("", self.options.storage)
        if switch:
            await self._command(f'AT+CPMS="{memory}"')
        try:
            yield
        finally:
            if switch:
                await self._command(f'AT+CPMS="{self.options.storage}"')

    def _events_of(self, stored: Stored) -> list[BackendEvent]:
        handle = f"{stored.memory}:{stored.index}" if stored.memory else ""
        if handle and handle in self._in_flight:
            return []
        try:
            message = decode(stored.pdu, with_smsc=True)
        except PduError as exc:
            # Kept on the SIM for a human to look at; never deleted unread.
            log.error("undecodable PDU at %s: %s", handle, exc)
            if handle:
                self._in_flight.add(handle)
            return []
        if handle:
            self._in_flight.add(handle)
        if isinstance(message, Deliver):
            return self._received(message, handle)
        if isinstance(message, StatusReport):
            return self._reported(message, handle)
        return []  # an SMS-SUBMIT stored on the SIM: not ours to forward

    def _received(self, deliver: Deliver, handle: str) -> list[BackendEvent]:
        now = self._clock()
        c = deliver.concat
        # The same key Reassembler uses; a single SMS is (originator, 0, 1) and leaves at once.
        key = (deliver.originator, c.reference, c.total) if c else (deliver.originator, 0, 1)
        self._groups.setdefault(key, set()).add(handle)
        whole = self._reassembler.add_deliver(deliver, now)
        return [self._joined(whole)] if whole else []

    def _joined(self, whole: Reassembled) -> InboundSms:
        key = (whole.originator, whole.reference, whole.total)
        handles = sorted(h for h in self._groups.pop(key, set()) if h)
        stamp = whole.timestamp.astimezone(UTC) if whole.timestamp else None
        natural = f"{whole.originator}|{stamp.isoformat() if stamp else ''}|{whole.text}"
        return InboundSms(whole.originator, whole.text, stamp, natural, ",".join(handles))

    def _reported(self, report: StatusReport, handle: str) -> list[BackendEvent]:
        outcome = self._book.report(
            report.message_reference, report.recipient, report.status, self._clock()
        )
        if outcome is None:
            # Temporary, unmatched or not the last part: nothing for the gateway to store.
            if handle:
                self._to_delete.append(handle)
            return []
        reference, code = outcome
        return [DeliveryReport(reference, code, report.discharge_time.astimezone(UTC), handle)]

    async def acknowledge(self, event: BackendEvent) -> None:
        """Delete the stored parts or report now that the gateway has committed them."""
        for handle in filter(None, event.handle.split(",")):
            memory, _, index = handle.partition(":")
            async with self._memory(memory):
                await self._command(f"AT+CMGD={index}")
            self._in_flight.discard(handle)

    async def _delete_quietly(self, handle: str) -> None:
        with contextlib.suppress(BackendError):
            await self.acknowledge(DeliveryReport("", 0, _utc(0), handle))

    # -- status --------------------------------------------------------------------------------

    async def status(self) -> DeviceStatus:
        """Signal from CSQ (or LTE RSRP from CESQ), battery from CBC, registration."""
        dbm = signal_from_csq(await self._command("AT+CSQ"))
        lte = False
        with contextlib.suppress(AtError):
            rsrp = signal_from_cesq(await self._command("AT+CESQ"))
            if rsrp is not None:
                dbm, lte = rsrp, True
        battery: tuple[int, bool] | None = None
        if self.state.has_battery:
            with contextlib.suppress(AtError):
                battery = battery_from_cbc(await self._command("AT+CBC"))
        self.state.registered = await startup.is_registered(self._require_port())
        return DeviceStatus(
            battery_percent=battery[0] if battery else None,
            charging=battery[1] if battery else None,
            signal_dbm=dbm,
            signal_level=None if dbm is None else level_for_dbm(dbm, lte),
            registered=self.state.registered,
            service_centre=self.state.smsc,
        )


def _utc(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC)
