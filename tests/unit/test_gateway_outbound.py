"""Task state transitions on the gateway, one poll round at a time, with a clock in hand.

The server is a function behind httpx.MockTransport that reads and writes with
``smssync.protocol``; the store is a real SQLite file; the radio is the simulated network.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from smssync.errors import ProtocolError
from smssync.gateway.client import SyncClient
from smssync.gateway.config import GatewayConfig, parse_config
from smssync.gateway.outbound import UNASKED_LIMIT, Outbound
from smssync.gateway.records import InboundRecord
from smssync.gateway.store import GatewayStore
from smssync.protocol import results, tasks
from smssync.records import MessageResult, TaskMessage
from smssync.sim.backend import SimBackend
from smssync.sim.network import SimNetwork

GATEWAY_NUMBER = "+254700000100"
UUID_A = "aaaaaaaa-1111-4111-8111-111111111111"
UUID_B = "bbbbbbbb-2222-4222-8222-222222222222"


@dataclasses.dataclass
class Server:
    """E4 to E7 only; each knob says how the next exchanges go."""

    queue: list[TaskMessage] = dataclasses.field(default_factory=list)
    #: E5 is processed (accepted) but its reply is lost.
    lose_sent_reply: bool = False
    #: Uuids E5 leaves out of its reply (cancelled or expired meanwhile).
    unlist: set[str] = dataclasses.field(default_factory=set)
    listing: list[str] = dataclasses.field(default_factory=list)
    result_status: int = 200
    e7: list[list[MessageResult]] = dataclasses.field(default_factory=list)
    accepted: list[str] = dataclasses.field(default_factory=list)

    def handler(self, request: httpx.Request) -> httpx.Response:
        task = request.url.params.get("task")
        if task == "send":
            reply = tasks.build_send_reply(self.queue, None)
            self.queue = []
            return httpx.Response(200, content=reply)
        if task == "sent":
            ids = [
                i for i in tasks.parse_sent_request(request.content) if i and i not in self.unlist
            ]
            self.accepted += ids
            if self.lose_sent_reply:
                raise httpx.ReadError("connection closed after the request was forwarded")
            return httpx.Response(200, content=tasks.build_uuids_reply(ids))
        if task == "result" and request.method == "GET":
            return httpx.Response(200, content=tasks.build_uuids_reply(self.listing))
        if task == "result":
            self.e7.append(results.parse_result_request(request.content))
            return httpx.Response(self.result_status, content=b'{"payload":{"success":true}}')
        return httpx.Response(404)


@dataclasses.dataclass
class Clock:
    now: float = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def gateway_config(tmp: Path) -> GatewayConfig:
    text = f"""
store = "{tmp / "gw.db"}"
[device]
own_number = "{GATEWAY_NUMBER}"
[tasks]
lease_s = 300
[[sync_urls]]
title = "main"
url = "http://server.test/s"
"""
    return parse_config(text, "test.toml")


Rounds = Callable[[Outbound, SyncClient, Clock, SimNetwork], Awaitable[None]]


def run(tmp: Path, server: Server, rounds: Rounds) -> SimNetwork:
    """Set up store, client and Outbound, then let ``rounds`` drive them."""
    cfg = gateway_config(tmp)
    net = SimNetwork(seed=1)
    clock = Clock()

    async def main() -> None:
        store = GatewayStore(Path(cfg.store))
        await store.open()
        client = SyncClient(cfg.sync_urls[0], transport=httpx.MockTransport(server.handler))

        async def compose(kind: str, content: str) -> str:
            return content

        outbound = Outbound(cfg, SimBackend(net, GATEWAY_NUMBER), store, clock, compose)
        try:
            await rounds(outbound, client, clock, net)
        finally:
            await client.close()
            await store.close()

    asyncio.run(main())
    return net


async def poll(outbound: Outbound, client: SyncClient) -> None:
    """One round; a lost reply ends it as it ends the gateway's."""
    try:
        await outbound.poll(client)
    except ProtocolError:
        pass


def sent_texts(net: SimNetwork) -> list[str]:
    return [s.content for s in net.outbox if s.from_addr == GATEWAY_NUMBER]


def test_an_offered_task_listed_after_the_lease_is_sent_once_and_reported(
    tmp_path: Path,
) -> None:
    server = Server(queue=[TaskMessage("+254744000001", "hello", UUID_A)], lose_sent_reply=True)

    async def rounds(outbound: Outbound, client: SyncClient, clock: Clock, _: SimNetwork) -> None:
        await poll(outbound, client)  # E4, E5 accepted but its reply lost: offered
        server.lose_sent_reply = False
        server.listing = [UUID_A]
        clock.now += 10
        await poll(outbound, client)  # listed, but within the lease: maybe only dispatched
        assert sent_texts(net_of(outbound)) == []
        clock.now += 300
        await poll(outbound, client)  # listed after the lease: accepted, so sent
        clock.now += 300
        await poll(outbound, client)  # listed again: reported again, never sent again

    net = run(tmp_path, server, rounds)
    assert server.accepted == [UUID_A]
    assert sent_texts(net) == ["hello"]
    # The round that sent it reported it in its own E7, and so does the next (G-15).
    assert [[e.message_id for e in post] for post in server.e7] == [[], [UUID_A], [UUID_A]]
    assert server.e7[1][0].sent_code == -1


