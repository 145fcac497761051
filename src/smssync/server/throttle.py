"""A brake on guessing credentials (issue 14, finding 6): failed authentications are limited
per source address and per target (device, Basic user, API key), in this process's memory.

Each address and target has a token bucket of ``burst`` failures, refilled at ``per_min``
a minute. Only failures take tokens, so a right credential never costs one.

- An address whose bucket is empty gets 429 before its credentials are looked at: a correct
  guess from it would not be told apart. A phone behind the guesser's own address (one NAT)
  waits with it.
- A target whose bucket is empty gets 429 for every further wrong credential, from anywhere,
  while a request with the right one still passes: someone guessing at a phone's URL never
  slows the phone.

Both are bounded by an LRU of ``entries`` buckets, so a flood of addresses or made-up
targets costs bounded memory. ``serve --workers N`` runs N processes, each with its own
buckets: the limits apply per process.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections import Counter, OrderedDict
from collections.abc import Callable

#: Buckets kept per kind (addresses, targets); the least recently failed go first.
ENTRIES = 10_000


@dataclasses.dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class Throttle:
    """Token buckets of failed authentications, per address and per target."""

    def __init__(
        self,
        burst: int,
        per_min: int,
        entries: int = ENTRIES,
        clock: Callable[[], float] = time.monotonic,
        report: Callable[[str, str], None] | None = None,
    ) -> None:
        self.burst = burst
        self.rate_s = per_min / 60
        self.entries = entries
        self.clock = clock
        self._buckets: dict[str, OrderedDict[str, _Bucket]] = {
            "address": OrderedDict(),
            "target": OrderedDict(),
        }
        #: Failed authentications seen, and requests answered 429, by kind of credential.
        self.failures: Counter[str] = Counter()
        self.throttled: Counter[str] = Counter()
        #: Told each count as ("failure" or "throttled", credential): the metrics, which
        #: add up every worker's (this module stays free of them).
        self.report = report

    def _count(self, outcome: str, credential: str) -> None:
        (self.failures if outcome == "failure" else self.throttled)[credential] += 1
        if self.report is not None:
            self.report(outcome, credential)

    @property
    def enabled(self) -> bool:
        """Whether any limit applies (a burst of 0 turns the brake off)."""
        return self.burst > 0

    def _level(self, kind: str, key: str, now: float) -> _Bucket | None:
        bucket = self._buckets[kind].get(key)
        if bucket is not None:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate_s)
            bucket.at = now
        return bucket

    def _wait_s(self, bucket: _Bucket) -> int:
        # Seconds until one token is back, whole and at least 1 (Retry-After).
        if self.rate_s <= 0:
            return 3600
        return max(1, math.ceil((1 - bucket.tokens) / self.rate_s))

    def blocked(self, address: str | None, credential: str) -> int | None:
        """Return Retry-After seconds when this address may not try now, else None."""
        if not self.enabled or address is None:
            return None
        bucket = self._level("address", address, self.clock())
        if bucket is None or bucket.tokens >= 1:
            return None
        self._count("throttled", credential)
        return self._wait_s(bucket)

    def target_blocked(self, target: str) -> int | None:
        """Return Retry-After seconds when this target may not be tried now, else None.

        For targets whose right credential must not pass while they are under attack (a
        person's password: a distributed guesser would otherwise learn the right one)."""
        if not self.enabled:
            return None
        bucket = self._level("target", target, self.clock())
        if bucket is None or bucket.tokens >= 1:
            return None
        return self._wait_s(bucket)

    def failed(self, address: str | None, target: str | None, credential: str) -> int | None:
        """Count a failed authentication; return Retry-After seconds when the address or
        the target has now run out, so the answer is 429 instead of 401 or 403."""
        self._count("failure", credential)
        if not self.enabled:
            return None
        now = self.clock()
        waits = [
            self._take(kind, key, now)
            for kind, key in (("address", address), ("target", target))
            if key is not None
        ]
        wait = max((w for w in waits if w is not None), default=None)
        if wait is not None:
            self._count("throttled", credential)
        return wait

    def _take(self, kind: str, key: str, now: float) -> int | None:
        buckets = self._buckets[kind]
        bucket = self._level(kind, key, now)
        if bucket is None:
            bucket = buckets[key] = _Bucket(float(self.burst), now)
            while len(buckets) > self.entries:
                buckets.popitem(last=False)
        buckets.move_to_end(key)
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return None
        return self._wait_s(bucket)
