"""The start-up sequence of spec §2.2, run on open and after every reconnect."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time

from smssync.backends.at.options import AtOptions
from smssync.backends.at.port import AtError, AtPort, AtTimeout
from smssync.backends.at.replies import Stored, battery_from_cbc, fields, listed, registration
from smssync.errors import BackendError, PinNeeded, PinRejected, PukNeeded

log = logging.getLogger("smssync.backends.at")

#: CREG/CEREG stat values that mean "registered": 1 home, 5 roaming.
REGISTERED = (1, 5)


@dataclasses.dataclass
class ModemState:
    """What start-up learnt; ``pin_tried`` survives reconnects so a PIN is never retried."""

    pin_tried: bool = False
    registered: bool = False
    radio_on: bool = True
    has_battery: bool = False
    report_mode: int = 2
    smsc: str = ""
    backlog: list[Stored] = dataclasses.field(default_factory=list)


async def wake(port: AtPort, options: AtOptions) -> None:
    """ESC then AT until OK: clears a stale ``> `` prompt left by a crash mid-send."""
    for attempt in range(options.wake_attempts):
        port.write_raw(b"\x1b")
        try:
            await port.command("AT", timeout_s=options.wake_timeout_s)
            return
        except (AtTimeout, AtError):
            log.info("modem not answering AT (attempt %d)", attempt + 1)
    raise BackendError(f"{options.port}: the modem does not answer AT")


async def unlock(port: AtPort, options: AtOptions, state: ModemState) -> None:
    """Enter the PIN once if the SIM asks; a second request means it was wrong: stop."""
    cpin = " ".join(fields(line, "+CPIN:")[0] for line in await port.command("AT+CPIN?"))
    if "READY" in cpin:
        return
    if "PUK" in cpin:
        raise PukNeeded("the SIM is locked (SIM PUK): unlock it in a phone")
    if "PIN" not in cpin:
        raise BackendError(f"unexpected SIM state: {cpin!r}")
    if not options.pin:
        raise PinNeeded("the SIM needs a PIN: set [backend.at] pin")
    if state.pin_tried:
        raise PinRejected("the SIM still asks for its PIN: not retrying (a SIM locks after 3)")
    state.pin_tried = True
    try:
        await port.command(f'AT+CPIN="{options.pin}"', timeout_s=options.command_timeout_s)
    except AtError as exc:
        raise PinRejected(f"the SIM rejected the PIN ({exc.final}); not retrying") from None
    # The SIM is busy for a moment after the PIN (CME 14): retried by the callers' backoff.
    await asyncio.sleep(options.retry_delay_s)


async def is_registered(port: AtPort) -> bool:
    """Ask CREG and, for LTE modules, CEREG (spec §2.1)."""
    for command, prefix in (("AT+CREG?", "+CREG:"), ("AT+CEREG?", "+CEREG:")):
        try:
            if registration(await port.command(command), prefix) in REGISTERED:
                return True
        except AtError:
            continue
    return False


async def wait_registered(port: AtPort, options: AtOptions) -> bool:
    """Poll registration with backoff up to ``registration_wait_s``."""
    deadline = time.monotonic() + options.registration_wait_s
    delay = min(0.2, options.registration_wait_s)
    while True:
        if await is_registered(port):
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(delay)
        delay = min(delay * 2, 5.0)


async def retrying(port: AtPort, command: str, options: AtOptions) -> list[str]:
    """Run a command, retrying SIM/device-busy errors (CME 14, 515; CMS 314) a few times."""
    for attempt in range(4):
        try:
            return await port.command(command, timeout_s=options.command_timeout_s)
        except AtError as exc:
            busy = (exc.kind, exc.code) in {("CME", 14), ("CME", 515), ("CMS", 314)}
            if not busy or attempt == 3:
                raise
            await asyncio.sleep(options.retry_delay_s * 2**attempt)
    raise AssertionError("unreachable")


async def start(port: AtPort, options: AtOptions, state: ModemState) -> None:
    """Bring the modem to PDU mode with indications on, and list what it stored."""
    await wake(port, options)
    await port.command("ATE0")
    await port.command("AT+CMEE=1")
    await unlock(port, options, state)
    state.registered = await wait_registered(port, options)
    if not state.registered:
        log.warning("not registered after %g s; sends wait for it", options.registration_wait_s)
    try:
        state.radio_on = fields((await port.command("AT+CFUN?"))[0], "+CFUN:")[0] == "1"
    except (AtError, IndexError):
        state.radio_on = True
    await retrying(port, "AT+CMGF=0", options)
    await check_smsc(port, options, state)
    memory = options.storage
    await retrying(port, f'AT+CPMS="{memory}","{memory}","{memory}"', options)
    await choose_indications(port, options, state)
    state.has_battery = await probe_battery(port)
    lines = await retrying(port, "AT+CMGL=4", options)
    state.backlog = listed(lines, memory)


async def check_smsc(port: AtPort, options: AtOptions, state: ModemState) -> None:
    """Set the service centre when configured; warn when the modem has none (CMS 330)."""
    if options.smsc:
        await port.command(f'AT+CSCA="{options.smsc}",145')
    try:
        state.smsc = fields((await port.command("AT+CSCA?"))[0], "+CSCA:")[0]
    except (AtError, IndexError):
        state.smsc = ""
    if not state.smsc:
        log.warning("the modem has no SMS service centre: every send will fail (CMS 330)")


async def choose_indications(port: AtPort, options: AtOptions, state: ModemState) -> None:
    """Store SMS and reports and announce them (2,1,0,2,0), else reports inline (2,1,0,1,0)."""
    try:
        await port.command("AT+CNMI=2,1,0,2,0")
        state.report_mode = 2
    except AtError:
        await port.command("AT+CNMI=2,1,0,1,0")
        state.report_mode = 1


async def probe_battery(port: AtPort) -> bool:
    """Tell whether ``AT+CBC`` answers sensibly (USB sticks do not)."""
    try:
        return battery_from_cbc(await port.command("AT+CBC")) is not None
    except BackendError:
        return False
