"""The brake on guessing (issue 14, finding 6): 429 with Retry-After after a burst of failed
authentications, per address and per target, never for the right credentials."""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from starlette.applications import Starlette

from smssync.records import Scope
from smssync.server.apikeys import create_key
from smssync.server.app import create_app
from smssync.server.credentials import create_device
from smssync.server.throttle import Throttle
from smssync.settings import Settings
from smssync.store.engine import Database
from tests.integration.test_metrics import samples, value

ATTACKER, PHONE, OTHER = "10.0.0.66", "10.0.0.7", "10.0.0.99"


@pytest.fixture
async def app(store: Database) -> AsyncIterator[Starlette]:
    app = create_app(Settings(auth_failures_burst=20, auth_failures_per_min=10), store)
    async with app.router.lifespan_context(app):
        yield app


def client_from(app: Starlette, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://sms")


def throttle_of(app: Starlette) -> Throttle:
    throttle = app.state.ctx.throttle
    assert isinstance(throttle, Throttle)
    return throttle


def basic(user: str, password: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def guess(
    attacker: httpx.AsyncClient, phone: httpx.AsyncClient, wrong: str, right: str, **kw: str
) -> Counter[int]:
    """Send 300 wrong guesses, the right credential from the phone every 30; return the
    guesses' statuses."""
    statuses: Counter[int] = Counter()
    for i in range(300):
        reply = await attacker.get(wrong.format(i=i), headers=kw)
        statuses[reply.status_code] += 1
        if reply.status_code == 429:
            assert int(reply.headers["retry-after"]) >= 1
            assert reply.json() is not None
        if i % 30 == 0:
            ok = await phone.get(right, headers=kw)
            assert ok.status_code == 200, ok.text
    return statuses


async def test_wrong_secrets_at_a_device_url_get_429_and_the_phone_still_passes(
    store: Database, app: Starlette
) -> None:
    _, issued = await create_device(store, "a", datetime.now(UTC), secret="right")
    url = f"/smssync/d/{issued.token}?task=send&secret="
    async with client_from(app, ATTACKER) as attacker, client_from(app, PHONE) as phone:
        statuses = await guess(attacker, phone, url + "wrong{i}", url + "right")
        assert statuses == {403: 20, 429: 280}
        # The guessing address is braked before its guesses are checked: a right one too.
        assert (await attacker.get(url + "right")).status_code == 429
    async with client_from(app, OTHER) as other:
        # The device's bucket is empty: a guess from anywhere else is refused as well.
        assert (await other.get(url + "wrong")).status_code == 429
        assert (await other.get(url + "right")).status_code == 200
    throttle = throttle_of(app)
    # 20 guesses checked, then the address was braked unchecked; 1 checked from OTHER.
    assert throttle.failures["sync_url"] == 20 + 1
    assert throttle.throttled["sync_url"] == 280 + 1 + 1


async def test_wrong_secrets_on_the_shared_url_get_429(store: Database, app: Starlette) -> None:
    await create_device(store, "a", datetime.now(UTC), secret="human chosen")
    url = "/smssync?task=send&secret="
    async with client_from(app, ATTACKER) as attacker, client_from(app, PHONE) as phone:
        statuses = await guess(attacker, phone, url + "guess{i}", url + "human+chosen")
    assert statuses == {403: 20, 429: 280}


async def test_wrong_basic_passwords_get_429(store: Database, app: Starlette) -> None:
    await create_device(
        store, "a", datetime.now(UTC), secret=None, basic_user="bee", basic_password="pw"
    )
    statuses: Counter[int] = Counter()
    async with client_from(app, ATTACKER) as attacker, client_from(app, PHONE) as phone:
        for i in range(300):
            reply = await attacker.get("/smssync?task=send", headers=basic("bee", f"pw{i}"))
            statuses[reply.status_code] += 1
            if i % 30 == 0:
                ok = await phone.get("/smssync?task=send", headers=basic("bee", "pw"))
                assert ok.status_code == 200
    assert statuses == {401: 20, 429: 280}
    assert throttle_of(app).failures["basic"] == 20


async def test_wrong_api_keys_get_429_and_the_right_key_still_works(
    store: Database, app: Starlette
) -> None:
    _, key = await create_key(store, "r", [Scope.READ], datetime.now(UTC))
    statuses: Counter[int] = Counter()
    async with client_from(app, ATTACKER) as attacker, client_from(app, PHONE) as good:
        for i in range(300):
            reply = await attacker.get(
                "/api/v1/messages", headers={"authorization": f"Bearer ssk_guess{i}"}
            )
            statuses[reply.status_code] += 1
            if reply.status_code == 429:
                assert int(reply.headers["retry-after"]) >= 1
                assert reply.json()["status"] == 429
            if i % 30 == 0:
                ok = await good.get("/api/v1/messages", headers={"authorization": f"Bearer {key}"})
                assert ok.status_code == 200, ok.text
    assert statuses == {401: 20, 429: 280}
    assert throttle_of(app).failures["apikey"] == 20


async def test_failures_and_429s_are_counted_in_the_metrics(
    store: Database, app: Starlette
) -> None:
    _, issued = await create_device(store, "a", datetime.now(UTC), secret="right")
    url = f"/smssync/d/{issued.token}?task=send&secret="
    async with client_from(app, ATTACKER) as attacker:
        # The counters are the process's: other tests' counts are in them too.
        before = samples((await attacker.get("/metrics")).text)
        for i in range(25):
            await attacker.get(url + f"wrong{i}")
        await attacker.get("/api/v1/messages", headers={"authorization": "Bearer ssk_guess"})
        after = samples((await attacker.get("/metrics")).text)

    def counted(name: str, credential: str) -> float:
        labels = {"credential": credential}
        return value(after, name, **labels) - value(before, name, **labels)

    # 20 wrong secrets checked, then 5 requests braked unchecked; the braked address's API
    # request is refused before its key is looked at.
    assert counted("smssync_auth_failures_total", "sync_url") == 20
    assert counted("smssync_auth_throttled_total", "sync_url") == 5
    assert counted("smssync_auth_failures_total", "apikey") == 0
    assert counted("smssync_auth_throttled_total", "apikey") == 1


def test_buckets_refill_and_memory_stays_bounded() -> None:
    now = [0.0]
    throttle = Throttle(burst=2, per_min=6, entries=100, clock=lambda: now[0])
    assert throttle.failed("a", "t", "x") is None
    assert throttle.failed("a", "t", "x") is None
    assert throttle.failed("a", "t", "x") == 10  # one failure back every 10 s
    assert throttle.blocked("a", "x") == 10
    now[0] = 10.0
    assert throttle.blocked("a", "x") is None
    assert throttle.blocked("b", "x") is None  # another address is not braked
    for i in range(10_000):
        throttle.failed(f"addr{i}", f"target{i}", "x")
    assert all(len(b) <= 100 for b in throttle._buckets.values())
    off = Throttle(burst=0, per_min=0)
    assert all(off.failed("a", "t", "x") is None for _ in range(100))
