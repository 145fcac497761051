"""Several servers on one database, as one (issue 17, item 8): real ``smssync serve``
processes sharing a store; a change made through one is obeyed by the others at once, they
migrate a fresh database once, and a fleet with a server killed mid-run loses nothing and
sends nothing twice (``fleet_run``, each server in a network namespace of its own where the
machine allows, see ``hosts``)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg
import pytest

from smssync.store import migrate
from tests.e2e.fleet_run import SERVER_KEY, fleet_run
from tests.e2e.hosts import network
from tests.e2e.serverproc import Server, create_pg_database, drop_pg_database, pg_url
from tests.pg import pg_conninfo


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None for SQLite, else a fresh PostgreSQL database's name."""
    name = create_pg_database() if request.param == "postgres" else None
    try:
        yield name
    finally:
        if name:
            drop_pg_database(name)


def pair(tmp: Path, database: str | None) -> tuple[Server, Server]:
    """Two servers on one store: one SQLite file (as ``serve --workers`` processes share it)
    or one PostgreSQL database, each with its own port and the fleet's key."""
    tmp.mkdir(parents=True, exist_ok=True)
    servers = []
    for _ in range(2):
        server = Server(tmp, pg_url(database) if database else "")
        server.env["SMSSYNC_SERVER_KEY"] = SERVER_KEY
        servers.append(server)
    return servers[0], servers[1]


def at_once(check: Callable[[], bool], database: str | None) -> None:
    """Assert that ``check`` holds now (SQLite: the marks are read before a cache is used),
    or within a second (PostgreSQL: a notification's trip); either is far inside the
    caches' 30 s safety net, which therefore cannot be what made it hold."""
    deadline = time.monotonic() + (1.0 if database else 0.0)
    while not check():
        assert time.monotonic() < deadline, "another server still uses what it cached"
        time.sleep(0.02)


def test_a_change_through_one_server_applies_at_once_on_the_other(
    tmp_path: Path, database: str | None
) -> None:
    a, b = pair(tmp_path, database)
    device = a.add_device("gw", "--secret", "fleet secret one")
    admin = a.cli_json("apikey", "create", "--scope", "admin")["key"]
    reader = a.cli_json("apikey", "create", "--scope", "read", "--name", "reader")["key"]
    a.start()
    b.start()
    path = httpx.URL(device["sync_url"]).path
    params = {"task": "send", "secret": "fleet secret one"}
    try:
        with httpx.Client(timeout=30) as http:

            def poll(server: Server) -> int:
                return http.get(server.base + path, params=params).status_code

            def inbound(server: Server, message_id: str, text: str) -> list[str]:
                """Upload an incoming SMS; return the texts its E1 reply asks to send."""
                form = {"secret": "fleet secret one", "from": "+254700000001"}
                form |= {"message": text, "message_id": message_id}
                reply = http.post(server.base + path, data=form)
                assert reply.status_code == 200, reply.text
                return [m["message"] for m in reply.json()["payload"].get("messages", [])]

            def listing(server: Server, key: str) -> int:
                headers = {"authorization": f"Bearer {key}"}
                return http.get(server.base + "/api/v1/messages", headers=headers).status_code

            # Both servers have the device, the (empty) rules and the key in their caches.
            for _ in range(3):
                assert poll(a) == poll(b) == 200
                assert listing(a, reader) == listing(b, reader) == 200
            inbound(b, "m-1", "JOIN before")

            # A rule added through A's API tags the next SMS that reaches B.
            rule = {"kind": "keyword", "pattern": "JOIN", "tag": "joined"}
            reply = http.post(
                a.base + "/api/v1/rules", json=rule, headers={"authorization": f"Bearer {admin}"}
            )
            assert reply.status_code == 201, reply.text
            count = iter(range(2, 100))

            def tagged() -> bool:
                message_id = f"m-{next(count)}"
                inbound(b, message_id, "JOIN after")
                headers = {"authorization": f"Bearer {admin}"}
                rows = http.get(b.base + "/api/v1/inbox", headers=headers).json()["messages"]
                [row] = [r for r in rows if r["message_id"] == message_id]
                return bool(row["tags"] == ["joined"])

            at_once(tagged, database)

            # A device's settings changed through the CLI apply on both servers.
            a.cli("device", "set", "gw", "--reply-from-server", "--auto-reply", "Thanks")

            def replying() -> bool:
                return inbound(b, f"m-{next(count)}", "hello") == ["Thanks"]

            at_once(replying, database)
            assert inbound(a, f"m-{next(count)}", "hello") == ["Thanks"]

            # A key revoked through the CLI is refused by both servers.
            [key] = [k for k in a.cli_json("apikey", "list") if k["name"] == "reader"]
            a.cli("apikey", "revoke", str(key["id"]))
            at_once(lambda: listing(b, reader) == 401, database)
            assert listing(a, reader) == 401

            # A device removed through the CLI is refused by both servers (which a cached
            # device alone would not show: its poll finds no such device in the store).
            a.cli("device", "remove", "gw")
            at_once(lambda: poll(b) == 403, database)
            assert poll(a) == 403
    finally:
        a.stop()
        b.stop()


