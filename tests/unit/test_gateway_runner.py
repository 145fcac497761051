"""The gateway loop over the in-process simulated network and a fake SMSsync server.

The server stands in through httpx.MockTransport, but reads requests and writes replies with
``smssync.protocol``, so the wire format is checked, not assumed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
from collections.abc import Awaitable, Callable
from datetime import UTC
from pathlib import Path

import httpx

from smssync.backends.base import Capabilities, SendResult
from smssync.gateway.config import GatewayConfig, parse_config
from smssync.gateway.runner import Gateway
from smssync.gateway.store import GatewayStore
from smssync.protocol import body, inbound, query, results, tasks
from smssync.records import MessageResult, TaskMessage
from smssync.sim.backend import SimBackend
from smssync.sim.network import Knobs, SimNetwork

GATEWAY_NUMBER = "+254700000100"
SENDER = "+254711000001"


@dataclasses.dataclass
class FakeServer:
    """An SMSsync server in a function: stores SMS by message_id and counts every POST."""

    secret: str = ""
    posts: list[dict[str, str]] = dataclasses.field(default_factory=list)
    stored: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)
    queue: list[TaskMessage] = dataclasses.field(default_factory=list)
    piggyback: list[TaskMessage] = dataclasses.field(default_factory=list)
    #: Which uuids E5 lists back; default all.
    accept: Callable[[list[str]], list[str]] = lambda ids: ids
    fail_next: int = 0
    alerts: list[dict[str, str]] = dataclasses.field(default_factory=list)
    sent_requests: list[list[str | None]] = dataclasses.field(default_factory=list)
    result_reports: list[bytes] = dataclasses.field(default_factory=list)
    result_uuids: list[str] = dataclasses.field(default_factory=list)
    requests: list[httpx.Request] = dataclasses.field(default_factory=list)

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        raw_query = request.url.query.decode()
        params = query.parse_query(raw_query) if raw_query else {}
        task = params.get("task")
        if self.fail_next > 0 and task is None and request.method in ("POST", "PUT"):
            self.fail_next -= 1
            return httpx.Response(500, content=b"oops")
        if task == "send":
            reply = tasks.build_send_reply(self.queue, params.get("secret"))
            return httpx.Response(200, content=reply)
        if task == "sent":
            ids = tasks.parse_sent_request(request.content)
            self.sent_requests.append(ids)
            listed = self.accept([i for i in ids if i])
            return httpx.Response(200, content=tasks.build_uuids_reply(listed))
        if task == "result" and request.method == "GET":
            return httpx.Response(200, content=tasks.build_uuids_reply(self.result_uuids))
        if task == "result":
            self.result_reports.append(request.content)
            return httpx.Response(200, content=b'{"payload":{"success":true,"error":null}}')
        if request.method == "GET":
            return httpx.Response(200, content=b'{"payload":{"success":true,"error":null}}')
        fields = body.parse_fields(request.content, request.headers.get("content-type"))
        parsed = inbound.classify_post(fields)
        if isinstance(parsed, inbound.Alert):
            self.alerts.append(fields)
            return httpx.Response(200, content=b'{"payload":{"success":true,"error":null}}')
        assert isinstance(parsed, inbound.InboundPost)
        self.posts.append(fields)
        first = fields["message_id"] not in self.stored
        self.stored.setdefault(fields["message_id"], fields)
        reply = tasks.build_inbound_reply(self.piggyback if first else [])
        return httpx.Response(200, content=reply)


def config(tmp: Path, extra: str = "", urls: str | None = None) -> GatewayConfig:
    """A config with fast retries and one Sync URL unless ``urls`` replaces it."""
    sync_urls = urls or '[[sync_urls]]\ntitle = "main"\nurl = "http://server.test/smssync"\n'
    text = f"""
