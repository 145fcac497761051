"""Parsing the information lines of AT replies (TS 27.005, TS 27.007, spec §2.7)."""

from __future__ import annotations

import dataclasses
import re

from smssync.errors import BackendError


@dataclasses.dataclass(frozen=True)
class Stored:
    """One SMS or status report in a modem memory: where it is and its PDU."""

    memory: str
    index: int
    pdu: str


def fields(line: str, prefix: str) -> list[str]:
    """Split ``+CSQ: 20,99`` into ``["20", "99"]``; quotes are removed."""
    body = line[len(prefix) :].strip() if line.startswith(prefix) else line
    return [part.strip().strip('"') for part in body.split(",")]


def find(lines: list[str], prefix: str) -> list[str]:
    """Return the fields of the first line with ``prefix``; BackendError when none."""
    for line in lines:
        if line.startswith(prefix):
            return fields(line, prefix)
    raise BackendError(f"the modem's reply has no {prefix} line: {lines!r}")


def number(raw: str, what: str) -> int:
    """Read an integer field; BackendError naming the field when it is not one."""
    try:
        return int(raw)
    except ValueError:
        raise BackendError(f"{what} is not a number: {raw!r}") from None


def registration(lines: list[str], prefix: str) -> int:
    """Return the ``stat`` of ``+CREG: <n>,<stat>[,...]`` (1 home, 5 roaming)."""
    values = find(lines, prefix)
    if len(values) < 2:
        raise BackendError(f"{prefix} reply is short: {lines!r}")
    return number(values[1], f"{prefix} stat")


def signal_from_csq(lines: list[str]) -> int | None:
    """Return dBm from ``+CSQ: <rssi>,<ber>``; None for 99 (unknown)."""
    rssi = number(find(lines, "+CSQ:")[0], "+CSQ rssi")
    if rssi == 99 or not 0 <= rssi <= 31:
        return None
    return -113 + 2 * rssi


def signal_from_cesq(lines: list[str]) -> int | None:
    """Return the LTE RSRP in dBm from ``+CESQ``; None for 255 (not LTE or unknown)."""
    values = find(lines, "+CESQ:")
    if len(values) < 6:
        return None
    rsrp = number(values[5], "+CESQ rsrp")
    if rsrp == 255 or not 0 <= rsrp <= 97:
        return None
    return rsrp - 141


def level_for_dbm(dbm: int, lte: bool) -> int:
    """Return 0–4 bars, with Android's thresholds for GSM RSSI and LTE RSRP."""
    steps = (-95, -105, -115, -125) if lte else (-73, -83, -93, -109)
    for bars, floor in zip((4, 3, 2, 1), steps, strict=True):
        if dbm >= floor:
            return bars
    return 0


def battery_from_cbc(lines: list[str]) -> tuple[int, bool] | None:
    """Return (percent, charging) from ``+CBC: <bcs>,<bcl>[,<mV>]``; None for nonsense."""
    values = find(lines, "+CBC:")
    if len(values) < 2 or not values[0].isdigit() or not values[1].isdigit():
        return None
    bcs, bcl = int(values[0]), int(values[1])
    if not 0 <= bcl <= 100 or bcs > 3:
        return None
    # bcs 1 (connected, not powering) is what a charging phone module reports.
    return bcl, bcs == 1


_INDEX = re.compile(r'^\+(?:CMTI|CDSI):\s*"?([A-Z]*)"?,\s*(\d+)')


def indication(line: str) -> tuple[str, int] | None:
    """Return (memory, index) of ``+CMTI: "SM",5`` or ``+CDSI: "SR",3``."""
    match = _INDEX.match(line)
    return (match.group(1) or "SM", int(match.group(2))) if match else None


def listed(lines: list[str], memory: str) -> list[Stored]:
    """Return the SMS of an ``AT+CMGL=4`` reply: header ``+CMGL: <index>,...`` then a PDU."""
    found: list[Stored] = []
    index: int | None = None
    for line in lines:
        if line.startswith("+CMGL:"):
            index = number(fields(line, "+CMGL:")[0], "+CMGL index")
        elif index is not None:
            found.append(Stored(memory, index, line.strip()))
            index = None
    return found


def read_one(lines: list[str], memory: str, index: int) -> Stored | None:
    """Return the PDU of an ``AT+CMGR`` reply; None for an empty slot."""
    for i, line in enumerate(lines):
        if line.startswith("+CMGR:") and i + 1 < len(lines):
            return Stored(memory, index, lines[i + 1].strip())
    return None