def test_every_worker_applies_a_device_change_made_through_the_cli_at_once(
    tmp_path: Path,
) -> None:
    server = Server(tmp_path, workers=2)
    device = server.add_device("gw", "--secret", "worker secret")
    server.start()
    url = server.base + httpx.URL(device["sync_url"]).path
    count = iter(range(1000))

    def replies() -> set[str]:
        """The auto-reply each of 30 incoming SMS got in its E1 reply ("" for none), a
        connection each, so that the kernel spreads them over both workers."""
        found = set()
        for _ in range(30):
            form = {"secret": "worker secret", "from": "+254700000001", "message": "hi"}
            form["message_id"] = f"w-{next(count)}"
            with httpx.Client(timeout=30) as http:
                payload = http.post(url, data=form).json()["payload"]
            found |= {m["message"] for m in payload.get("messages", [])} or {""}
        return found

    try:
        assert replies() == {""}  # both workers have the device's settings cached by now
        server.cli("device", "set", "gw", "--reply-from-server", "--auto-reply", "Thanks")
        assert replies() == {"Thanks"}
    finally:
        server.stop()


@pytest.mark.postgres
def test_servers_starting_at_once_on_a_fresh_database_migrate_it_once(tmp_path: Path) -> None:
    name = create_pg_database()
    servers = []
    for n in range(3):
        (tmp_path / f"host{n}").mkdir()
        server = Server(tmp_path / f"host{n}", pg_url(name))
        server.env["SMSSYNC_SERVER_KEY"] = SERVER_KEY
        servers.append(server)
    try:
        with ThreadPoolExecutor(len(servers)) as starting:
            list(starting.map(Server.start, servers))
        for server in servers:
            ready = httpx.get(server.base + "/readyz", timeout=10)
            assert ready.status_code == 200, server.log.read_text()
        with contextlib.closing(psycopg.connect(pg_conninfo(name))) as conn:
            versions = conn.execute("SELECT version_num FROM alembic_version").fetchall()
            devices = conn.execute("SELECT name FROM devices").fetchall()
        assert versions == [(migrate.head(),)]
        # The first start's device, made by one of them only.
        assert devices == [("phone1",)]
        made = [s for s in servers if "No device was registered" in s.log.read_text()]
        assert len(made) == 1
        # And the dashboard's first user: one admin, its password printed by one server.
        admins = [s for s in servers if "No user existed" in s.log.read_text()]
        assert len(admins) == 1
    finally:
        for server in servers:
            server.stop()
        drop_pg_database(name)


@pytest.mark.postgres
def test_a_fleet_with_a_server_killed_mid_run_loses_nothing_and_sends_nothing_twice(
    tmp_path: Path,
) -> None:
    name = create_pg_database()
    try:
        with network(3) as net:
            outcome = fleet_run(tmp_path, net, name, inbound_per_phone=4, outbound=24)
    finally:
        drop_pg_database(name)
    print(outcome.summary())
    assert outcome.inbound_lost == [] and outcome.inbound_twice == []
    assert outcome.never_sent == [] and outcome.sent_twice == []
    assert outcome.accepted_twice == []
    assert outcome.undelivered_events == [] and outcome.unstable_ids == []
    assert outcome.missing_events == []
    # The phone's battery alert, told to all three servers at once: one alert, one event.
    assert outcome.alerts.count(("device.battery_low", "gw0")) == 1
    assert [d[1] for d in outcome.deliveries].count("device.alert") == 1
