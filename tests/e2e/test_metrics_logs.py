"""``/metrics`` and the logs of a real ``smssync serve``: with two workers the counts add up
across them (dead workers' too), the folder of their files goes with the server; with
``--log-format json`` every log line, uvicorn's included, is one JSON object, and a line
logged for a request names its id."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.serverproc import Server, create_pg_database, drop_pg_database, pg_url
from tests.e2e.test_serve_workers import answers, eventually, workers
from tests.pg import pg_admin


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    name = create_pg_database() if request.param == "postgres" else None
    try:
        yield pg_url(name) if name else ""
    finally:
        if name:
            drop_pg_database(name)


def scrape(server: Server) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    reply = httpx.get(server.base + "/metrics", timeout=10)
    assert reply.status_code == 200, reply.text
    found = {}
    for family in text_string_to_metric_families(reply.text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def count(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], kind: str) -> float:
    key = ("smssync_http_request_duration_seconds_count", (("kind", kind), ("status", "200")))
    return found.get(key, 0.0)


def post_sms(sync_url: str, secret: str, mid: str) -> None:
    form = {"from": "+254700000001", "message": "hi", "message_id": mid, "secret": secret}
    # A new connection each: the kernel spreads them over the workers.
    assert httpx.post(sync_url, data=form, timeout=10).status_code == 200


def test_two_workers_add_up_and_their_folder_goes_with_the_server(
    tmp_path: Path, database_url: str
) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    server = Server(tmp_path, database_url, workers=2)
    server.env["TMPDIR"] = str(scratch)  # where serve makes the workers' folder
    phone = server.add_device("p1", "--secret", "metrics-e2e-secret")
    server.start()
    try:
        assert server.proc is not None
        parent = server.proc.pid
        eventually(lambda: len(workers(parent)) == 2)
        for n in range(20):
            assert httpx.get(server.base + "/healthz", timeout=10).status_code == 200
            post_sms(phone["sync_url"], "metrics-e2e-secret", f"e2e-{n}")
        (folder,) = scratch.glob("smssync-metrics-*")
        time.sleep(0.3)  # each worker counts a request just after its answer
        # Both first workers die: whoever answers the scrape served none of those requests.
        first = workers(parent)
        for pid in first:
            os.kill(pid, signal.SIGKILL)
        eventually(lambda: len(set(workers(parent)) - set(first)) == 2, timeout=30)
        # Waited for with another kind of request: a probe that timed out is answered later.
        eventually(lambda: answers(server), timeout=60)
        found = scrape(server)
        assert count(found, "sync_upload") == 20
        assert count(found, "health") == 20
        assert found[("smssync_sms_in", ())] == 20
        assert found[("smssync_phones_online", ())] == 1
        assert found[("smssync_store_batch_size_count", (("verb", "record_inbound_many"),))] >= 1
        again = scrape(server)
        assert count(again, "sync_upload") == 20 and count(again, "metrics") >= 1
        # Every process that counted has its own files: at least the four workers.
        assert len({p.stem.split("_")[-1] for p in folder.glob("histogram_*.db")}) >= 2
    finally:
        server.stop()
    assert not folder.exists()


def log_lines(server: Server) -> list[str]:
    # The log holds serve's stdout too: its banner (what it serves, the default region, the
    # dashboard and its first user, indented) is not a log line.
    banner = ("smssync serving", "default region:", "Dashboard:", " ")
    return [
        line
        for line in server.log.read_text().splitlines()
        if line.strip() and not line.startswith(banner)
    ]


def test_json_logs_are_one_object_per_line(tmp_path: Path) -> None:
    server = Server(tmp_path)
    server.env["SMSSYNC_LOG_FORMAT"] = "json"
    server.add_device("p1")
    server.start()
    try:
        assert httpx.get(server.base + "/healthz").headers["x-request-id"]
    finally:
        server.stop()
    entries = [json.loads(line) for line in log_lines(server)]
    assert {e["logger"] for e in entries} >= {"smssync.server", "uvicorn.error"}
    for entry in entries:
        assert set(entry) >= {"time", "level", "logger", "message", "request_id"}
        assert entry["time"].endswith("Z")
    assert any(e["message"].startswith("store open: sqlite") for e in entries)


@pytest.mark.postgres
def test_a_line_logged_for_a_request_names_its_id(tmp_path: Path) -> None:
    database = create_pg_database()
    server = Server(tmp_path, pg_url(database))
    server.env["SMSSYNC_LOG_FORMAT"] = "json"
    phone = server.add_device("p1", "--secret", "id-e2e-secret")
    server.start()
    try:
        # The database goes away: an incoming SMS is refused 503 (the App retries), logged.
        pg_admin(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
        pg_admin(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            f" WHERE datname = '{database}' AND pid <> pg_backend_pid()"
        )
        form = {"from": "+254700000001", "message": "hi", "message_id": "m1"}
        form["secret"] = "id-e2e-secret"
        headers = {"x-request-id": "phone-req-77"}
        reply = httpx.post(phone["sync_url"], data=form, headers=headers, timeout=30)
        assert reply.status_code == 503
        assert reply.headers["x-request-id"] == "phone-req-77"
    finally:
        pg_admin(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
        server.stop()
        drop_pg_database(database)
    entries = [json.loads(line) for line in log_lines(server)]
    ours = [e for e in entries if e["request_id"] == "phone-req-77"]
    assert ours and all(e["level"] in ("WARNING", "ERROR") for e in ours)
    assert all(e["request_id"] is None for e in entries if e["message"].startswith("store open"))
