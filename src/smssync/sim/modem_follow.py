"""The emulated modem follows its phone on the network: coverage, signal and battery.

``smssync sim phone N --no-service`` (or ``--battery``) changes the phone on the network;
the modem polls that status and answers ``AT+CREG?``, ``AT+CSQ`` and ``AT+CBC`` with it, so a
driver on the pty sees what a real modem would report. Signal and battery are applied only
once the network's value differs from the one it started with, so the emulator's own
defaults (and what a test sets directly) stand until someone changes the phone.
"""

from __future__ import annotations

import asyncio
import logging

from smssync.backends.base import Backend, DeviceStatus
from smssync.sim.modem_state import ModemState

log = logging.getLogger("smssync.sim.modem")

#: How often the modem asks the network for its phone's status.
FOLLOW_INTERVAL_S = 0.5


def csq_rssi(dbm: int) -> int:
    """Return the ``+CSQ`` rssi (0–31) for a level in dBm: -113 + 2 × rssi."""
    return max(0, min(31, (dbm + 113) // 2))


def apply(state: ModemState, status: DeviceStatus, first: DeviceStatus) -> None:
    """Take the network's coverage always, signal and battery once they were changed."""
    state.in_coverage = status.registered
    if status.signal_dbm is not None and status.signal_dbm != first.signal_dbm:
        state.rssi = csq_rssi(status.signal_dbm)
    changed = (status.battery_percent, status.charging) != (first.battery_percent, first.charging)
    if status.battery_percent is not None and changed:
        state.battery = (1 if status.charging else 0, status.battery_percent, state.battery[2])


async def follow(radio: Backend, state: ModemState, interval_s: float = FOLLOW_INTERVAL_S) -> None:
    """Poll the phone's status for ever; a network that does not answer keeps the last one."""
    first: DeviceStatus | None = None
    while True:
        try:
            status = await radio.status()
        except Exception as exc:  # the network may be restarting; the modem keeps going
            log.debug("phone status unavailable: %s", exc)
        else:
            first = first or status
            apply(state, status, first)
        await asyncio.sleep(interval_s)
