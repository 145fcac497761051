"""The AT backend's settings, from ``[backend.at]`` in gateway.toml."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class AtOptions:
    """Where the modem is and how patient to be with it."""

    #: The AT port: a ``/dev/serial/by-id/...`` path, a pty, or a pyserial URL.
    port: str
    baudrate: int = 115200
    #: Entered once when the SIM asks; never retried.
    pin: str = ""
    #: Service centre to set when the SIM has none (``+CMS ERROR: 330`` otherwise).
    smsc: str = ""
    #: Message storage for AT+CPMS: "SM" (SIM), "ME" or "MT".
    storage: str = "SM"
    command_timeout_s: float = 10.0
    #: AT+CMGS can take tens of seconds on a busy network.
    send_timeout_s: float = 60.0
    registration_wait_s: float = 60.0
    #: How long a concatenated SMS waits for its missing parts.
    concat_timeout_s: float = 600.0
    #: A status report matches a part sent at most this long ago.
    report_window_s: float = 600.0
    #: Least time between two sends (pacing).
    send_interval_s: float = 0.0
    #: First delay of the busy-retry and reconnect backoffs.
    retry_delay_s: float = 0.5
    reconnect_max_s: float = 30.0
    wake_attempts: int = 5
    wake_timeout_s: float = 2.0
    #: How often the store is listed (``AT+CMGL=4``) for SMS whose ``+CMTI`` was lost.
    sweep_interval_s: float = 30.0
