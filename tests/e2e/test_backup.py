"""Backups, restore, export and retention against real ``smssync serve`` processes."""

from __future__ import annotations

import csv
import io
import sqlite3
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, update

from smssync.store.schema import inbound, outbound
from tests.e2e.serverproc import Server, create_pg_database, drop_pg_database, pg_url

FORM = "application/x-www-form-urlencoded"
DAY_US = 86400 * 1_000_000


def post_sms(http: httpx.Client, device: dict[str, Any], text: str) -> str | None:
    """Upload one incoming SMS as a phone does; return its id once the server took it."""
    mid = str(uuid.uuid4())
    body = f"secret=k&from=%2B254700000001&message={text}&message_id={mid}"
    try:
        reply = http.post(device["sync_url"], content=body.encode(), headers={"content-type": FORM})
    except httpx.TransportError:
        return None
    if reply.status_code == 200 and reply.json()["payload"]["success"] is True:
        return mid
    return None


class Phone(threading.Thread):
    """Uploads SMS without pause until stopped, noting when each was acknowledged."""

    def __init__(self, device: dict[str, Any]) -> None:
        super().__init__(daemon=True)
        self.device = device
        self.halt = threading.Event()
        #: (monotonic time the upload started, its id) of every acknowledged SMS.
        self.acked: list[tuple[float, str]] = []

    def run(self) -> None:
        with httpx.Client(timeout=10) as http:
            n = 0
            while not self.halt.is_set():
                started = time.monotonic()
                mid = post_sms(http, self.device, f"sms{n}")
                n += 1
                if mid is not None:
                    self.acked.append((started, mid))

    def uploads(self, count: int, timeout: float = 30) -> None:
        """Wait until ``count`` more SMS were acknowledged."""
        target = len(self.acked) + count
        deadline = time.monotonic() + timeout
        while len(self.acked) < target:
            assert time.monotonic() < deadline, "the phone's uploads stalled"
            time.sleep(0.02)


def ids_in(backup: Path) -> set[str]:
    with sqlite3.connect(backup) as conn:
        return {row[0] for row in conn.execute("SELECT message_id FROM inbound")}


def test_a_backup_taken_while_serving_restores_as_of_its_moment(tmp_path: Path) -> None:
    server = Server(tmp_path)
    device = server.add_device("p", "--secret", "k")
    server.start()
    phone = Phone(device)
    phone.start()
    copy = tmp_path / "smssync-backup.db"
    try:
        phone.uploads(20)
        began = time.monotonic()
        result = server.cli("backup", str(copy))
        ended = time.monotonic()
        assert "server.key" in result.stdout  # what the copy cannot hold
        phone.uploads(20)  # the server goes on taking SMS
        # Refused while the server answers: it would go on with caches of the old database.
        refused = server.cli("restore", str(copy), check=False)
        assert refused.returncode == 1 and "stop the server" in refused.stderr
    finally:
        phone.halt.set()
        phone.join(15)
        server.stop()
    assert copy.stat().st_mode & 0o077 == 0
    backed_up = ids_in(copy)
    before = {mid for at, mid in phone.acked if at < began}
    after = {mid for at, mid in phone.acked if at > ended}
    assert before <= backed_up  # everything acknowledged before the backup began
    assert not backed_up & after  # nothing uploaded after it ended
    assert backed_up <= {mid for _, mid in phone.acked}
    assert len(after) >= 20

    restored = server.cli("restore", str(copy))
    assert "restored" in restored.stdout
    server.start()
    try:
        stored = server.cli_json("messages", "--limit", "100000")
        assert sorted(r["message_id"] for r in stored) == sorted(backed_up)
        assert httpx.get(server.base + "/readyz").json()["ok"] is True
        # The restored server takes SMS again, the same phone with the same secret.
        with httpx.Client(timeout=10) as http:
            assert post_sms(http, device, "after-restore") is not None
    finally:
        server.stop()


def test_restore_refuses_what_is_no_smssync_backup(tmp_path: Path) -> None:
    server = Server(tmp_path)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    result = server.cli("restore", str(junk), check=False)
    assert result.returncode == 1 and "not a SQLite database" in result.stderr
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    result = server.cli("restore", str(empty), check=False)
    assert result.returncode == 1 and "not an smssync database" in result.stderr
    assert not (tmp_path / "data" / "smssync.db").exists()


def test_postgresql_backups_are_pg_dumps(tmp_path: Path) -> None:
    server = Server(tmp_path, "postgresql://sms:hunter2@db.example.org/smssync")
    result = server.cli("backup", str(tmp_path / "x"), check=False)
    assert result.returncode == 1
    assert "pg_dump --format=custom --file FILE 'postgresql://sms:***@db.example.org/smssync'" in (
        result.stderr
    )
    assert "hunter2" not in result.stderr
    result = server.cli("restore", str(tmp_path / "x"), check=False)
    assert result.returncode == 2  # the file does not exist: click says so first