store = "{tmp / "gw.db"}"
[device]
device_id = "gw1"
own_number = "{GATEWAY_NUMBER}"
[forward]
first_delay_s = 0.05
cap_s = 0.2
[tasks]
interval_s = 0.1
[alerts]
check_interval_s = 0.05
{extra}
{sync_urls}"""
    return parse_config(text, "test.toml")


Scenario = Callable[[Gateway, SimNetwork], Awaitable[None]]


def run(
    cfg: GatewayConfig,
    server: FakeServer | dict[str, FakeServer],
    scenario: Scenario,
    knobs: Knobs | None = None,
    network: SimNetwork | None = None,
    backend: type[SimBackend] = SimBackend,
) -> SimNetwork:
    """Run a gateway on the sim network while ``scenario`` drives it; then stop it."""
    servers = server if isinstance(server, dict) else {"server.test": server}

    def handler(request: httpx.Request) -> httpx.Response:
        return servers[request.url.host].handler(request)

    net = network or SimNetwork(knobs, seed=1)

    async def main() -> None:
        store = GatewayStore(Path(cfg.store))
        await store.open()
        gateway = Gateway(
            cfg,
            backend(net, GATEWAY_NUMBER, poll_s=0.05),
            store,
            transport=httpx.MockTransport(handler),
            rng=random.Random(3),
        )
        stop = asyncio.Event()
        runner = asyncio.create_task(gateway.run(stop))
        try:
            await asyncio.wait_for(scenario(gateway, net), 10)
        finally:
            stop.set()
            await runner
            await store.close()

    asyncio.run(main())
    return net


async def until(check: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Wait until ``check()`` holds."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


def test_forwards_each_sms_once_with_the_app_fields(tmp_path: Path) -> None:
    server = FakeServer(secret="my secret")
    cfg = config(
        tmp_path, urls='[[sync_urls]]\nurl = "http://server.test/smssync"\nsecret = "s 1"\n'
    )

    async def scenario(gateway: Gateway, net: SimNetwork) -> None:
        await net.deliver(SENDER, GATEWAY_NUMBER, "Hello world")
        await until(lambda: len(server.posts) == 1)
        await asyncio.sleep(0.2)

    net = run(cfg, server, scenario)
    assert len(server.posts) == 1
    fields = server.posts[0]
    assert list(fields) == [
        "secret",
        "from",
        "message",
        "sent_timestamp",
        "sent_to",
        "message_id",
        "device_id",
    ]
    assert fields["secret"] == "s 1"
    assert fields["from"] == SENDER and fields["message"] == "Hello world"
    assert fields["sent_to"] == GATEWAY_NUMBER and fields["device_id"] == "gw1"
    assert len(fields["sent_timestamp"]) == 13
    assert fields["message_id"] == fields["message_id"].lower() and len(fields["message_id"]) == 36
    post = next(r for r in server.requests if r.method == "POST" and "task" not in r.url.params)
    assert post.headers["content-type"] == "application/x-www-form-urlencoded"
    assert post.headers["user-agent"].startswith("SMSSync-Android/v3.1.1 smssync-gateway/")
    assert b"Hello%20world" in post.content
    # Stored, then acknowledged: the phone holds nothing any more.
    assert net.phone(GATEWAY_NUMBER).pending_after(0) == []


def test_duplicate_delivery_and_rereads_upload_once(tmp_path: Path) -> None:
    server = FakeServer()

    async def scenario(gateway: Gateway, net: SimNetwork) -> None:
        for i in range(5):
            await net.deliver(SENDER, GATEWAY_NUMBER, f"sms {i}")
        await until(lambda: len(server.stored) == 5)
        await asyncio.sleep(0.2)

    net = run(config(tmp_path), server, scenario, Knobs(duplicate=1.0))
    assert len(net.phone(GATEWAY_NUMBER).received) == 10
    assert len(server.posts) == 5


def test_failed_uploads_retry_with_the_same_id_until_one_success(tmp_path: Path) -> None:
    server = FakeServer(fail_next=3)

    async def scenario(gateway: Gateway, net: SimNetwork) -> None:
        await net.deliver(SENDER, GATEWAY_NUMBER, "persist")
        await until(lambda: len(server.posts) == 1, 5)
        await asyncio.sleep(0.3)

    run(config(tmp_path), server, scenario)
    e1 = [r for r in server.requests if r.method == "POST" and "task" not in r.url.params]
    assert len(e1) == 4
    assert len({r.content for r in e1}) == 1
    assert len(server.posts) == 1


def test_a_confirmed_sms_is_not_uploaded_again_after_a_restart(tmp_path: Path) -> None:
    server = FakeServer()
    cfg = config(tmp_path)
    net = SimNetwork(seed=2)

    async def first(gateway: Gateway, net: SimNetwork) -> None:
        await net.deliver(SENDER, GATEWAY_NUMBER, "once")
        await until(lambda: len(server.posts) == 1)

    async def second(gateway: Gateway, net: SimNetwork) -> None:
        await asyncio.sleep(0.3)

    run(cfg, server, first, network=net)
    run(cfg, server, second, network=net)
    assert len(server.posts) == 1


def test_filters_lists_and_disabled_urls(tmp_path: Path) -> None:
    a, b, c = FakeServer(), FakeServer(), FakeServer()
    urls = """
