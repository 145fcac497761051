"""The per-URL breaker's transitions, with a clock in hand."""

from __future__ import annotations

import random

import pytest

from smssync.gateway.breaker import STRIKES, Breaker, BreakerState, Tripped
from smssync.gateway.config import ForwardConfig

POLICY = ForwardConfig(first_delay_s=10.0, factor=2.0, cap_s=40.0)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def state_of(breaker: Breaker) -> BreakerState:
    """Read the state afresh (mypy narrows an attribute it has seen compared)."""
    return breaker.state


def trip(breaker: Breaker) -> None:
    """Fail as many requests in a row as it takes to trip."""
    for _ in range(STRIKES):
        breaker.failed(probe=False)


def make() -> tuple[Breaker, Clock, list[str]]:
    clock = Clock()
    closed: list[str] = []
    breaker = Breaker(POLICY, clock, random.Random(1), lambda: closed.append("closed"))
    return breaker, clock, closed


def test_closed_lets_everything_go_and_a_success_changes_nothing() -> None:
    breaker, _, closed = make()
    assert [breaker.check() for _ in range(3)] == [False, False, False]
    breaker.succeeded()
    assert breaker.state is BreakerState.CLOSED and breaker.waiting_s is None
    assert closed == []


def test_failures_in_a_row_trip_it_an_answer_between_them_does_not() -> None:
    breaker, _, _ = make()
    for _ in range(3):
        for _ in range(STRIKES - 1):
            breaker.failed(probe=False)
        breaker.succeeded()
    assert breaker.state is BreakerState.CLOSED
    trip(breaker)
    assert state_of(breaker) is BreakerState.OPEN


def test_a_trip_opens_then_one_probe_on_the_backoff_schedule() -> None:
    breaker, clock, _ = make()
    trip(breaker)
    assert breaker.state is BreakerState.OPEN
    # Equal jitter: between half the first delay and all of it.
    assert 5.0 <= breaker.probe_at - clock.now <= 10.0
    with pytest.raises(Tripped):
        breaker.check()
    clock.now = breaker.probe_at
    assert breaker.waiting_s is None
    assert breaker.check() is True
    assert state_of(breaker) is BreakerState.HALF_OPEN
    # One probe at a time.
    with pytest.raises(Tripped):
        breaker.check()


def test_a_failed_probe_waits_longer_up_to_the_cap() -> None:
    breaker, clock, _ = make()
    trip(breaker)
    waits = []
    for _ in range(5):
        clock.now = breaker.probe_at
        assert breaker.check() is True
        breaker.failed(probe=True)
        waits.append(breaker.probe_at - clock.now)
    assert 10.0 <= waits[0] <= 20.0 and 20.0 <= waits[1] <= 40.0
    assert all(20.0 <= w <= 40.0 for w in waits[2:])
    assert breaker.failures == 6


def test_requests_admitted_before_the_trip_do_not_move_the_schedule() -> None:
    breaker, clock, _ = make()
    trip(breaker)
    probe_at = breaker.probe_at
    breaker.failed(probe=False)
    assert breaker.probe_at == probe_at and breaker.failures == 1
    clock.now = probe_at
    breaker.check()
    breaker.failed(probe=False)
    assert state_of(breaker) is BreakerState.HALF_OPEN


def test_a_successful_probe_closes_and_resumes_everything_once() -> None:
    breaker, clock, closed = make()
    trip(breaker)
    clock.now = breaker.probe_at
    breaker.check()
    breaker.succeeded()
    assert breaker.state is BreakerState.CLOSED and breaker.failures == 0
    assert closed == ["closed"]
    breaker.succeeded()
    assert closed == ["closed"]
    # Down again: the schedule starts from the first delay.
    trip(breaker)
    assert 5.0 <= breaker.probe_at - clock.now <= 10.0
