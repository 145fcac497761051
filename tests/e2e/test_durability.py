"""Nothing lost, nothing duplicated: concurrent pollers and ``kill -9`` of the server."""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from smssync.records import new_outbound
from smssync.settings import Settings
from smssync.store import open_store, queue
from tests.e2e.serverproc import Server, create_pg_database, drop_pg_database, pg_url

FORM = "application/x-www-form-urlencoded"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def own_server(request: pytest.FixtureRequest, tmp_path: Path) -> Server:
    """A server of its own, which the test may kill; workers=2 to exercise two processes."""
    database = create_pg_database() if request.param == "postgres" else None
    proc = Server(tmp_path, pg_url(database) if database else "", workers=2)
    request.addfinalizer(proc.stop)
    if database:
        request.addfinalizer(lambda: drop_pg_database(database))
    return proc


def enqueue_directly(server: Server, messages: list[tuple[str, str]]) -> set[str]:
    """Queue many messages in one transaction through the store (the CLI queues one a call)."""

    async def run() -> set[str]:
        settings = Settings(
            data_dir=Path(server.env["SMSSYNC_DATA_DIR"]),
            database_url=server.env["SMSSYNC_DATABASE_URL"],
        )
        store = open_store(settings.store_url)
        await store.open()
        try:
            now = datetime.now(UTC)
            rows = [new_outbound(to, text, None, now) for to, text in messages]
            await queue.enqueue(store, rows)
            return {r.message_id for r in rows}
        finally:
            await store.close()

    return asyncio.run(run())


def test_kill_9_loses_nothing_acknowledged(own_server: Server) -> None:
    dev = own_server.add_device("killme", "--secret", "k")
    acknowledged: list[str] = []
    own_server.start()
    with httpx.Client(timeout=10) as http:
        for round_ in range(3):
            for _ in range(40):
                mid = str(uuid.uuid4())
                body = f"secret=k&from=%2B254700000001&message=r{round_}&message_id={mid}"
                reply = http.post(
                    dev["sync_url"], content=body.encode(), headers={"content-type": FORM}
                )
                if reply.status_code == 200 and reply.json()["payload"]["success"] is True:
                    acknowledged.append(mid)
            own_server.kill()
            own_server.start()
    own_server.stop()
    stored = [r["message_id"] for r in own_server.cli_json("messages", "--limit", "100000")]
    assert len(acknowledged) == 120
    assert sorted(stored) == sorted(acknowledged)  # nothing lost, nothing twice


def test_two_concurrent_pollers_never_share_a_message(own_server: Server) -> None:
    devices = [own_server.add_device(f"poller{i}", "--secret", f"s{i}") for i in range(2)]
    for d in devices:
        own_server.cli(
            "device", "set", d["name"], "--segments-per-minute", "10000", "--batch-limit", "7"
        )
    own_server.start()
    queued = enqueue_directly(own_server, [(f"+2547000001{i:02d}", f"m{i}") for i in range(60)])
    # The phones see wire ids, never the public uuids: the texts, all different, tell
    # the messages apart.
    texts = {f"m{i}" for i in range(60)}
    assert len(queued) == len(texts)
    got: dict[str, list[str]] = {d["name"]: [] for d in devices}
    errors: list[str] = []

    def poll(d: dict[str, str], secret: str) -> None:
        with httpx.Client(timeout=10) as http:
            for _ in range(40):
                reply = http.get(d["sync_url"] + f"?task=send&secret={secret}")
                if reply.status_code != 200:
                    errors.append(reply.text)
                    return
                got[d["name"]].extend(m["message"] for m in reply.json()["payload"]["messages"])

    threads = [threading.Thread(target=poll, args=(d, f"s{i}")) for i, d in enumerate(devices)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    a, b = (got[d["name"]] for d in devices)
    assert len(a) == len(set(a)) and len(b) == len(set(b))
    assert set(a).isdisjoint(b)
    assert set(a) | set(b) == texts


def test_duplicate_reposts_in_parallel_store_one(own_server: Server) -> None:
    dev = own_server.add_device("dupes-" + secrets.token_hex(3), "--secret", "d")
    own_server.start()
    mids = [str(uuid.uuid4()) for _ in range(20)]
    statuses: list[int] = []

    def post_all() -> None:
        with httpx.Client(timeout=10) as http:
            for mid in mids:
                body = f"secret=d&from=%2B254700000001&message=x&message_id={mid}".encode()
                statuses.append(
                    http.post(
                        dev["sync_url"], content=body, headers={"content-type": FORM}
                    ).status_code
                )

    threads = [threading.Thread(target=post_all) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * 80
    rows = own_server.cli_json("messages", "--device", dev["name"])
    assert sorted(r["message_id"] for r in rows) == sorted(mids)
    assert json.dumps(rows).count("message_id") == 20