def net_of(outbound: Outbound) -> SimNetwork:
    backend = outbound.backend
    assert isinstance(backend, SimBackend)
    return backend.network


def test_an_offered_task_offered_again_waits_a_new_lease(tmp_path: Path) -> None:
    offer = TaskMessage("+254744000001", "hello", UUID_A)
    server = Server(queue=[offer], lose_sent_reply=True)

    async def rounds(outbound: Outbound, client: SyncClient, clock: Clock, _: SimNetwork) -> None:
        await poll(outbound, client)
        clock.now += 400
        # The lease ran out (the E5 never arrived) and the server offers it again.
        server.queue = [offer]
        await poll(outbound, client)
        server.lose_sent_reply = False
        server.listing = [UUID_A]
        clock.now += 10
        await poll(outbound, client)

    net = run(tmp_path, server, rounds)
    assert sent_texts(net) == []


def test_an_unlisted_task_is_sent_only_once_offered_and_listed_again(tmp_path: Path) -> None:
    offer = TaskMessage("+254744000001", "hello", UUID_A)
    server = Server(queue=[offer], unlist={UUID_A})

    async def rounds(outbound: Outbound, client: SyncClient, clock: Clock, net: SimNetwork) -> None:
        await poll(outbound, client)  # E5 answered without it: unlisted
        server.listing = [UUID_A]
        clock.now += 400
        # A task=result listing proves acceptance of an offered task only, not an unlisted one.
        await poll(outbound, client)
        assert sent_texts(net) == []
        server.unlist = set()
        server.queue = [offer]
        await poll(outbound, client)  # offered again and listed this time: sent
        server.queue = [offer]
        await poll(outbound, client)  # offered once more: never sent twice (G-13)

    net = run(tmp_path, server, rounds)
    assert sent_texts(net) == ["hello"]


def test_a_failed_send_is_reported_with_its_code_and_never_retried(tmp_path: Path) -> None:
    offer = TaskMessage("+254744000001", "hello", UUID_A)
    server = Server(queue=[offer], listing=[UUID_A])

    async def rounds(outbound: Outbound, client: SyncClient, clock: Clock, net: SimNetwork) -> None:
        net.knobs.update({"send_failure": 1.0, "send_failure_code": 4})
        await poll(outbound, client)  # listed, sent, the radio says no service: failed
        net.knobs.update({"send_failure": 0.0})
        server.queue = [offer]
        await poll(outbound, client)  # offered again: a failed task is not sent again (G-13)

    net = run(tmp_path, server, rounds)
    # The one attempt, which the network refused.
    assert [(s.content, s.sent_code) for s in net.outbox] == [("hello", 4)]
    assert [[(e.message_id, e.sent_code) for e in post] for post in server.e7] == [
        [(UUID_A, 4)],
        [(UUID_A, 4)],
    ]
    entry = server.e7[0][0]
    assert entry.sent_message == "Failed to send SMS because service is currently unavailable"
    assert entry.delivered_code is None


def test_a_task_being_sent_when_the_gateway_stopped_is_never_sent_again(tmp_path: Path) -> None:
    offer = TaskMessage("+254744000001", "hello", UUID_A)

    async def main() -> None:
        store = GatewayStore(tmp_path / "gw.db")
        await store.open()
        await store.record_tasks("main", [offer], "task", "listed", 1.0)
        [task] = await store.tasks_to_send()
        assert await store.claim_task(task.row)
        # Stopped here (kill -9): the radio may or may not have sent it.
        await store.close()
        store = GatewayStore(tmp_path / "gw.db")
        await store.open()
        try:
            [record] = await store.task_records("main", [UUID_A])
            assert record.state == "unknown"
            assert await store.tasks_to_send() == []
            # Offered again by a server that never heard of the send: not fresh, not sent.
            assert await store.record_tasks("main", [offer], "task", "offered", 2.0) == []
            # Not reported, so no result is invented: the server's stuck alert tells a person.
            assert await store.unasked_results("main", 0.0, 10) == []
        finally:
            await store.close()

    asyncio.run(main())


def test_results_are_reported_until_the_server_takes_them_then_unasked_on_change(
    tmp_path: Path,
) -> None:
    server = Server(queue=[TaskMessage("+254744000001", "hello", UUID_A)])

    async def rounds(outbound: Outbound, client: SyncClient, clock: Clock, _: SimNetwork) -> None:
        server.result_status = 503
        await poll(outbound, client)  # sent; E7 fails: still owed
        server.result_status = 200
        await poll(outbound, client)  # not listed, but owed: sent unasked
        await poll(outbound, client)  # taken: nothing owed, the POST still goes, empty
        record = (await outbound.store.task_records("main", [UUID_A]))[0]
        reference = await reference_of(outbound.store, record.row)
        # A delivery report long after the server stopped asking: reported unasked.
        await outbound.store.record_report(reference, -1, clock.now, clock.now)
        await poll(outbound, client)
        await poll(outbound, client)

    run(tmp_path, server, rounds)
    ids = [[e.message_id for e in post] for post in server.e7]
    assert ids == [[UUID_A], [UUID_A], [], [UUID_A], []]
    assert server.e7[1][0].delivered_code is None
    assert server.e7[3][0].delivered_code == -1


