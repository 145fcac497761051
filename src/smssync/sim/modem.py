"""An AT modem on a pseudo-terminal, attached to a simulated network (spec §8.3).

The emulator owns the pty's master side; a driver opens the slave through a stable symlink
(``<dir>/ttyEMU0``), with pyserial like any modem. SMS the driver sends go to the network as
one whole message per concatenated set; SMS the network delivers are stored as DELIVER
PDUs and announced with ``+CMTI``; reports come back per part as ``+CDSI`` or ``+CDS``.

The "radio" is any backend of the simulated network: ``SimBackend`` in process (tests) or
``RemoteSimBackend`` for the network that ``smssync sim`` serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tty
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from smssync.backends.base import (
    DELIVERED_OK,
    SENT_NO_SERVICE,
    SENT_NULL_PDU,
    SENT_RADIO_OFF,
    Backend,
    DeliveryReport,
    InboundSms,
)
from smssync.gsm.alphabet import EXTENSION
from smssync.gsm.encode import encode_deliver, encode_status_report
from smssync.gsm.fields import Concat
from smssync.gsm.pdu import PduError, decode_submit
from smssync.gsm.segments import encoding_for, split, utf16_units
from smssync.sim.modem_follow import follow
from smssync.sim.modem_state import ModemState, Quirks

log = logging.getLogger("smssync.sim.modem")

#: Reports kept for sends whose result has not come back yet.
EARLY_REPORTS = 256
#: +CMS ERROR a radio result turns into.
_CMS_FOR_CODE: dict[int | None, int] = {
    SENT_NO_SERVICE: 331,
    SENT_RADIO_OFF: 331,
    SENT_NULL_PDU: 304,
}


class ModemEmulator:
    """One emulated modem: a pty, a command interpreter and a link to the network."""

    def __init__(
        self,
        radio: Backend,
        directory: Path,
        quirks: Quirks | None = None,
        name: str = "ttyEMU0",
    ) -> None:
        self.radio = radio
        self.quirks = quirks or Quirks()
        self.state = ModemState(self.quirks)
        #: The stable path a driver opens (a symlink to the current pty slave).
        self.path = Path(directory) / name
        #: Every command line received, for assertions.
        self.commands: list[str] = []
        self._master = -1
        self._slave = -1
        self._line = b""
        self._prompt: asyncio.Future[str | None] | None = None
        self._pdu = b""
        self._lines: asyncio.Queue[str] = asyncio.Queue()
        self._busy = False
        self._held_urcs: list[str] = []
        self._held_sms: list[InboundSms] = []
        self._parts: dict[tuple[str, int, int], dict[int, tuple[int, str]]] = {}
        self._reports: dict[str, tuple[str, list[int]]] = {}
        #: Reports that came before their send's result (the network can be that quick).
        self._early: dict[str, DeliveryReport] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._in_ref = 0

    # -- plugging ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Plug in and start listening to the network."""
        await self.radio.open()
        self.plug()
        self._tasks = [
            asyncio.create_task(self._interpret()),
            asyncio.create_task(self._listen()),
            asyncio.create_task(follow(self.radio, self.state)),
        ]

    async def stop(self) -> None:
        """Unplug and stop."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.unplug()
        await self.radio.close()

    def plug(self) -> None:
        """Create the pty and point the symlink at it; a power-up resets the settings."""
        self._master, self._slave = os.openpty()
        # Raw: the line discipline must not echo or translate CR; echo is the modem's job.
        tty.setraw(self._slave)
        tty.setraw(self._master)
        target = os.ttyname(self._slave)
        tmp = self.path.with_suffix(".new")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        tmp.symlink_to(target)
        tmp.replace(self.path)
        self.state.power_up()
        self._line = b""
        asyncio.get_running_loop().add_reader(self._master, self._readable)

    def unplug(self) -> None:
        """Close the pty: the driver's next read fails (EIO), like a pulled USB stick."""
        if self._master < 0:
            return
        asyncio.get_running_loop().remove_reader(self._master)
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._master = self._slave = -1
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        if self._prompt and not self._prompt.done():
            self._prompt.set_result(None)

    def reboot(self) -> None:
        """Reset the settings and print the boot banners (the driver must start over)."""
        self.state.power_up()
        for banner in ("RDY", "+CPIN: READY", "SMS Ready"):
            self._write_line(banner)

    # -- bytes in and out ----------------------------------------------------------------------

    def _readable(self) -> None:
        try:
            data = os.read(self._master, 4096)
        except OSError:
            return
        for byte in data:
            self._byte(bytes([byte]))

    def _byte(self, char: bytes) -> None:
        if self._prompt is not None and not self._prompt.done():
            if char == b"\x1a":
                self._prompt.set_result(self._pdu.decode("latin-1"))
            elif char == b"\x1b":
                self._prompt.set_result(None)
            elif char not in b"\r\n":
                self._pdu += char
            return
        if char == b"\x1b":
            self._line = b""
        elif char == b"\r":
            line, self._line = self._line.decode("latin-1").strip(), b""
            if self.state.echo:
                self._write(line.encode("latin-1") + b"\r")
            if line:
                self._lines.put_nowait(line)
        elif char != b"\n":
            self._line += char

    def _write(self, data: bytes) -> None:
        if self._master < 0:
            return
        step = 3 if self.quirks.split_writes else len(data) or 1
        for start in range(0, len(data), step):
            try:
                os.write(self._master, data[start : start + step])
            except OSError:
                return

    def _write_line(self, line: str) -> None:
        self._write(b"\r\n" + line.encode("latin-1") + b"\r\n")

    def urc(self, line: str) -> None:
        """Emit an unsolicited code now, or within the running command's reply."""
        if self._busy and self.quirks.urc_mid_reply:
            self._held_urcs.append(line)
        elif self._busy:
            self._held_urcs.append(line)  # CNMI mode 2: buffered until the link is free
        else:
            self._write_line(line)

    # -- commands ------------------------------------------------------------------------------

    async def _interpret(self) -> None:
        while True:
            line = await self._lines.get()
            self.commands.append(line)
            self._busy = True
            try:
                reply = await self._answer(line)
            except Exception:
                log.exception("emulator failed on %r", line)
                reply = ["ERROR"]
            self._reply(reply)

    def _reply(self, reply: list[str]) -> None:
        *info, final = reply
        mid = [*self._held_urcs] if self.quirks.urc_mid_reply else []
        if self.quirks.rssi_flood:
            mid.append("^RSSI: 17")
        lines = [*info[:1], *mid, *info[1:], final] if mid else reply
        if mid:
            self._held_urcs.clear()
        self._write(b"".join(b"\r\n" + x.encode("latin-1") + b"\r\n" for x in lines))
        self._busy = False
        held, self._held_urcs = self._held_urcs, []
        for urc in held:
            self._write_line(urc)
        if self._held_sms:
            self._retry_held()

    async def _answer(self, line: str) -> list[str]:
        upper = line.upper()
        if upper.startswith("AT+CMGS="):
            return await self._cmgs(line)
        reply = self.state.simple(line)
        return reply if reply is not None else ["ERROR"]

    async def _cmgs(self, line: str) -> list[str]:
        blocked = self.state.sms_blocked()
        if blocked:
            return blocked
        try:
            length = int(line.split("=", 1)[1])
        except ValueError:
            return ["+CMS ERROR: 304"]
        loop = asyncio.get_running_loop()
        self._prompt, self._pdu = loop.create_future(), b""
        self._write(b"\r\n> ")
        hex_pdu = await self._prompt
        self._prompt = None
        if hex_pdu is None:
            return ["OK"]  # ESC cancelled the send
        self.state.sends += 1
        if self.quirks.send_errors:
            return [f"+CMS ERROR: {self.quirks.send_errors.pop(0)}"]
        try:
            octets = bytes.fromhex(hex_pdu.strip())
            if len(octets) - 1 - octets[0] != length:
                return ["+CMS ERROR: 304"]
            submit = decode_submit(hex_pdu, with_smsc=True)
        except (ValueError, IndexError, PduError):
            return ["+CMS ERROR: 304"]
        if not self.state.csca and octets[0] == 0:
            return ["+CMS ERROR: 330"]
        if not self.state.registered():
            return ["+CMS ERROR: 331"]
        return await self._submit(
            submit.destination, submit.text, submit.concat, submit.status_report_request
        )

    async def _submit(
        self, to_addr: str, text: str, concat: Concat | None, report: bool
    ) -> list[str]:
        mr = self.state.next_mr()
        mrs = [mr]
        if concat is not None:
            key = (to_addr, concat.reference, concat.total)
            group = self._parts.setdefault(key, {})
            group[concat.sequence] = (mr, text)
            if len(group) < concat.total:
                return [f"+CMGS: {mr}", "OK"]
            del self._parts[key]
            mrs = [group[i][0] for i in sorted(group)]
            text = "".join(group[i][1] for i in sorted(group))
        result = await self.radio.send(to_addr, text, report)
        if not result.ok:
            return [f"+CMS ERROR: {_CMS_FOR_CODE.get(result.sent_code, 500)}"]
        if report and result.reference is not None:
            self._reports[result.reference] = (to_addr, mrs)
            early = self._early.pop(result.reference, None)
            if early is not None:
                self._report(early)
        return [f"+CMGS: {mr}", "OK"]

    # -- the network side ----------------------------------------------------------------------

    async def _listen(self) -> None:
        while True:
            try:
                async for event in self.radio.events():
                    if isinstance(event, InboundSms):
                        if not self._deliver(event):
                            self._held_sms.append(event)
                    elif isinstance(event, DeliveryReport):
                        self._report(event)
                    # The modem has it now; the network may forget it.
                    await self.radio.acknowledge(event)
            except Exception:
                log.exception("network link failed; retrying")
                await asyncio.sleep(0.5)

    def _retry_held(self) -> None:
        held, self._held_sms = self._held_sms, []
        for sms in held:
            if not self._deliver(sms):
                self._held_sms.append(sms)

    def _deliver(self, sms: InboundSms) -> bool:
        """Store an arriving SMS as DELIVER parts and announce them; False when full."""
        parts = _parts(sms.content, self.quirks.concat_16bit)
        memory = self.state.cpms[2]
        _, mt, _, _, _ = self.state.cnmi
        if mt != 2 and self.state.free(memory) < len(parts):
            return False
        self._in_ref = (self._in_ref + 1) % 65536
        bits: Literal[8, 16] = 16 if self.quirks.concat_16bit else 8
        ref = self._in_ref if bits == 16 else self._in_ref % 256
        stamp = sms.sent_at or datetime.now(UTC)
        pdus = [
            encode_deliver(
                sms.from_addr,
                text,
                stamp,
                smsc=self.state.csca or None,
                concat=Concat(ref, len(parts), i, bits) if len(parts) > 1 else None,
            )
            for i, text in enumerate(parts, start=1)
        ]
        if self.quirks.reverse_parts:
            pdus.reverse()
        for pdu in pdus:
            if mt == 2:
                length = len(pdu) // 2 - 1 - int(pdu[:2], 16)
                self.urc(f"+CMT: ,{length}\r\n{pdu}")
                continue
            index = self.state.store(memory, pdu)
            if mt == 1 and self.quirks.drop_cmti > 0:
                self.quirks.drop_cmti -= 1
            elif mt == 1 and index is not None:
                self.urc(f'+CMTI: "{memory}",{index}')
        return True

    def _report(self, report: DeliveryReport) -> None:
        found = self._reports.pop(report.reference, None)
        if found is None:
            # Its send is still on its way back from the network: keep it for _submit. The
            # network only reports sends that asked for it, so each waits a short while;
            # the bound keeps a confused network from filling memory.
            self._early[report.reference] = report
            while len(self._early) > EARLY_REPORTS:
                del self._early[next(iter(self._early))]
            return
        to_addr, mrs = found
        status = 0x00 if report.delivered_code == DELIVERED_OK else 0x41
        _, _, _, ds, _ = self.state.cnmi
        for mr in mrs:
            pdu = encode_status_report(
                mr, to_addr, report.at, report.at, status, smsc=self.state.csca or None
            )
            if ds == 1:
                length = len(pdu) // 2 - 1 - int(pdu[:2], 16)
                self.urc(f"+CDS: {length}\r\n{pdu}")
            elif ds == 2:
                memory = self.quirks.report_memory
                index = self.state.store(memory, pdu)
                if index is not None:
                    self.urc(f'+CDSI: "{memory}",{index}')


def _parts(text: str, wide_reference: bool) -> list[str]:
    """Split like a sender would; a 16-bit reference costs one more septet or unit per part."""
    parts = split(text)
    if len(parts) == 1 or not wide_reference:
        return parts
    gsm7 = encoding_for(text) == "gsm7"
    limit = 152 if gsm7 else 66
    chunks: list[str] = []
    current, used = "", 0
    for ch in text:
        cost = (2 if ch in EXTENSION else 1) if gsm7 else utf16_units(ch)
        if used + cost > limit:
            chunks.append(current)
            current, used = "", 0
        current += ch
        used += cost
    return [*chunks, current]