@pytest.mark.postgres
def test_the_guides_pg_dump_and_pg_restore_round_trip_while_serving(tmp_path: Path) -> None:
    guide = (Path(__file__).resolve().parents[2] / "docs" / "deploy.md").read_text()
    assert "pg_dump --format=custom --file smssync.dump" in guide
    assert "pg_restore --clean --if-exists --dbname" in guide
    database = create_pg_database()
    url = pg_url(database)
    server = Server(tmp_path, url)
    dump = tmp_path / "smssync.dump"
    try:
        device = server.add_device("p", "--secret", "k")
        server.start()
        phone = Phone(device)
        phone.start()
        try:
            phone.uploads(10)
            began = time.monotonic()
            dumped = subprocess.run(
                ["pg_dump", "--format=custom", "--file", str(dump), url],
                capture_output=True,
                text=True,
                timeout=120,
            )
            ended = time.monotonic()
            assert dumped.returncode == 0, dumped.stderr
            phone.uploads(10)
        finally:
            phone.halt.set()
            phone.join(15)
            server.stop()
        restored = subprocess.run(
            ["pg_restore", "--clean", "--if-exists", "--dbname", url, str(dump)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert restored.returncode == 0, restored.stderr
        server.start()
        stored = {r["message_id"] for r in server.cli_json("messages", "--limit", "100000")}
        assert {mid for at, mid in phone.acked if at < began} <= stored
        assert not stored & {mid for at, mid in phone.acked if at > ended}
        assert httpx.get(server.base + "/readyz").json()["ok"] is True
    finally:
        server.stop()
        drop_pg_database(database)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def own_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    """A server of its own on either store, started by the test."""
    database = create_pg_database() if request.param == "postgres" else None
    server = Server(tmp_path, pg_url(database) if database else "")
    try:
        yield server
    finally:
        server.stop()
        if database:
            drop_pg_database(database)


def exported(server: Server) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(server.cli("export", "-", "--format", "csv").stdout)))


def age(server: Server, days: int) -> None:
    """Make every stored SMS ``days`` older, as if the server had run that long."""
    url = server.env["SMSSYNC_DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://")
    engine = create_engine(url or f"sqlite:///{server.env['SMSSYNC_DATA_DIR']}/smssync.db")
    try:
        with engine.begin() as conn:
            shift = days * DAY_US
            conn.execute(update(inbound).values(received_at=inbound.c.received_at - shift))
            conn.execute(update(outbound).values(updated_at=outbound.c.updated_at - shift))
    finally:
        engine.dispose()


def test_export_writes_both_directions_as_csv(own_server: Server) -> None:
    device = own_server.add_device("p", "--secret", "k")
    own_server.start()
    with httpx.Client(timeout=10) as http:
        mid = post_sms(http, device, 'hello, "quoted" world')
    uuid_out = own_server.cli("send", "--to", "+254700000009", "line one\nline two").stdout.strip()
    with httpx.Client(timeout=10) as http:
        formula = post_sms(http, device, '=HYPERLINK("http://x.example","click")')
    target = own_server.tmp / "export.csv"
    assert "exported 3 SMS" in own_server.cli("export", str(target)).stderr
    assert target.stat().st_mode & 0o077 == 0
    with target.open(newline="") as written:
        rows = list(csv.DictReader(written))
    assert [r["direction"] for r in rows] == ["in", "in", "out"]
    sms_in, sms_formula, sms_out = rows
    # A text a spreadsheet would run as a formula is written as text; numbers stay numbers.
    assert sms_formula["body"] == '\'=HYPERLINK("http://x.example","click")'
    assert sms_formula["from"] == "+254700000001"
    assert sms_in["id"] == mid and sms_in["device"] == "p" and sms_in["status"] == "received"
    assert (sms_in["from"], sms_in["body"]) == ("+254700000001", 'hello, "quoted" world')
    assert sms_in["time"].endswith("Z") and sms_in["purged_at"] == ""
    assert (sms_out["id"], sms_out["to"]) == (uuid_out, "+254700000009")
    assert (sms_out["body"], sms_out["status"]) == ("line one\nline two", "queued")
    assert [r["id"] for r in exported(own_server)] == [mid, formula, uuid_out]
    only_out = own_server.cli("export", "-", "--direction", "out").stdout
    assert uuid_out in only_out and str(mid) not in only_out


def test_retention_purges_old_text_and_keeps_counts_and_statuses(own_server: Server) -> None:
    device = own_server.add_device("p", "--secret", "k")
    own_server.start()
    with httpx.Client(timeout=10) as http:
        old_in = post_sms(http, device, "old incoming")
    old_out = own_server.cli("send", "--to", "+254700000009", "old outgoing").stdout.strip()
    queued = own_server.cli("send", "--to", "+254700000008", "still to send").stdout.strip()
    own_server.cli("cancel", old_out)
    own_server.stop()
    age(own_server, 40)
    own_server.env["SMSSYNC_RETENTION_DAYS"] = "30"
    own_server.start()  # the first run of the hour is at start
    with httpx.Client(timeout=10) as http:
        new_in = post_sms(http, device, "new incoming")
    deadline = time.monotonic() + 30
    while True:
        rows = {r["id"]: r for r in exported(own_server)}
        if rows[str(old_in)]["body"] == "" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert len(rows) == 4  # every SMS is still there
    assert rows[str(old_in)]["body"] == "" and rows[str(old_in)]["purged_at"].endswith("Z")
    assert rows[str(old_in)]["from"] == "+254700000001"
    assert rows[old_out]["body"] == "" and rows[old_out]["status"] == "cancelled"
    # A message a phone has still to send keeps its text, however old.
    assert rows[queued]["body"] == "still to send" and rows[queued]["status"] == "queued"
    assert rows[str(new_in)]["body"] == "new incoming" and rows[str(new_in)]["purged_at"] == ""
    assert "retention: purged the text of SMS older than 30 day(s)" in own_server.log.read_text()
