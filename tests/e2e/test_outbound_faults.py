"""Every queued SMS sent by exactly one phone exactly once, and every status true, through
lost replies, a server and a gateway ``kill -9``, and delivery reports that come late."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.outbound_run import Outcome, Plan, run

#: Each run ends by itself (all final, or stalled); this only bounds a hang.
pytestmark = pytest.mark.timeout(400)


def check(outcome: Outcome) -> None:
    """Nothing unsent, nothing twice, and the server's word true of what the network saw."""
    print("\n" + outcome.summary())
    # A gateway killed between claiming a task and the radio never sends it (at most once).
    assert set(outcome.never_sent) <= outcome.crashed
    assert outcome.sent_twice == []
    assert outcome.untrue == []
    # The network delivers everything it is given: every SMS ends delivered on the server,
    # except one a gateway was killed while sending (it sends one at a time): its outcome is
    # unknown to the gateway, which never sends it again nor invents a result, so it stays
    # ``accepted`` (the server's stuck alert is what tells an operator).
    assert len(outcome.crashed) <= 1
    for to, status in outcome.statuses.items():
        assert status == ("accepted" if to in outcome.crashed else "delivered"), to


def test_lost_task_sent_replies(tmp_path: Path) -> None:
    # 30 % of connections closed after the request reached the server, and every second
    # task=sent reply lost so: the server accepted those SMS, the gateway never heard it.
    plan = Plan(count=90, rate=0.3, kinds=("after",), lose_every_sent=2)
    outcome = run(tmp_path, plan)
    assert outcome.faults.by_task["after sent"] >= 2
    check(outcome)


def test_mixed_faults_and_kill_9_of_server_and_gateway(tmp_path: Path) -> None:
    plan = Plan(count=120, rate=0.25, kill_server=True, kill_gateway=True)
    outcome = run(tmp_path, plan)
    assert outcome.faults.dropped_before and outcome.faults.dropped_after
    check(outcome)


def test_late_delivery_reports(tmp_path: Path) -> None:
    # Reports 5 s after sending, while the phones ask for results every 0.5 s.
    check(run(tmp_path, Plan(count=15, rate=0.0, report_delay_s=5.0, timeout_s=120)))
