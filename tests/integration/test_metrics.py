"""``/metrics`` of one process, in-process on both stores: the store's gauges are its counts,
requests are counted by kind and status, the token guards the page, and every answer
carries its request id."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from smssync.server.app import create_app
from smssync.server.logs import RequestIdFilter
from smssync.settings import Settings
from smssync.store import alerts, devices, serverkey
from smssync.store.engine import Database
from tests.integration.api_helpers import incoming, phone, poll
from tests.integration.store_helpers import queue_some

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    """Every sample of an exposition, by name and sorted labels."""
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
async def client(store: Database) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(), store)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sms") as made:
            yield made


async def scrape(client: httpx.AsyncClient, **headers: str) -> Samples:
    reply = await client.get("/metrics", headers=headers)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/plain")
    return samples(reply.text)


REQUESTS = "smssync_http_request_duration_seconds_count"


async def test_store_gauges_are_the_stores_counts(
    client: httpx.AsyncClient, store: Database
) -> None:
    before = await scrape(client)
    assert value(before, "smssync_store_up") == 1
    assert value(before, "smssync_sms_in") == 0 and value(before, "smssync_phones") == 0
    url = await phone(store, "p1")
    await phone(store, "p2")  # registered, never seen: offline
    for n in range(3):
        await incoming(client, url, "+254700000001", f"hello {n}", f"m-{n}")
    await queue_some(store, 4)
    assert len(await poll(client, url)) == 4  # dispatched now, and p1 is online
    await queue_some(store, 2)
    after = await scrape(client)
    assert value(after, "smssync_sms_in") == 3
    assert value(after, "smssync_sms_out", status="dispatched") == 4
    assert value(after, "smssync_sms_out", status="queued") == 2
    assert value(after, "smssync_sms_out", status="delivered") == 0  # every status present
    assert value(after, "smssync_queue_depth") == 2
    assert value(after, "smssync_phones") == 2 and value(after, "smssync_phones_online") == 1
    assert value(after, "smssync_webhook_deliveries_pending") == 0
    # Requests by kind and status (this process's counters: compared with before).
    grew = value(after, REQUESTS, kind="sync_upload", status="200") - value(
        before, REQUESTS, kind="sync_upload", status="200"
    )
    assert grew == 3
    sends = value(after, REQUESTS, kind="sync_send", status="200")
    assert sends - value(before, REQUESTS, kind="sync_send", status="200") == 1
    assert value(after, REQUESTS, kind="metrics", status="200") >= 1  # the first scrape
    # The incoming SMS went through the group commit.
    batched = value(after, "smssync_store_batch_size_count", verb="record_inbound_many")
    assert batched - value(before, "smssync_store_batch_size_count", verb="record_inbound_many") > 0


async def test_open_alerts_are_a_gauge_by_kind(client: httpx.AsyncClient, store: Database) -> None:
    before = await scrape(client)
    assert value(before, "smssync_alerts_open", kind="device.battery_low") == 0
    await phone(store, "p1")
    found = await devices.device_by_name(store, "p1")
    assert found is not None
    battery = {"message": "Battery level is at 12", "error_code": None, "battery_percent": 12}
    assert await alerts.record_phone_alert(store, found.id, battery, datetime.now(UTC))
    after = await scrape(client)
    assert value(after, "smssync_alerts_open", kind="device.battery_low") == 1
    assert value(after, "smssync_alerts_open", kind="device.silent") == 0  # every kind present


async def test_refusals_are_counted_by_status(client: httpx.AsyncClient) -> None:
    before = await scrape(client)
    assert (await client.get("/smssync?task=send&secret=wrong")).status_code == 403
    assert (await client.get("/nothing-here")).status_code == 404
    after = await scrape(client)
    for kind, status in (("sync_send", "403"), ("other", "404")):
        grew = value(after, REQUESTS, kind=kind, status=status)
        assert grew - value(before, REQUESTS, kind=kind, status=status) == 1


async def test_the_token_guards_metrics(store: Database) -> None:
    app = create_app(Settings(metrics_token="scrape-token-1"), store)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sms") as client:
            for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": "Basic x"}):
                refused = await client.get("/metrics", headers=headers)
                assert refused.status_code == 401
                assert refused.headers["www-authenticate"].startswith("Bearer")
                body = refused.json()
                assert body["ok"] is False and body["status"] == 401
                assert "smssync_" not in refused.text
            found = await scrape(client, authorization="Bearer scrape-token-1")
            assert value(found, "smssync_store_up") == 1
            # The probes stay open: a load balancer has no token.
            assert (await client.get("/healthz")).status_code == 200


async def test_a_store_that_does_not_answer_is_a_gauge_and_a_logged_warning(
    store: Database, caplog: pytest.LogCaptureFixture
) -> None:
    await serverkey.server_key(store)
    app = create_app(Settings(), store)
    caplog.handler.addFilter(RequestIdFilter())
    async with app.router.lifespan_context(app):
        await store.close()  # as after a lost database
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sms") as client:
            with caplog.at_level(logging.WARNING, "smssync"):
                reply = await client.get("/metrics", headers={"x-request-id": "scrape-42"})
    assert reply.status_code == 200
    found = samples(reply.text)
    assert value(found, "smssync_store_up") == 0
    assert ("smssync_sms_in", ()) not in found
    warned = [r for r in caplog.records if "metrics: the store did not answer" in r.getMessage()]
    assert [getattr(r, "request_id", None) for r in warned] == ["scrape-42"]


@pytest.mark.parametrize("path", ["/smssync", "/api/v1/messages", "/healthz", "/missing"])
async def test_every_answer_carries_its_request_id(client: httpx.AsyncClient, path: str) -> None:
    kept = await client.get(path, headers={"x-request-id": "lb-0001"})
    assert kept.headers["x-request-id"] == "lb-0001"
    replaced = await client.get(path, headers={"x-request-id": "bad id\twith tab"})
    assert replaced.headers["x-request-id"] not in ("", "bad id\twith tab")
    made = [(await client.get(path)).headers["x-request-id"] for _ in range(3)]
    assert len(set(made)) == 3


async def test_a_refused_head_carries_its_request_id(client: httpx.AsyncClient) -> None:
    # RequestLimits answers 431 before any route: the id is added outside it.
    many = {f"x-h{i}": "v" for i in range(200)}
    reply = await client.get("/smssync", headers={**many, "x-request-id": "big-1"})
    assert reply.status_code == 431
    assert reply.headers["x-request-id"] == "big-1"
