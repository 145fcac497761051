"""One retry breaker per Sync URL: while a server is down, one probe at a time (G-8).

Without it every pending SMS retried on its own schedule, so a backlog of thousands hammered
a server that was down with thousands of refused connections. States::

    closed ──failures──▶ open ──probe due──▶ half-open ──success──▶ closed
                          ▲                     │
                          └─────────────────────┘   (the next probe waits longer)

A failure is a connectivity one: no HTTP answer (refused, timed out, cut) or a 5xx. Any other
answer, 4xx included, shows the server is there. It takes ``STRIKES`` failures in a row, with
no answer between them, to trip: a connection cut now and then on a flaky link is not an
outage, and pausing every upload for it made a lossy link slower, not lighter. The probe
schedule is G-8's backoff (first delay, factor, cap, jitter) counted in probes, not per SMS;
when the probe succeeds every request goes at once (G-8: the backoff resets when
connectivity returns).
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable

from smssync.errors import ProtocolError
from smssync.gateway.backoff import retry_delay_s
from smssync.gateway.config import ForwardConfig

#: Failures in a row, with no answer between them, that trip a closed breaker.
STRIKES = 3


class BreakerState(enum.Enum):
    """Where a Sync URL's breaker stands."""

    #: Requests go as they come.
    CLOSED = "closed"
    #: The URL is down: requests wait for the next probe.
    OPEN = "open"
    #: One request, the probe, is on its way; the others wait for its outcome.
    HALF_OPEN = "half-open"


class Tripped(ProtocolError):
    """The Sync URL is down: waiting for the next probe."""


class Breaker:
    """Decide which requests to one Sync URL may go while it fails."""

    def __init__(
        self,
        policy: ForwardConfig,
        clock: Callable[[], float],
        rng: random.Random,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.policy = policy
        self.clock = clock
        self.rng = rng
        self.on_close = on_close
        self.state = BreakerState.CLOSED
        #: Failures in a row while closed.
        self.strikes = 0
        #: Failed probes in a row since it tripped (the trip counts as one).
        self.failures = 0
        #: When the next probe may go (meaningful while open).
        self.probe_at = 0.0

    @property
    def waiting_s(self) -> float | None:
        """Seconds until a probe may go; None when requests may go now."""
        if self.state is BreakerState.CLOSED:
            return None
        if self.state is BreakerState.HALF_OPEN:
            return max(self.probe_at - self.clock(), 0.0) or self.policy.first_delay_s
        wait = self.probe_at - self.clock()
        return wait if wait > 0 else None

    def check(self) -> bool:
        """Let a request go, or raise Tripped (nothing is sent): always while closed, as the
        probe once it is due. Return whether it is the probe."""
        if self.state is BreakerState.CLOSED:
            return False
        if self.state is BreakerState.OPEN and self.clock() >= self.probe_at:
            self.state = BreakerState.HALF_OPEN
            return True
        raise Tripped(f"{Tripped.__doc__} (probe in {max(self.probe_at - self.clock(), 0):.1f} s)")

    def succeeded(self) -> None:
        """Any HTTP answer but a 5xx: the URL is up, everything may go."""
        was_down = self.state is not BreakerState.CLOSED
        self.state = BreakerState.CLOSED
        self.strikes = 0
        self.failures = 0
        if was_down and self.on_close is not None:
            self.on_close()

    def failed(self, probe: bool) -> None:
        """No answer, or a 5xx. Once tripped, a request admitted before the trip changes
        nothing: only the probe's outcome moves the schedule."""
        if self.state is not BreakerState.CLOSED and not probe:
            return
        if self.state is BreakerState.CLOSED:
            self.strikes += 1
            if self.strikes < STRIKES:
                return
        self.failures += 1
        self.state = BreakerState.OPEN
        self.probe_at = self.clock() + retry_delay_s(self.failures, self.policy, self.rng)
