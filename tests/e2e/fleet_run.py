"""A fleet on one PostgreSQL: three ``smssync serve`` processes, six simulated phones each with
its gateway, two gateways per server, and a webhook receiver. Incoming SMS reach the phones
and outgoing SMS are queued through the API; one server is killed with SIGKILL mid-run and
started again. What the fleet stored, sent and announced is then read from the database, the
simulated network and the receiver, to be compared by the test.

Everything is read straight from PostgreSQL while the run goes on: a CLI call is a Python
process of its own, which would take the CPU the servers need.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg

from smssync.records import AckMode, DeviceSettings, Scope
from smssync.server.apikeys import create_key, generate_signing_secret
from smssync.server.credentials import create_device
from smssync.store import open_store, serverkey, webhooks
from tests.e2e.hosts import Network
from tests.e2e.serverproc import Server, free_port
from tests.e2e.test_gateway_e2e import GatewayProc, SimProc, gateway_toml, wait_for
from tests.e2e.test_webhooks_delivery import Receiver

#: The key of the fleet's credential hashes: every server of a fleet is given the same.
SERVER_KEY = "5a" * 32
PHONES = tuple(f"+2547001002{n:02d}" for n in range(6))
SERVERS = 3
SENDER = "+254711000009"
EVENTS = ("message.received", "message.sent", "message.delivered", "device.alert")
#: What the phone of gw0 tells every server at once: one condition, so one alert (E8).
BATTERY = "Battery level is at 9"
FINAL = {"delivered", "undelivered", "failed", "expired", "cancelled"}
FAST = {
    "SMSSYNC_SERVER_KEY": SERVER_KEY,
    "SMSSYNC_WEBHOOK_RETRY_MS": "200",
    "SMSSYNC_WEBHOOK_TIMEOUT_S": "1",
}


@dataclasses.dataclass
class FleetOutcome:
    """What the fleet did, from the database, the simulated network and the receiver."""

    #: Texts of the incoming SMS the phones received, and how often each was stored.
    inbound: list[str]
    stored: collections.Counter[str]
    #: Recipients queued, how often the network saw each sent, and each one's status.
    recipients: list[str]
    sends: collections.Counter[str]
    statuses: dict[str, str]
    #: How often each recipient's SMS was accepted by a phone (its history).
    accepted: collections.Counter[str]
    #: The webhook deliveries the database holds: (event id, event, state, subject).
    deliveries: list[tuple[str, str, str, str]]
    #: The receiver's copies by event id: the (event, subject) of each copy.
    copies: dict[str, list[tuple[str, str]]]
    #: The alerts the database holds: (kind, device name).
    alerts: list[tuple[str, str]]
    seconds: float
    #: True when each server ran in a network namespace of its own.
    namespaces: bool = False
    #: Seconds from the start to each milestone.
    marks: dict[str, float] = dataclasses.field(default_factory=dict)

    @property
    def inbound_lost(self) -> list[str]:
        return [text for text in self.inbound if self.stored[text] == 0]

    @property
    def inbound_twice(self) -> list[str]:
        return [text for text, n in self.stored.items() if n > 1]

    @property
    def never_sent(self) -> list[str]:
        return [to for to in self.recipients if self.sends[to] == 0]

    @property
    def sent_twice(self) -> list[str]:
        return [to for to, n in self.sends.items() if n > 1]

    @property
    def accepted_twice(self) -> list[str]:
        return [to for to, n in self.accepted.items() if n > 1]

    @property
    def undelivered_events(self) -> list[str]:
        """Events the database holds that never reached the receiver."""
        return [d[0] for d in self.deliveries if d[2] != "delivered" or d[0] not in self.copies]

    @property
    def unstable_ids(self) -> list[str]:
        """Event ids whose copies differ, or one event known under several ids."""
        bad = [i for i, seen in self.copies.items() if len(set(seen)) != 1]
        ids_of: dict[tuple[str, str], set[str]] = collections.defaultdict(set)
        for event_id, seen in self.copies.items():
            ids_of[seen[0]].add(event_id)
        return bad + [f"{e}:{s}" for (e, s), ids in ids_of.items() if len(ids) > 1]

    @property
    def missing_events(self) -> list[str]:
        """Events that should exist and were never received: one message.received per
        incoming SMS, message.sent and message.delivered per outgoing one."""
        got = {seen[0] for seen in self.copies.values()}
        wanted = {("message.received", text) for text in self.inbound}
        wanted |= {(e, to) for to in self.recipients for e in EVENTS[1:3]}
        wanted.add(("device.alert", "device.battery_low:gw0"))
        return sorted(f"{e}:{s}" for e, s in wanted - got)

    def summary(self) -> str:
        """One line for the test output."""
        copies = sum(len(c) for c in self.copies.values())
        return (
            f"inbound {len(self.inbound)} (stored {sum(self.stored.values())}), outbound "
            f"{len(self.recipients)} (sent {sum(self.sends.values())}, "
            f"{dict(collections.Counter(self.statuses.values()))}), events "
            f"{len(self.deliveries)} ({copies} copies received), {self.seconds:.0f} s, "
            + ("each server in a network namespace" if self.namespaces else "on loopback")
            + f"; at {self.marks}"
        )


def _subject(event: dict[str, Any]) -> tuple[str, str]:
    """What an event is about: the text of an incoming SMS, the recipient of an outgoing."""
    data = event["data"]
    if event["type"] == "device.alert":
        return event["type"], f"{data['kind']}:{data['device']}"
    subject = data["body"] if event["type"] == "message.received" else data["to"]
    return event["type"], str(subject)


def _progress(db: psycopg.Connection[Any]) -> tuple[int, int, int, int]:
    """(incoming stored, outgoing final, deliveries, deliveries delivered)."""
    row = db.execute(
        "SELECT (SELECT count(*) FROM inbound),"
        " (SELECT count(*) FROM outbound WHERE status = ANY(%s)),"
        " (SELECT count(*) FROM webhook_deliveries),"
        " (SELECT count(*) FROM webhook_deliveries WHERE state = 'delivered')",
        (sorted(FINAL),),
    ).fetchone()
    assert row is not None
    return row[0], row[1], row[2], row[3]


async def _setup(
    tmp: Path, database_url: str, secrets: list[str], hook_url: str
) -> tuple[list[str], str]:
    """Register the phones and the receiver; return the phones' Sync URL paths and a key
    to queue SMS with."""
    store = open_store(database_url)
    await store.open()
    try:
        await serverkey.use_server_key(store, tmp / "setup", SERVER_KEY)
        now = datetime.now(UTC)
        # Handshake: a phone sends only what the server confirmed it alone holds; a short
        # lease, so that an offer lost with the killed server comes back soon.
        settings = DeviceSettings(
            ack_mode=AckMode.HANDSHAKE, lease_s=10, segments_per_minute=10_000, batch_limit=10
        )
        paths = []
        for n, secret in enumerate(secrets):
            _, issued = await create_device(store, f"gw{n}", now, secret=secret, settings=settings)
            paths.append(f"/smssync/d/{issued.token}")
        _, key = await create_key(store, "fleet", [Scope.SEND], now)
        await webhooks.add_webhook(store, hook_url, list(EVENTS), generate_signing_secret(), now)
    finally:
        await store.close()
    return paths, key


def fleet_run(
    tmp: Path,
    net: Network,
    database: str,
    inbound_per_phone: int,
    outbound: int,
    timeout_s: float = 120,
) -> FleetOutcome:
    """Run the fleet on ``net``'s hosts, one server each, on PostgreSQL database
    ``database``, until everything is final (or ``timeout_s``); return what it did."""
    database_url = net.database_url(database)
    servers = []
    for n, host in enumerate(net.hosts[:SERVERS]):
        (tmp / f"host{n}").mkdir(parents=True)
        server = Server(tmp / f"host{n}", database_url, host=host.address, wrap=host.wrap)
        # The receiver is on this machine, which webhooks may reach only when allowed.
        server.env.update(FAST, SMSSYNC_WEBHOOK_ALLOW=net.here)
        servers.append(server)
    first = servers[0]
    secrets = [f"fleet phone secret {n}" for n in range(len(PHONES))]
    receiver = Receiver(free_port(), "0.0.0.0" if net.namespaces else "127.0.0.1", net.here)
    receiver.start()
    # In this process, not with the CLI: fourteen CLI processes cost more CPU than the run.
    paths, key = asyncio.run(_setup(tmp, database_url, secrets, receiver.url + "/hook"))
    sim = SimProc(tmp, PHONES)
    gateways = []
    for n, number in enumerate(PHONES):
        (tmp / f"gw{n}").mkdir()
        url = servers[n % SERVERS].base + paths[n]
        gateways.append(GatewayProc(gateway_toml(tmp / f"gw{n}", sim, url, secrets[n], "", number)))
    texts = [f"in {n} {i}" for i in range(inbound_per_phone) for n in range(len(PHONES))]
    recipients = [f"+2547331{i:05d}" for i in range(outbound)]
    started = time.monotonic()
    marks: dict[str, float] = {}

    def mark(what: str) -> None:
        marks.setdefault(what, round(time.monotonic() - started, 1))

    db = psycopg.connect(database_url, autocommit=True)
    try:
        with ThreadPoolExecutor(SERVERS + 1) as starting:
            list(starting.map(lambda proc: proc.start(), [*servers, sim]))
        for gateway in gateways:
            gateway.start()
        mark("up")
        reply = httpx.post(
            first.base + "/api/v1/messages",
            json={"to": recipients, "body": "fleet run"},
            headers={"authorization": f"Bearer {key}"},
            timeout=60,
        )
        assert reply.status_code == 201, reply.text

        def deliver(part: list[str]) -> None:
            for text in part:
                sim.sms(text, SENDER, PHONES[int(text.split()[1])])

        half = len(texts) // 2
        deliver(texts[:half])

        def sent() -> int:
            return len({row["to"] for row in sim.outbox()})

        wait_for(lambda: sent() >= outbound // 3, timeout_s, "a third sent")
        mark("a third sent")
        servers[0].kill()
        # Its phones keep what they receive meanwhile, and forward it once it is back.
        deliver(texts[half:])
        time.sleep(1.0)
        servers[0].start()
        mark("restarted")

        def battery(server: Server) -> int:
            form = {"Task": "alert", "message": BATTERY, "secret": secrets[0]}
            return httpx.post(server.base + paths[0], data=form, timeout=30).status_code

        # The same condition through every server at once: raised once for the fleet.
        with ThreadPoolExecutor(SERVERS) as telling:
            assert list(telling.map(battery, servers)) == [200] * SERVERS
        wanted = (len(texts), outbound)
        deadline = started + timeout_s
        while time.monotonic() < deadline:
            stored, final, held, delivered = _progress(db)
            if stored == len(texts):
                mark("inbound stored")
            if final == outbound:
                mark("outbound final")
            if (stored, final) == wanted and held == delivered:
                copies = sum(1 for _ in receiver.events("/hook"))
                if copies >= held:
                    break
            time.sleep(0.5)
        outcome = _outcome(db, sim, receiver, texts, recipients)
    finally:
        db.close()
        for gateway in gateways:
            gateway.stop()
        for server in servers:
            server.stop()
        sim.stop()
        receiver.stop()
    outcome.seconds = time.monotonic() - started
    outcome.marks = marks
    outcome.namespaces = net.namespaces
    return outcome


def _outcome(
    db: psycopg.Connection[Any],
    sim: SimProc,
    receiver: Receiver,
    texts: list[str],
    recipients: list[str],
) -> FleetOutcome:
    stored = collections.Counter(row[0] for row in db.execute("SELECT content FROM inbound"))
    statuses = dict(db.execute("SELECT to_addr, status FROM outbound").fetchall())
    accepted = collections.Counter(
        row[0]
        for row in db.execute(
            "SELECT o.to_addr FROM outbound_history h JOIN outbound o ON o.id = h.outbound_id"
            " WHERE h.status = 'accepted'"
        )
    )
    deliveries = [
        (event_id, event, state, _subject(json.loads(body))[1])
        for event_id, event, state, body in db.execute(
            "SELECT event_id, event, state, body FROM webhook_deliveries"
        )
    ]
    sends = collections.Counter(
        row["to"] for row in sim.outbox() if row["sent_code"] == -1 and row["to"] in statuses
    )
    copies: dict[str, list[tuple[str, str]]] = collections.defaultdict(list)
    with receiver.lock:
        for path, _, body in receiver.received:
            if path == "/hook":
                event = json.loads(body)
                copies[event["id"]].append(_subject(event))
    alerts = [
        (kind, name)
        for kind, name in db.execute(
            "SELECT a.kind, d.name FROM alerts a JOIN devices d ON d.id = a.device_id"
        )
    ]
    return FleetOutcome(
        inbound=texts,
        stored=stored,
        recipients=recipients,
        sends=sends,
        statuses=statuses,
        accepted=accepted,
        deliveries=deliveries,
        copies=dict(copies),
        alerts=alerts,
        seconds=0.0,
    )
