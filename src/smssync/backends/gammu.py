"""The Gammu backend (spec §4): libGammu through python-gammu, the optional extra
``smssync[gammu]`` (GPL-2.0-or-later, so imported lazily, here only).

The gateway is the daemon: it drives ``gammu.StateMachine`` directly and polls
``GetNextSMS``; gammu-smsd is not used. libGammu blocks and is not thread-safe, so every
call runs on a worker thread, one at a time.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import AsyncGenerator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from smssync.backends.at.reports import ReportBook
from smssync.backends.base import (
    DELIVERED_NOT,
    SENT_GENERIC_FAILURE,
    SENT_NO_SERVICE,
    SENT_NULL_PDU,
    SENT_OK,
    BackendEvent,
    Capabilities,
    DeliveryReport,
    DeviceStatus,
    InboundSms,
    SendResult,
)
from smssync.errors import BackendError, DriverMissing
from smssync.gsm.segments import encoding_for

log = logging.getLogger("smssync.backends.gammu")

GAMMU_CAPABILITIES = Capabilities(delivery_reports=True, battery=True, signal=True)
_T = TypeVar("_T")


@dataclasses.dataclass(frozen=True)
class GammuOptions:
    """Which gammurc, and how often to poll."""

    config: Path
    section: int = 0
    poll_interval_s: float = 5.0
    report_window_s: float = 600.0


class GammuBackend:
    """A phone or modem that libGammu drives."""

    capabilities = GAMMU_CAPABILITIES

    def __init__(self, options: GammuOptions, clock: Callable[[], float] = time.time) -> None:
        self.options = options
        self._clock = clock
        self._gammu: Any = None
        self._machine: Any = None
        self._lock = asyncio.Lock()
        self._book = ReportBook(options.report_window_s)
        self._in_flight: set[str] = set()

    @property
    def own_number(self) -> str | None:
        """Not asked of the phone: configure it."""
        return None

    async def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if self._machine is None:
            raise BackendError("the Gammu backend is not open")
        return await self._guard(lambda: getattr(self._machine, name)(*args, **kwargs))

    async def _guard(self, work: Callable[[], _T]) -> _T:
        async with self._lock:
            try:
                return await asyncio.to_thread(work)
            except self._gammu.GSMError as exc:
                info = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
                where = info.get("Where", "gammu")
                raise BackendError(f"{where}: {info.get('Text', exc)}") from None

    async def open(self) -> None:
        """Read the gammurc and connect (``Init``)."""
        try:
            import gammu  # type: ignore[import-untyped,import-not-found,unused-ignore]
        except ImportError:
            raise DriverMissing("python-gammu", "gammu", "Gammu") from None
        self._gammu = gammu
        machine = gammu.StateMachine()
        self._machine = machine
        config = str(self.options.config)
        await self._guard(lambda: machine.ReadConfig(self.options.section, Filename=config))
        await self._guard(machine.Init)

    async def close(self) -> None:
        """Disconnect."""
        if self._machine is not None:
            machine, self._machine = self._machine, None
            try:
                await asyncio.to_thread(machine.Terminate)
            except self._gammu.GSMError:
                pass

    # -- sending -------------------------------------------------------------------------------

    async def send(self, to_addr: str, content: str, request_report: bool) -> SendResult:
        """Check registration, encode with ``EncodeSMS``, one ``SendSMS`` per part."""
        now = datetime.now(UTC)
        try:
            network = await self._call("GetNetworkInfo")
            if network.get("State") not in ("HomeNetwork", "RoamingNetwork"):
                return SendResult(SENT_NO_SERVICE, None, now, f"network: {network.get('State')}")
        except BackendError as exc:
            return SendResult(SENT_GENERIC_FAILURE, None, now, exc.message)
        info = {
            "Class": -1,
            "Unicode": encoding_for(content) == "ucs2",
            "Entries": [{"ID": "ConcatenatedTextLong", "Buffer": content}],
        }
        try:
            parts = self._gammu.EncodeSMS(info)
        except (self._gammu.GSMError, ValueError, TypeError) as exc:
            return SendResult(SENT_NULL_PDU, None, now, f"cannot encode: {exc}")
        mrs: list[int] = []
        for part in parts:
            part["SMSC"] = {"Location": 1}
            part["Number"] = to_addr
            if request_report:
                part["Type"] = "Status_Report"  # libGammu sets TP-SRR
            try:
                mrs.append(int(await self._call("SendSMS", part)))
            except BackendError as exc:
                return SendResult(SENT_GENERIC_FAILURE, None, now, exc.message)
        reference = self._book.add(to_addr, mrs, self._clock()) if request_report else None
        return SendResult(SENT_OK, reference, now, f"{len(mrs)} part(s), MR {mrs}")

    # -- receiving -----------------------------------------------------------------------------

    async def events(self) -> AsyncGenerator[BackendEvent, None]:
        """Poll ``GetNextSMS``, join parts with ``LinkSMS``, yield what is new."""
        while True:
            for event in await self._poll():
                yield event
            await asyncio.sleep(self.options.poll_interval_s)

    async def _poll(self) -> list[BackendEvent]:
        found: list[list[dict[str, Any]]] = []
        start = True
        location = 0
        while True:
            try:
                if start:
                    batch = await self._call("GetNextSMS", Start=True, Folder=0)
                else:
                    batch = await self._call("GetNextSMS", Location=location, Folder=0)
            except BackendError as exc:
                if "EMPTY" not in exc.message.upper() and "empty" not in exc.message:
                    log.debug("GetNextSMS stopped: %s", exc.message)
                break
            start = False
            location = batch[0]["Location"]
            found.append(batch)
        events: list[BackendEvent] = []
        for linked in self._gammu.LinkSMS(found):
            handles = [f"{p['Folder']}:{p['Location']}" for p in linked]
            if any(h in self._in_flight for h in handles):
                continue
            event = self._event(linked, ",".join(handles))
            if event is not None:
                self._in_flight.update(handles)
                events.append(event)
        return events

    def _event(self, parts: list[dict[str, Any]], handle: str) -> BackendEvent | None:
        first = parts[0]
        if first.get("Type") == "Status_Report":
            outcome = self._book.report(
                int(first.get("MessageReference", -1)),
                str(first.get("Number", "")),
                int(first.get("DeliveryStatus", 0x40)),
                self._clock(),
            )
            if outcome is None:
                return DeliveryReport("", DELIVERED_NOT, datetime.now(UTC), handle)
            return DeliveryReport(outcome[0], outcome[1], datetime.now(UTC), handle)
        text = "".join(str(p.get("Text") or "") for p in parts)
        stamp = first.get("DateTime")
        # python-gammu drops the SC time zone: read the naive time as this host's.
        sent_at = stamp.astimezone(UTC) if isinstance(stamp, datetime) else None
        number = str(first.get("Number", ""))
        natural = f"{number}|{sent_at.isoformat() if sent_at else ''}|{text}"
        return InboundSms(number, text, sent_at, natural, handle)

    async def acknowledge(self, event: BackendEvent) -> None:
        """Delete the stored parts (``DeleteSMS``) once the gateway has them."""
        for handle in filter(None, event.handle.split(",")):
            folder, _, location = handle.partition(":")
            await self._call("DeleteSMS", Folder=int(folder), Location=int(location))
            self._in_flight.discard(handle)

    # -- status --------------------------------------------------------------------------------

    async def status(self) -> DeviceStatus:
        """``GetSignalQuality``, ``GetBatteryCharge`` and ``GetNetworkInfo``."""
        signal = await self._call("GetSignalQuality")
        battery = await self._call("GetBatteryCharge")
        network = await self._call("GetNetworkInfo")
        dbm = signal.get("SignalStrength")
        percent = signal.get("SignalPercent")
        charge = battery.get("BatteryPercent")
        return DeviceStatus(
            battery_percent=charge if isinstance(charge, int) and charge >= 0 else None,
            charging=battery.get("ChargeState") in ("BatteryCharging", "BatteryFull"),
            signal_dbm=dbm if isinstance(dbm, int) and dbm < 0 else None,
            signal_level=min(4, percent // 20)
            if isinstance(percent, int) and percent >= 0
            else None,
            registered=network.get("State") in ("HomeNetwork", "RoamingNetwork"),
        )
