"""No secret reaches the logs: a whole run of ``smssync serve`` (devices, incoming SMS, task
polls, wrong secrets, API keys, webhooks failing until dead, status callbacks, scrapes of
``/metrics``) and then a grep of everything it printed for every secret the run made."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.serverproc import Server, create_pg_database, drop_pg_database, free_port
from tests.pg import PG_HOST, PG_PORT, PG_USER


class FailingReceiver:
    """A webhook receiver that answers 500 to everything, counting what it got."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.received = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", 0)))
                receiver.received += 1
                self.send_response(500)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def receiver() -> Iterator[FailingReceiver]:
    made = FailingReceiver()
    try:
        yield made
    finally:
        made.stop()


def wait_for(check: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)


@pytest.mark.parametrize(
    ("store", "log_format"),
    [("sqlite", "text"), pytest.param("postgres", "json", marks=pytest.mark.postgres)],
)
def test_no_secret_of_a_whole_run_reaches_the_logs(
    tmp_path: Path, receiver: FailingReceiver, store: str, log_format: str
) -> None:
    made: dict[str, str] = {}  # what each secret is, for the failure message
    made["server key"] = secrets.token_hex(32)
    made["metrics token"] = "metrics-" + secrets.token_urlsafe(16)
    database = create_pg_database() if store == "postgres" else None
    url = ""
    if database:
        # PostgreSQL's trust authentication ignores it, but it is in the URL serve gets.
        made["database password"] = "pw-" + secrets.token_hex(8)
        url = f"postgresql://{PG_USER}:{made['database password']}@{PG_HOST}:{PG_PORT}/{database}"
    server = Server(tmp_path, url)
    server.env.update(
        SMSSYNC_SERVER_KEY=made["server key"],
        SMSSYNC_METRICS_TOKEN=made["metrics token"],
        SMSSYNC_LOG_FORMAT=log_format,
        SMSSYNC_WEBHOOK_ALLOW="127.0.0.1",
        SMSSYNC_WEBHOOK_RETRY_MS="100",
        SMSSYNC_WEBHOOK_MAX_AGE_S="1",  # every failing delivery dies soon: a logged warning
        SMSSYNC_WEBHOOK_TIMEOUT_S="2",
    )
    try:
        phone = server.add_device("p1")
        made["device secret"] = phone["secret"]
        made["device token"] = phone["sync_url"].rsplit("/", 1)[1]
        made["basic password"] = "bp-" + secrets.token_hex(8)
        gateway = server.add_device(
            "p2", "--basic-user", "gw-user", "--basic-password", made["basic password"]
        )
        made["second device secret"] = gateway["secret"]
        key = server.cli_json("apikey", "create", "--scope", "admin")
        made["api key"] = key["key"]
        made["callback signing secret"] = key["signing_secret"]
        made["hook query token"] = "hq-" + secrets.token_hex(8)
        hook = server.cli_json(
            "webhook", "add", f"{receiver.url}/cli?token={made['hook query token']}"
        )
        made["webhook secret (CLI)"] = hook["secret"]
        server.start()
        run_everything(server, phone, gateway, made, receiver)
        # Every delivery, the API's webhook and the status callback too, failed until dead.
        wait_for(lambda: settled(server, made["metrics token"]))
    finally:
        server.stop()
        if database:
            drop_pg_database(database)
    printed = server.log.read_text()
    assert "webhook" in printed and "dead" in printed
    leaked = [what for what, secret in made.items() if secret in printed]
    assert leaked == [], f"in serve's output: {leaked}"