async def reference_of(store: GatewayStore, row: int) -> str:
    """The radio's reference of a sent task (a short read beside the store's connection)."""
    with sqlite3.connect(store.path) as conn:
        (value,) = conn.execute("SELECT reference FROM tasks WHERE rowid = ?", (row,)).fetchone()
    return str(value)


def test_unasked_results_are_bounded_oldest_first_and_not_repeated_when_listed(
    tmp_path: Path,
) -> None:
    count = UNASKED_LIMIT + 5
    ids = [f"{i:08d}-0000-4000-8000-000000000000" for i in range(count)]
    server = Server(queue=[TaskMessage("+254744000001", f"m{i}", m) for i, m in enumerate(ids)])

    async def rounds(outbound: Outbound, client: SyncClient, clock: Clock, _: SimNetwork) -> None:
        server.result_status = 500
        await poll(outbound, client)  # all sent, none taken
        server.result_status = 200
        server.listing = [ids[-1]]
        await poll(outbound, client)
        server.listing = []
        await poll(outbound, client)

    run(tmp_path, server, rounds)
    second = [e.message_id for e in server.e7[1]]
    # The listed one first, then the oldest unasked; never twice in one POST.
    assert second == [ids[-1], *ids[:UNASKED_LIMIT]]
    assert [e.message_id for e in server.e7[2]] == ids[UNASKED_LIMIT:-1]


OLD_TASKS = """CREATE TABLE tasks (
    sync_url TEXT NOT NULL, message_id TEXT NOT NULL, source TEXT NOT NULL,
    to_addr TEXT NOT NULL, content TEXT NOT NULL, state TEXT NOT NULL,
    first_seen_at REAL NOT NULL, sent_code INTEGER, reference TEXT, sent_at REAL,
    delivered_code INTEGER, delivered_at REAL, PRIMARY KEY (sync_url, message_id))"""


def test_a_store_made_by_the_previous_schema_is_upgraded_and_keeps_its_tasks(
    tmp_path: Path,
) -> None:
    path = tmp_path / "gw.db"
    with sqlite3.connect(path) as conn:
        conn.execute(OLD_TASKS)
        conn.execute("CREATE INDEX tasks_state ON tasks (state)")
        conn.execute(
            "INSERT INTO tasks VALUES ('main', ?, 'task', '+254744000001', 'old', 'sent', ?, -1,"
            " '7', 1.0, NULL, NULL)",
            (UUID_B, 1_000_000.0),
        )
    server = Server(queue=[TaskMessage("+254744000001", "again", UUID_B)], listing=[UUID_B])

    async def rounds(outbound: Outbound, client: SyncClient, clock: Clock, _: SimNetwork) -> None:
        await poll(outbound, client)
        # An E2 reply may share a task's uuid now.
        await outbound.add_replies("main", 1, [TaskMessage("+254744000002", "re", UUID_B)])
        await outbound.send_pending()

    net = run(tmp_path, server, rounds)
    # The old row still says "sent": the uuid is not sent again, and it is reported.
    assert sent_texts(net) == ["re"]
    assert [e.message_id for e in server.e7[0]] == [UUID_B]
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (1,)
        assert conn.execute("SELECT count(*) FROM tasks").fetchone() == (2,)


@pytest.mark.parametrize("twice", [False, True])
def test_opening_the_current_schema_changes_nothing(tmp_path: Path, twice: bool) -> None:
    async def main() -> None:
        for _ in range(2 if twice else 1):
            store = GatewayStore(tmp_path / "gw.db")
            await store.open()
            await store.close()

    asyncio.run(main())
    with sqlite3.connect(tmp_path / "gw.db") as conn:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(tasks)")]
    assert "inbound_id" in columns and "reported" in columns


def test_replies_are_stored_with_the_forward_once_per_incoming_sms(tmp_path: Path) -> None:
    reply = TaskMessage("+254711000001", "Thanks", "same-uuid-for-all")

    async def main() -> list[list[TaskMessage]]:
        store = GatewayStore(tmp_path / "gw.db")
        await store.open()
        try:
            ids = []
            for i in range(2):
                sms = InboundRecord(f"k{i}", f"m{i}", "+254711000001", "hi", "1", 1.0)
                ids.append(await store.record_inbound(sms, {"main": "pending"}))
            first, second = (i or 0 for i in ids)
            return [
                await store.mark_forwarded(first, "main", 2.0, [reply]),
                # The same SMS confirmed again (a re-upload after a crash): nothing new.
                await store.mark_forwarded(first, "main", 3.0, [reply]),
                await store.mark_forwarded(second, "main", 4.0, [reply]),
            ]
        finally:
            await store.close()

    assert asyncio.run(main()) == [[reply], [], [reply]]
