"""Outgoing SMS through faults: one server, three gateways on three simulated phones.

The API queues SMS to distinct recipients; every phone polls the server through one
fault-injecting proxy; the server and a gateway can be killed with SIGKILL mid-run. At the
end each SMS must have been sent by exactly one phone exactly once, and the status the server
shows must be true of what the simulated network saw. Used by the e2e suite at a small size
and by ``bench/outbound_faults.py`` at the issue's sizes.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.serverproc import Server
from tests.e2e.test_gateway_e2e import GatewayProc, SimProc, gateway_toml, wait_for
from tests.e2e.test_gateway_faults import KINDS, FaultCounts, FaultProxy

PHONES = ("+254700000101", "+254700000102", "+254700000103")
#: Statuses that say the phone sent the SMS.
SENT_STATUSES = {"sent", "delivered", "undelivered", "delivery_unknown"}
FINAL = {"delivered", "undelivered", "failed", "expired", "cancelled"}


@dataclasses.dataclass(frozen=True)
class Plan:
    """One run: how many SMS, which faults, which kills."""

    count: int
    rate: float
    kinds: tuple[str, ...] = KINDS
    kill_server: bool = False
    kill_gateway: bool = False
    report_delay_s: float = 0.0
    #: Also lose the reply of every Nth ``task=sent`` after forwarding (0: only at random).
    lose_every_sent: int = 0
    timeout_s: float = 240.0
    #: End the run early when nothing happened to any SMS for this long (something is stuck):
    #: no status change and no history entry (a lease expiring and a new offer count).
    stall_s: float = 30.0


@dataclasses.dataclass
class Outcome:
    """What happened: per recipient, what the phones sent and what the server says."""

    queued: int
    sends: collections.Counter[str]
    statuses: dict[str, str]
    faults: FaultCounts
    seconds: float
    #: Recipients of tasks a gateway was killed while sending (its store says ``unknown``).
    crashed: frozenset[str] = frozenset()

    @property
    def never_sent(self) -> list[str]:
        """Recipients no phone sent to."""
        return [to for to in self.statuses if self.sends[to] == 0]

    @property
    def sent_twice(self) -> list[str]:
        """Recipients that got more than one copy."""
        return [to for to, n in self.sends.items() if n > 1]

    @property
    def untrue(self) -> list[str]:
        """Recipients whose server status claims a send that did not happen, or the reverse."""
        wrong = []
        for to, status in self.statuses.items():
            sent = self.sends[to] > 0
            if sent and status not in SENT_STATUSES and status != "accepted":
                wrong.append(to)
            if not sent and status in SENT_STATUSES:
                wrong.append(to)
        return wrong

    def summary(self) -> str:
        """One paragraph for the test output and the bench."""
        by_status = collections.Counter(self.statuses.values())
        faults = self.faults
        return (
            f"queued {self.queued}, sent {sum(1 for n in self.sends.values() if n)}, "
            f"sent twice {len(self.sent_twice)}, never sent {len(self.never_sent)}, "
            f"untrue statuses {len(self.untrue)}; server: {dict(sorted(by_status.items()))}; "
            f"proxy: {faults.requests} requests, {faults.dropped_before} dropped before, "
            f"{faults.dropped_after} dropped after forwarding, {faults.errors_503} 503, "
            f"{faults.truncated} truncated, {faults.delayed} delayed; by task: "
            f"{dict(sorted(faults.by_task.items()))}; {self.seconds:.0f} s"
        )


def _gateway(tmp: Path, sim: SimProc, number: str, sync_url: str, secret: str) -> GatewayProc:
    tmp.mkdir(parents=True, exist_ok=True)
    return GatewayProc(gateway_toml(tmp, sim, sync_url, secret, number=number))


def _statuses(server: Server) -> tuple[dict[str, str], int]:
    """Each recipient's status, and how many history entries all SMS have (progress)."""
    rows = server.cli_json("messages", "--direction", "out", "--limit", "100000")
    return {row["to"]: row["status"] for row in rows}, sum(len(row["history"]) for row in rows)


