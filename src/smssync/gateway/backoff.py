"""When to retry a failed upload: exponential, capped, with jitter (G-8)."""

from __future__ import annotations

import random

from smssync.gateway.config import ForwardConfig


def retry_delay_s(attempts: int, policy: ForwardConfig, rng: random.Random) -> float:
    """Return the wait before the next try after ``attempts`` failures (1 or more).

    "Equal jitter": half the exponential delay is fixed, half random, so that a crowd of SMS
    that failed together spreads out but none retries much sooner than the policy says.
    """
    exponent = max(attempts - 1, 0)
    # Exponents beyond ~60 overflow nothing useful; the cap wins long before.
    delay = min(policy.cap_s, policy.first_delay_s * policy.factor ** min(exponent, 60))
    return delay / 2 + rng.uniform(0, delay / 2)
