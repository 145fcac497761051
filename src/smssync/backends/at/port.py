"""The AT port: one reader thread that owns the device and sorts what it says (spec §2.8).

pyserial blocks, so a thread reads; the event loop only writes commands and awaits futures.
Each line is a final result code, an information line of the pending command, or an
unsolicited result code (URC) that goes to a callback even in the middle of a reply. The
``> `` prompt of ``AT+CMGS`` has no line end and is spotted in the raw buffer.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging
import re
import threading
from collections.abc import Callable
from typing import Protocol

from smssync.errors import BackendError, DriverMissing

log = logging.getLogger("smssync.backends.at")

CTRL_Z = b"\x1a"
ESC = b"\x1b"

#: Prefixes of unsolicited result codes and banners (spec §2.8).
URC_PREFIXES = (
    "+CMTI:",
    "+CMT:",
    "+CDSI:",
    "+CDS:",
    "RING",
    "+CLIP:",
    "+CREG:",
    "+CEREG:",
    "+CUSD:",
    "^RSSI:",
    "^HCSQ:",
    "^BOOT:",
    "^MODE:",
    "^SIMST:",
    "+ZPASR:",
    "+ZDONR:",
    "+WIND:",
    "+QIND:",
    "RDY",
    "+CPIN: READY",
    "SMS Ready",
    "Call Ready",
)
#: URCs whose PDU follows on the next line.
TWO_LINE_URCS = ("+CMT:", "+CDS:")
_FINAL = re.compile(r"^(OK|ERROR|NO CARRIER|\+CME ERROR: ?(.*)|\+CMS ERROR: ?(.*))$")


class Transport(Protocol):
    """A byte pipe to the modem; ``read`` returns b"" on its short timeout."""

    def read(self, size: int) -> bytes:
        """Read what is there; raise OSError when the device is gone."""
        ...

    def write(self, data: bytes) -> None:
        """Write all of ``data``; raise OSError when the device is gone."""
        ...

    def close(self) -> None:
        """Release the device."""
        ...


class SerialTransport:
    """pyserial, with its errors turned into OSError so the port sees one kind of loss."""

    def __init__(self, path: str, baudrate: int = 115200) -> None:
        try:
            import serial  # type: ignore[import-untyped]  # the optional extra smssync[serial]
        except ImportError:
            raise DriverMissing("pyserial", "serial", "AT modem") from None

        self._serial_error: type[Exception] = serial.SerialException
        try:
            self._serial = serial.serial_for_url(path, baudrate=baudrate, timeout=0.1)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise BackendError(f"cannot open {path}: {exc}") from None

    def read(self, size: int) -> bytes:
        """Read up to ``size`` bytes within the port's timeout."""
        try:
            return bytes(self._serial.read(max(1, self._serial.in_waiting or 1)))
        except (self._serial_error, TypeError, AttributeError) as exc:
            # pyserial raises TypeError/AttributeError when the port is closed under it.
            raise OSError(str(exc)) from None

    def write(self, data: bytes) -> None:
        """Write and flush."""
        try:
            self._serial.write(data)
            self._serial.flush()
        except self._serial_error as exc:
            raise OSError(str(exc)) from None

    def close(self) -> None:
        """Close the port; a vanished device is already closed."""
        try:
            self._serial.close()
        except (self._serial_error, OSError):
            pass


class AtError(BackendError):
    """The modem answered a command with an error."""

    def __init__(self, command: str, final: str, sent_code: int = 1) -> None:
        super().__init__(f"{command}: {final}", sent_code=sent_code)
        self.command = command
        self.final = final
        match = _FINAL.match(final)
        #: "CME", "CMS" or "" for a plain ERROR.
        self.kind = "CME" if final.startswith("+CME") else "CMS" if final.startswith("+CMS") else ""
        raw = (match.group(2) or match.group(3) or "") if match else ""
        #: The numeric error, or None (plain ERROR, or a verbose text).
        self.code = int(raw) if raw.strip().isdigit() else None


class AtTimeout(BackendError):
    """The modem did not answer in time."""


class PortLost(BackendError):
    """The modem's device went away."""


@dataclasses.dataclass
class _Pending:
    command: str
    prefix: str
    future: concurrent.futures.Future[list[str]]
    data: bytes | None
    lines: list[str] = dataclasses.field(default_factory=list)


def response_prefix(command: str) -> str:
    """Return the prefix of a command's information lines: ``AT+CMGR=5`` gives ``+CMGR:``."""
    match = re.match(r"^AT([+^][A-Z]+)", command.upper())
    return f"{match.group(1)}:" if match else ""