def run(tmp: Path, plan: Plan, server: Server | None = None) -> Outcome:
    """Run one plan to its end (every SMS final, or the timeout) and return what happened."""
    server = server or Server(tmp / "server")
    (tmp / "server").mkdir(parents=True, exist_ok=True)
    # Each device its own secret: a shared one would identify neither.
    secrets = [f"fault secret {n + 1}" for n, _ in enumerate(PHONES)]
    devices = []
    for n, _ in enumerate(PHONES):
        name = f"gw{n + 1}"
        devices.append(server.add_device(name, "--secret", secrets[n]))
        # A short lease, so that a message whose E5 never arrived is offered again soon; no
        # pacing, so that the run measures the protocol and not Android's 30 a minute.
        server.cli(
            "device", "set", name, "--ack-mode", "handshake", "--lease-s", "10",
            "--segments-per-minute", "10000", "--batch-limit", "20",
        )  # fmt: skip
    key = server.cli_json("apikey", "create", "--scope", "send")["key"]
    server.start()
    sim = SimProc(tmp, PHONES, "--report-delay-s", str(plan.report_delay_s))
    sim.start()
    proxy = FaultProxy(
        server.base, seed=11, rate=plan.rate, kinds=plan.kinds, lose_every_sent=plan.lose_every_sent
    )
    proxy.start()
    gateways = []
    for n, number in enumerate(PHONES):
        path = httpx.URL(devices[n]["sync_url"]).path
        url = f"http://127.0.0.1:{proxy.port}{path}"
        gateways.append(_gateway(tmp / f"gw{n + 1}", sim, number, url, secrets[n]))
    recipients = [f"+2547330{i:05d}" for i in range(plan.count)]
    started = time.monotonic()
    statuses: dict[str, str] = {}
    try:
        for gateway in gateways:
            gateway.start()
        reply = httpx.post(
            server.base + "/api/v1/messages",
            json={"to": recipients, "body": "fault run"},
            headers={"authorization": f"Bearer {key}"},
            timeout=60,
        )
        assert reply.status_code == 201, reply.text

        def sent() -> int:
            return len({row["to"] for row in sim.outbox()})

        if plan.kill_server:
            wait_for(lambda: sent() >= plan.count // 3, plan.timeout_s, "a third sent")
            server.kill()
            time.sleep(1.0)
            server.start()
        if plan.kill_gateway:
            wait_for(lambda: sent() >= 2 * plan.count // 3, plan.timeout_s, "two thirds sent")
            gateways[0].kill()
            time.sleep(0.5)
            gateways[0].start()

        deadline = started + plan.timeout_s
        changed_at = time.monotonic()
        steps = 0
        while time.monotonic() < deadline and time.monotonic() - changed_at < plan.stall_s:
            now, history = _statuses(server)
            if now != statuses or history != steps:
                statuses, steps, changed_at = now, history, time.monotonic()
            if len(statuses) == plan.count and all(s in FINAL for s in statuses.values()):
                break
            time.sleep(1.0)
        sends = collections.Counter(
            row["to"] for row in sim.outbox() if row["sent_code"] == -1 and row["to"] in statuses
        )
    finally:
        for gateway in gateways:
            gateway.stop()
        proxy.stop()
        sim.stop()
        server.stop()
    crashed = frozenset().union(*(_crashed(tmp / f"gw{n + 1}") for n in range(len(PHONES))))
    return Outcome(plan.count, sends, statuses, proxy.counts, time.monotonic() - started, crashed)


def _crashed(folder: Path) -> set[str]:
    """Recipients of the tasks whose send a kill interrupted, from a gateway's own store."""
    with contextlib.closing(sqlite3.connect(folder / "gateway.db")) as db:
        rows = db.execute("SELECT to_addr FROM tasks WHERE state = 'unknown'").fetchall()
    return {row[0] for row in rows}


def describe(outcome: Outcome) -> dict[str, Any]:
    """The figures of a run, for JSON output."""
    return {
        "queued": outcome.queued,
        "sent": sum(1 for n in outcome.sends.values() if n),
        "sent_twice": len(outcome.sent_twice),
        "never_sent": len(outcome.never_sent),
        "untrue": len(outcome.untrue),
        "statuses": dict(collections.Counter(outcome.statuses.values())),
        "faults": dataclasses.asdict(outcome.faults) | {"confirmed": None},
    }