def settled(server: Server, token: str) -> bool:
    """No webhook delivery is left to try, and some died."""
    reply = httpx.get(server.base + "/metrics", headers={"authorization": f"Bearer {token}"})
    found = {}
    for family in text_string_to_metric_families(reply.text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    dead = found.get(("smssync_webhook_failures_total", (("final", "true"),)), 0.0)
    return found[("smssync_webhook_deliveries_pending", ())] == 0 and dead >= 3


def run_everything(
    server: Server,
    phone: dict[str, Any],
    gateway: dict[str, Any],
    made: dict[str, str],
    receiver: FailingReceiver,
) -> None:
    """Every exchange that handles a secret, right and wrong."""
    sync_url, secret = phone["sync_url"], made["device secret"]
    api = {"authorization": f"Bearer {made['api key']}"}
    with httpx.Client(timeout=30) as http:
        for n in range(3):
            form = {"from": "+254700000001", "message": f"hi {n}", "message_id": f"leak-{n}"}
            assert http.post(sync_url, data={**form, "secret": secret}).status_code == 200
        assert http.post(sync_url, data={**form, "secret": "wrong-" + secret}).status_code == 403
        assert (
            http.post(server.base + "/smssync", data={**form, "secret": secret}).status_code == 200
        )
        assert http.get(sync_url, params={"task": "send", "secret": secret}).status_code == 200
        assert (
            http.get(sync_url, params={"task": "send", "secret": secret[::-1]}).status_code == 403
        )
        assert http.get(sync_url, params={"task": "result", "secret": secret}).status_code == 200
        basic = (gateway["basic_user"], made["basic password"])
        form = {"from": "+254700000002", "message": "via basic", "message_id": "leak-b"}
        body = {**form, "secret": made["second device secret"]}
        assert http.post(gateway["sync_url"], data=body, auth=basic).status_code == 200
        wrong = (gateway["basic_user"], "not-" + made["basic password"])
        assert http.post(server.base + "/smssync", data=body, auth=wrong).status_code in (401, 403)
        # A body the server cannot read, with the secret in it.
        broken = http.post(
            sync_url,
            content=b'{"secret": "' + secret.encode() + b'", "from": ',
            headers={"content-type": "application/json"},
        )
        assert broken.status_code in (400, 403)
        # The API: a wrong key, a webhook made with the right one, a message with a callback.
        assert (
            http.get(
                server.base + "/api/v1/messages", headers={"authorization": "Bearer nope"}
            ).status_code
            == 401
        )
        created = http.post(
            server.base + "/api/v1/webhooks",
            json={"url": f"{receiver.url}/api?token={made['hook query token']}"},
            headers=api,
        )
        assert created.status_code in (200, 201), created.text
        made["webhook secret (API)"] = created.json()["secret"]
        sent = http.post(
            server.base + "/api/v1/messages",
            json={"to": "+254700000003", "body": "hello", "status_callback": f"{receiver.url}/cb"},
            headers=api,
        )
        assert sent.status_code in (200, 201, 202), sent.text
        # The phone sends it and says so (E4, E5, E7): message.sent to both webhooks and the
        # status callback; an incoming SMS, message.received to both.
        tasks = http.get(sync_url, params={"task": "send", "secret": secret}).json()
        uuids = [t["uuid"] for t in tasks["payload"]["messages"]]
        assert len(uuids) == 1
        http.post(sync_url, params={"task": "sent"}, json={"queued_messages": uuids})
        result = [{"uuid": uuids[0], "sent_result_code": -1, "delivered_result_code": -1}]
        reported = http.post(
            sync_url, params={"task": "result", "secret": secret}, json={"message_result": result}
        )
        assert reported.status_code == 200
        form = {"from": "+254700000001", "message": "late", "message_id": "leak-late"}
        assert http.post(sync_url, data={**form, "secret": secret}).status_code == 200
        # /metrics: without, with a wrong and with the right token.
        assert http.get(server.base + "/metrics").status_code == 401
        wrong_token = {"authorization": "Bearer x" + made["metrics token"]}
        assert http.get(server.base + "/metrics", headers=wrong_token).status_code == 401
        right = {"authorization": f"Bearer {made['metrics token']}"}
        assert http.get(server.base + "/metrics", headers=right).status_code == 200
    wait_for(lambda: receiver.received >= 3)