class AtPort:
    """Runs one command at a time over a transport and routes URCs to ``on_urc``."""

    def __init__(
        self,
        transport: Transport,
        on_urc: Callable[[str, str | None], None],
        on_lost: Callable[[], None] | None = None,
    ) -> None:
        self._transport = transport
        self._on_urc = on_urc
        self._on_lost = on_lost
        self._lock = asyncio.Lock()
        self._state = threading.Lock()
        self._pending: _Pending | None = None
        self._buffer = b""
        self._urc_header: str | None = None
        self._closed = threading.Event()
        self.lost = False
        self._thread = threading.Thread(target=self._read_loop, name="smssync-at", daemon=True)
        self._thread.start()

    async def command(
        self, command: str, timeout_s: float = 10.0, data: str | None = None
    ) -> list[str]:
        """Send one command and return its information lines; AtError on an error code.

        With ``data`` the command waits for the ``> `` prompt, then ``data`` and Ctrl-Z go out.
        """
        async with self._lock:
            if self.lost or self._closed.is_set():
                raise PortLost(f"{command}: the modem is gone")
            future: concurrent.futures.Future[list[str]] = concurrent.futures.Future()
            body = data.encode("ascii") + CTRL_Z if data is not None else None
            pending = _Pending(command, response_prefix(command), future, body)
            with self._state:
                self._pending = pending
            try:
                self._write(command.encode("ascii") + b"\r")
                return await asyncio.wait_for(asyncio.wrap_future(future), timeout_s)
            except TimeoutError:
                if body is not None:
                    # A half-typed PDU would swallow the next command: cancel the prompt.
                    self._write_quietly(ESC)
                raise AtTimeout(f"{command}: no answer in {timeout_s:g} s") from None
            finally:
                with self._state:
                    self._pending = None

    def write_raw(self, data: bytes) -> None:
        """Write bytes outside any command (ESC to clear a stale prompt)."""
        self._write(data)

    def close(self) -> None:
        """Stop the reader and release the device."""
        self._closed.set()
        # The reader wakes within the transport's read timeout; closing under it confuses
        # pyserial.
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=2.0)
        self._transport.close()

    # -- reader thread -----------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        try:
            self._transport.write(data)
        except OSError as exc:
            self._mark_lost(str(exc))
            raise PortLost(f"write failed: {exc}") from None

    def _write_quietly(self, data: bytes) -> None:
        try:
            self._transport.write(data)
        except OSError:
            pass

    def _read_loop(self) -> None:
        while not self._closed.is_set():
            try:
                chunk = self._transport.read(256)
            except OSError as exc:
                if not self._closed.is_set():
                    self._mark_lost(str(exc))
                return
            if chunk:
                self._buffer += chunk
                self._drain()

    def mark_lost(self, reason: str) -> None:
        """Treat the device as gone (it rebooted): fail the pending command, call on_lost."""
        self._mark_lost(reason)

    def _mark_lost(self, reason: str) -> None:
        if self.lost:
            return
        self.lost = True
        log.warning("modem lost: %s", reason)
        with self._state:
            pending = self._pending
        if pending and not pending.future.done():
            pending.future.set_exception(PortLost(f"{pending.command}: modem lost ({reason})"))
        if self._on_lost:
            self._on_lost()

    def _drain(self) -> None:
        while True:
            self._buffer = self._buffer.lstrip(b"\r\n")
            if self._buffer.startswith(b">"):
                self._buffer = self._buffer[2:] if self._buffer[1:2] == b" " else self._buffer[1:]
                self._prompt()
                continue
            ends = [i for i in (self._buffer.find(b"\r"), self._buffer.find(b"\n")) if i >= 0]
            if not ends:
                return
            end = min(ends)
            line = self._buffer[:end].decode("latin-1").strip()
            self._buffer = self._buffer[end + 1 :]
            if line:
                self._line(line)

    def _prompt(self) -> None:
        with self._state:
            pending = self._pending
        if pending is None or pending.data is None:
            log.debug("unexpected prompt")
            return
        data, pending.data = pending.data, None
        self._write_quietly(data)

    def _line(self, line: str) -> None:
        if self._urc_header is not None:
            header, self._urc_header = self._urc_header, None
            self._on_urc(header, line)
            return
        with self._state:
            pending = self._pending
        if pending is not None:
            if line == pending.command or (pending.data is None and line == "> "):
                return  # our echo
            final = _FINAL.match(line)
            if final:
                self._finish(pending, line)
                return
            if pending.prefix and line.startswith(pending.prefix):
                pending.lines.append(line)
                return
        if line.startswith(URC_PREFIXES):
            if line.startswith(TWO_LINE_URCS):
                self._urc_header = line
            else:
                self._on_urc(line, None)
            return
        if pending is not None:
            pending.lines.append(line)
        else:
            log.debug("stray line from modem: %r", line)

    @staticmethod
    def _finish(pending: _Pending, final: str) -> None:
        if pending.future.done():
            return
        if final == "OK":
            pending.future.set_result(pending.lines)
        else:
            pending.future.set_exception(AtError(pending.command, final))
