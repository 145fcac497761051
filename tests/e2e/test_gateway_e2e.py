"""The gateway as people run it: ``smssync sim``, ``smssync gateway`` and a real server.

Real processes over real HTTP: ``smssync serve`` (and the Docs' PHP sample under ``php -S``),
a simulated network served by ``smssync sim``, and ``smssync gateway`` between them.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.serverproc import SMSSYNC, Server, free_port

GATEWAY_NUMBER = "+254700000100"
SENDER = "+254711000001"
PHP_SAMPLE = Path(__file__).parent / "fixtures" / "php_sample" / "index.php"


def wait_for(check: Callable[[], bool], timeout_s: float = 30, what: str = "condition") -> None:
    """Poll ``check`` until it holds."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} not reached within {timeout_s} s")


class Proc:
    """One long-running ``smssync`` (or other) subprocess with a log file."""

    def __init__(self, args: list[str], log: Path, cwd: Path | None = None) -> None:
        self.args, self.log, self.cwd = args, log, cwd
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the process, appending to its log."""
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.args, stdout=out, stderr=subprocess.STDOUT, cwd=self.cwd
            )

    def alive(self) -> bool:
        """Tell whether it still runs."""
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: nothing flushed, nothing closed."""
        if self.alive() and self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s."""
        if self.alive() and self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


class SimProc(Proc):
    """``smssync sim`` on a free port with the gateway's phone registered."""

    def __init__(
        self, tmp: Path, phones: tuple[str, ...] = (GATEWAY_NUMBER,), *options: str
    ) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        args = [*SMSSYNC, "sim", "--port", str(self.port), *options]
        args += [arg for number in phones for arg in ("--phone", number)]
        super().__init__(args, tmp / "sim.log")
        # One client while it runs: tests poll the outbox every 0.1 s, and building a client
        # costs tens of ms of CPU (its TLS context), taken from the processes under test.
        self._http: httpx.Client | None = None

    @property
    def http(self) -> httpx.Client:
        """The client of the control interface, open until ``stop``."""
        if self._http is None:
            self._http = httpx.Client(timeout=10)
        return self._http

    def start(self) -> None:
        """Start and wait until the control interface answers."""
        super().start()
        wait_for(lambda: _answers(self.http, self.base + "/"), 60, "smssync sim")

    def stop(self) -> None:
        """Stop the simulator and close the client."""
        super().stop()
        if self._http is not None:
            self._http.close()
            self._http = None

    def sms(self, text: str, from_addr: str = SENDER, to_addr: str = GATEWAY_NUMBER) -> None:
        """Deliver an SMS to a phone through the control interface."""
        reply = self.http.post(
            self.base + "/sms", json={"from": from_addr, "to": to_addr, "text": text}
        )
        reply.raise_for_status()

    def outbox(self) -> list[dict[str, Any]]:
        """Return what the simulated phones sent."""
        rows: list[dict[str, Any]] = self.http.get(self.base + "/outbox").json()
        return rows


def _answers(client: httpx.Client, url: str) -> bool:
    try:
        client.get(url, timeout=1)
    except httpx.TransportError:
        return False
    return True


def gateway_toml(
    tmp: Path,
    sim: SimProc,
    sync_url: str,
    secret: str,
    extra: str = "",
    number: str = GATEWAY_NUMBER,
) -> Path:
    """Write a gateway config with quick polls and retries; return its path."""
    path = tmp / "gateway.toml"
    path.write_text(
        f"""
store = "gateway.db"
[device]
device_id = "gw-e2e"
own_number = "{number}"
[backend]
url = "{sim.base}"
number = "{number}"
[forward]
first_delay_s = 0.2
cap_s = 2
concurrency = 8
[tasks]
interval_s = 0.5
{extra}
[[sync_urls]]
title = "main"
url = "{sync_url}"
secret = {json.dumps(secret)}
"""
    )
    return path