[[sync_urls]]
title = "a"
url = "http://a.test/"
keywords = [" pay "]
[[sync_urls]]
title = "b"
url = "http://b.test/"
regex = ["^order \\\\d+$"]
[[sync_urls]]
title = "c"
url = "http://c.test/"
enabled = false
"""
    extra = '[lists]\nblacklist = ["0722 000 002", "Spam-Co"]\n'
    cfg = config(tmp_path, extra, urls)

    async def scenario(gateway: Gateway, net: SimNetwork) -> None:
        await net.deliver(SENDER, GATEWAY_NUMBER, "I will PAY tomorrow")
        await net.deliver(SENDER, GATEWAY_NUMBER, "ORDER 42")
        await net.deliver(SENDER, GATEWAY_NUMBER, "neither")
        await net.deliver("+254722000002", GATEWAY_NUMBER, "pay order 1")
        await net.deliver("spam-co", GATEWAY_NUMBER, "pay")
        await until(lambda: len(a.posts) == 1 and len(b.posts) == 1)
        await asyncio.sleep(0.2)
        counts = {c.sync_url: c for c in await gateway.store.counts()}
        assert counts["a"].forwarded == 1 and counts["a"].filtered == 2
        assert counts["a"].dropped == 2
        assert "c" not in counts

    run(cfg, {"a.test": a, "b.test": b, "c.test": c}, scenario)
    assert [p["message"] for p in a.posts] == ["I will PAY tomorrow"]
    assert [p["message"] for p in b.posts] == ["ORDER 42"]
    assert c.requests == []


def test_whitelist_compares_normalised_numbers(tmp_path: Path) -> None:
    server = FakeServer()
    cfg = config(tmp_path, '[lists]\nwhitelist = ["0711-000-001"]\n')

    async def scenario(gateway: Gateway, net: SimNetwork) -> None:
        await net.deliver(SENDER, GATEWAY_NUMBER, "listed")
        await net.deliver("+254799999999", GATEWAY_NUMBER, "not listed")
        await until(lambda: len(server.posts) == 1)
        await asyncio.sleep(0.2)

    run(cfg, server, scenario)
    assert [p["message"] for p in server.posts] == ["listed"]


def test_query_codes_are_answered_and_not_forwarded(tmp_path: Path) -> None:
    server = FakeServer()

    async def scenario(gateway: Gateway, net: SimNetwork) -> None:
        net.phone(GATEWAY_NUMBER).set_status(battery_percent=57)
        for code in ("@10", " @20 ", "@30", "@40"):
            await net.deliver(SENDER, GATEWAY_NUMBER, code)
        await until(lambda: len(net.phone(SENDER).received) == 4)

    net = run(config(tmp_path), server, scenario)
    texts = sorted(s.content for s in net.phone(SENDER).received)
    assert "Cell reception ok" in texts
    assert "Battery level is at 57" in texts
    assert "Server main responded with 200 status code \n" in texts
    assert (
        "Server main responded with 200 status code \n\nBattery level is at 57\nCell reception ok"
        in texts
    )
    assert server.posts == []


def test_auto_reply_once_and_never_to_a_dropped_sender(tmp_path: Path) -> None:
    server = FakeServer()
    extra = '[replies]\nauto_reply = "Thanks!"\n[lists]\nblacklist = ["+254722000002"]\n'

    async def scenario(gateway: Gateway, net: SimNetwork) -> None:
        await net.deliver(SENDER, GATEWAY_NUMBER, "hi")
        await net.deliver("+254722000002", GATEWAY_NUMBER, "hi")
        await until(lambda: len(net.phone(SENDER).received) >= 1)
        await asyncio.sleep(0.2)

    net = run(config(tmp_path, extra), server, scenario, Knobs(duplicate=1.0))
    # The network duplicates every delivery; the gateway sent one reply (one outbox entry).
    replies = [s for s in net.outbox if s.to_addr == SENDER]
    assert [s.content for s in replies] == ["Thanks!"]
    assert net.phone("+254722000002").received == []


def test_reply_from_server_messages_are_sent_once_per_incoming_sms(tmp_path: Path) -> None:
    server = FakeServer(piggyback=[TaskMessage("+254733000003", "Got it", "e2-uuid-1")])
    cfg = config(tmp_path)
    cfg = cfg.model_copy(
        update={
            "replies": cfg.replies.model_copy(update={"from_server": True}),
            "tasks": cfg.tasks.model_copy(update={"enabled": False}),
        }
    )

    async def scenario(gateway: Gateway, net: SimNetwork) -> None:
        await net.deliver(SENDER, GATEWAY_NUMBER, "one")
        await net.deliver(SENDER, GATEWAY_NUMBER, "two")
        await until(lambda: len(net.phone("+254733000003").received) >= 2)
        # The same SMS uploaded again (a crash before its success was recorded) brings the
        # same reply: not sent again.
        again = [TaskMessage("+254733000003", "Got it", "e2-uuid-1")]
        await gateway.outbound.add_replies("main", 1, again)
        await gateway.outbound.add_replies("main", 2, again)
        await asyncio.sleep(0.3)

    net = run(cfg, server, scenario)
    # One reply per incoming SMS, though the server gave both the same uuid.
    assert [s.content for s in net.phone("+254733000003").received] == ["Got it", "Got it"]


def test_task_poll_handshake_send_once_and_report(tmp_path: Path) -> None:
    wanted = ["11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"]
    server = FakeServer(
        secret="s",
        queue=[
            TaskMessage("+254744000001", "first", wanted[0]),
            TaskMessage("+254744000002", "second", wanted[1]),
        ],
        # The server lists back only the first (the second was cancelled meanwhile).
        accept=lambda ids: [i for i in ids if i == wanted[0]],
        result_uuids=[*wanted, "33333333-3333-4333-8333-333333333333"],
    )
    cfg = config(
        tmp_path, urls='[[sync_urls]]\ntitle = "main"\nurl = "http://server.test/s"\nsecret = "s"\n'
    )

    async def scenario(gateway: Gateway, net: SimNetwork) -> None:
        await until(lambda: len(server.result_reports) >= 3)

    net = run(cfg, server, scenario)
    sent = [s for s in net.outbox if s.from_addr == GATEWAY_NUMBER]
    assert [(s.to_addr, s.content) for s in sent] == [("+254744000001", "first")]
    assert server.sent_requests[0] == wanted
    # Later rounds still list the known uuid in E5 (G-13) without sending it again.
    assert all(r == wanted for r in server.sent_requests)
    e5 = next(r for r in server.requests if r.url.params.get("task") == "sent")
    assert e5.url.params.get("secret") == "s"
    report = json.loads(server.result_reports[-1])
    assert isinstance(report["message_result"], list)
    entries = results.parse_result_request(server.result_reports[-1])
    assert [e.message_id for e in entries] == [wanted[0]]
    assert entries[0].sent_code == -1 and entries[0].sent_message == "SMS sent"
    assert entries[0].delivered_code == -1 and entries[0].delivered_message == "SMS delivered"
    assert entries[0].delivered_timestamp is not None


class UnknownOutcomeBackend(SimBackend):
    """Like Termux without "submitted = sent": the SMS goes out, but no sent code comes back."""

    capabilities = Capabilities(delivery_reports=False, battery=True, signal=True)

    async def send(self, to_addr: str, content: str, request_report: bool) -> SendResult:
        done = await super().send(to_addr, content, request_report)
        if to_addr == "+254744000002":
            return SendResult(None, None, done.at, "submitted")
        return done


def test_a_send_with_unknown_outcome_is_sent_once_and_reported_without_a_code(
    tmp_path: Path,
) -> None:
    wanted = ["11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"]
    server = FakeServer(
        queue=[
            TaskMessage("+254744000001", "known", wanted[0]),
            TaskMessage("+254744000002", "unknown", wanted[1]),
        ],
        result_uuids=wanted,
    )
    cfg = config(tmp_path, urls='[[sync_urls]]\ntitle = "main"\nurl = "http://server.test/s"\n')

    async def scenario(gateway: Gateway, net: SimNetwork) -> None:
        await until(lambda: len(server.result_reports) >= 3)

    net = run(cfg, server, scenario, backend=UnknownOutcomeBackend)
    sent = [(s.to_addr, s.content) for s in net.outbox if s.from_addr == GATEWAY_NUMBER]
    # Every later round still offers both uuids: neither is ever sent again (G-13).
    assert sent == [("+254744000001", "known"), ("+254744000002", "unknown")]
    for raw in server.result_reports:
        by_uuid = {e["uuid"]: e for e in json.loads(raw)["message_result"]}
        # Nothing invented: the uuid alone, no sent code or text, no delivery fields (§7).
        assert by_uuid[wanted[1]] == {"uuid": wanted[1]}
        assert by_uuid[wanted[0]]["sent_result_code"] == -1
        assert "delivered_result_code" not in by_uuid[wanted[0]]
    entries = results.parse_result_request(server.result_reports[-1])
    assert [e.message_id for e in entries] == wanted
    assert entries[1] == MessageResult(wanted[1])
    # The server side reads the bare entry as "no news" (S-33).
    assert results.outcome(entries[1], UTC).status is None


def test_a_wrong_secret_echo_sends_nothing(tmp_path: Path) -> None:
    server = FakeServer(queue=[TaskMessage("+254744000001", "x", "u-1")])
    cfg = config(tmp_path, urls='[[sync_urls]]\nurl = "http://server.test/s"\nsecret = "S"\n')
    original = server.handler

    def lying(request: httpx.Request) -> httpx.Response:
        if request.url.params.get("task") == "send":
            return httpx.Response(200, content=tasks.build_send_reply(server.queue, "s"))
        return original(request)

    server.handler = lying  # type: ignore[method-assign]

    async def scenario(gateway: Gateway, net: SimNetwork) -> None:
        await asyncio.sleep(0.4)

    net = run(cfg, server, scenario)
    assert net.outbox == []
    assert server.sent_requests == []


def test_results_api_off_sends_without_handshake(tmp_path: Path) -> None:
    server = FakeServer(queue=[TaskMessage("+254744000001", "x", None)])
    cfg = config(tmp_path)
    cfg = cfg.model_copy(update={"tasks": cfg.tasks.model_copy(update={"results_api": False})})

    async def scenario(gateway: Gateway, net: SimNetwork) -> None:
        await asyncio.sleep(0.4)

    net = run(cfg, server, scenario)
    # A task without uuid cannot be recognised again: each poll hands out a new one.
    assert len(net.outbox) >= 2
    assert server.sent_requests == []


def test_battery_low_alerts_once_per_crossing(tmp_path: Path) -> None:
    server = FakeServer()
    cfg = config(tmp_path)
    cfg = cfg.model_copy(
        update={"alerts": cfg.alerts.model_copy(update={"number": "+254755000000"})}
    )

    async def scenario(gateway: Gateway, net: SimNetwork) -> None:
        phone = net.phone(GATEWAY_NUMBER)
        phone.set_status(battery_percent=14)
        await until(lambda: len(server.alerts) == 1)
        await asyncio.sleep(0.2)
        phone.set_status(battery_percent=50)
        await asyncio.sleep(0.2)
        phone.set_status(battery_percent=10)
        await until(lambda: len(server.alerts) == 2)
        await until(lambda: len(net.phone("+254755000000").received) == 2)

    net = run(cfg, server, scenario)
    assert server.alerts[0] == {"Task": "alert", "message": "Battery level is at 14"}
    texts = [s.content for s in net.phone("+254755000000").received]
    assert texts == ["Battery level is at 14", "Battery level is at 10"]
    alert = next(r for r in server.requests if b"Task=alert" in r.content)
    assert alert.url.query == b""


def test_backlog_drains_concurrently(tmp_path: Path) -> None:
    server = FakeServer()

    async def scenario(gateway: Gateway, net: SimNetwork) -> None:
        for i in range(300):
            await net.deliver(SENDER, GATEWAY_NUMBER, f"backlog {i}")
        await until(lambda: len(server.stored) == 300, 10)

    run(config(tmp_path), server, scenario)
    assert len(server.posts) == 300