class GatewayProc(Proc):
    """``smssync gateway --config PATH``."""

    def __init__(self, config: Path) -> None:
        self.config = config
        super().__init__([*SMSSYNC, "gateway", "--config", str(config)], config.parent / "gw.log")

    def status(self) -> list[dict[str, Any]]:
        """Run ``smssync gateway status --json``."""
        out = subprocess.run(
            [*SMSSYNC, "gateway", "--config", str(self.config), "status", "--json"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        rows: list[dict[str, Any]] = json.loads(out.stdout)
        return rows


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimProc]:
    """A running simulated network."""
    proc = SimProc(tmp_path)
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[Server]:
    """A ``smssync serve`` of this test's own, on SQLite."""
    proc = Server(tmp_path)
    yield proc
    proc.stop()


def inbound_bodies(server: Server) -> list[str]:
    """Return the bodies of every SMS the server stored."""
    return [r["body"] for r in server.cli_json("messages", "--limit", "100000")]


def test_forward_send_and_report_against_smssync_serve(
    tmp_path: Path, sim: SimProc, own_server: Server
) -> None:
    device = own_server.add_device("gw", "--secret", "s3cret word")
    own_server.cli("device", "set", "gw", "--reply-from-server", "--auto-reply", "Thanks")
    own_server.start()
    config = gateway_toml(
        tmp_path, sim, device["sync_url"], "s3cret word", "[replies]\nfrom_server = true\n"
    )
    gateway = GatewayProc(config)
    gateway.start()
    try:
        for i in range(3):
            sim.sms(f"hello {i}")
        wait_for(lambda: len(inbound_bodies(own_server)) == 3, 30, "3 SMS on the server")
        assert sorted(inbound_bodies(own_server)) == ["hello 0", "hello 1", "hello 2"]
        queued = own_server.cli_json("send", "--to", "+254722000002", "from the server")
        wait_for(lambda: any(r["text"] == "from the server" for r in sim.outbox()), 30, "task sent")

        def delivered() -> bool:
            rows = own_server.cli_json("messages", "--direction", "out")
            return any(r["uuid"] == queued["uuid"] and r["status"] == "delivered" for r in rows)

        wait_for(delivered, 30, "delivery reported through task=result")
        sent = sim.outbox()
        assert [r["text"] for r in sent].count("from the server") == 1
        # Reply from server: the server's auto-reply rode on each E1 reply.
        wait_for(lambda: [r["text"] for r in sim.outbox()].count("Thanks") == 3, 30, "replies")
        rows = gateway.status()
        assert rows[0]["forwarded"] == 3 and rows[0]["pending"] == 0
        assert rows[0]["last_contact"] is not None
    finally:
        gateway.stop()


@pytest.fixture
def php_server(tmp_path: Path) -> Iterator[str]:
    """The Docs' PHP sample under ``php -S``, from a copy (it writes test.txt beside itself)."""
    if shutil.which("php") is None:
        pytest.fail("php is not installed (CI installs Debian's php-cli)")
    root = tmp_path / "php"
    root.mkdir()
    shutil.copy(PHP_SAMPLE, root / "index.php")
    port = free_port()
    proc = Proc(["php", "-S", f"127.0.0.1:{port}", "-t", str(root)], tmp_path / "php.log", root)
    proc.start()
    base = f"http://127.0.0.1:{port}/index.php"
    with httpx.Client() as client:
        wait_for(lambda: _answers(client, base), 60, "php -S")
    yield base
    proc.stop()


def test_php_sample_forward_send_sent_result(tmp_path: Path, sim: SimProc, php_server: str) -> None:
    config = gateway_toml(tmp_path, sim, php_server, "123456", "[replies]\nfrom_server = true\n")
    gateway = GatewayProc(config)
    gateway.start()
    log = tmp_path / "php" / "test.txt"
    senders = [SENDER, "+254711000002", "+254711000003"]
    reply_text = "Your message has been received"

    def replies_to(number: str) -> int:
        return sum(1 for r in sim.outbox() if r["to"] == number and r["text"] == reply_text)

    try:
        sim.sms("hello php", senders[0])
        sim.sms("second", senders[1])
        sim.sms("third", senders[2])
        wait_for(lambda: log.exists() and "Message: third" in log.read_text(), 30, "E1 stored")
        # task=send then task=sent (listed back), the SMS goes out once; then task=result.
        wait_for(lambda: "message_result" in log.read_text(), 30, "task=result posted")
        wait_for(lambda: all(replies_to(n) for n in senders), 30, "a reply to each sender")
        # A few more rounds: the task is offered again and again, replies never come again.
        wait_for(lambda: log.read_text().count("message_result") >= 4, 30, "more rounds")
        text = log.read_text()
        outbox = sim.outbox()
    finally:
        gateway.stop()
    assert "Message: hello php" in text and "Messages Id:" in text
    assert '{"queued_messages":["1ba368bd-c467-4374-bf28"]}' in text
    report = text.split("message ", 1)[1].split("\n", 1)[0]
    entry = json.loads(report)["message_result"][0]
    assert entry["uuid"] == "1ba368bd-c467-4374-bf28"
    assert entry["sent_result_code"] == -1 and entry["sent_result_message"] == "SMS sent"
    sent = [(r["to"], r["text"]) for r in outbox if r["from"] == GATEWAY_NUMBER]
    # The PHP sample gives every E2 reply and the task one uuid: each incoming SMS gets its
    # reply once, and the task, deduplicated by uuid (G-13), goes once.
    assert sorted(sent) == sorted(
        [(n, reply_text) for n in senders] + [("+000-000-0000", "Sample Task Message")]
    )


def test_gateway_init_writes_a_config_that_loads(tmp_path: Path) -> None:
    path = tmp_path / "gw.toml"
    subprocess.run([*SMSSYNC, "gateway", "--config", str(path), "init"], check=True, timeout=60)
    out = subprocess.run(
        [*SMSSYNC, "gateway", "--config", str(path), "status", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(out.stdout)[0]["sync_url"] == "main"
