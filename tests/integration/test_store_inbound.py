"""Incoming SMS under group commit: many at once, duplicates inside and across batches."""

from __future__ import annotations

import asyncio

import pytest

from smssync.errors import StoreUnavailable
from smssync.store import open_store
from smssync.store.base import Store
from tests.pg import pg_admin, pg_url

from .store_helpers import device, incoming


async def test_concurrent_sms_share_batches_and_keep_their_ids(store: Store) -> None:
    a = await device(store, "a")
    b = await device(store, "b")
    await store.record_inbound(incoming(a.id, "old"))
    # Duplicates within one batch (same device and key), across devices (not duplicates)
    # and of a row stored before.
    keys = [(a.id, f"k{i % 40}") for i in range(120)] + [(b.id, "k1"), (a.id, "old")]
    results = await asyncio.gather(*(store.record_inbound(incoming(d, k)) for d, k in keys))
    stored = {(m.device, m.message_id): m.id for m in await store.inbound(limit=1000)}
    assert len(stored) == 42
    names = {a.id: "a", b.id: "b"}
    for (device_id, key), (_, row_id) in zip(keys, results, strict=True):
        assert stored[(names[device_id], key)] == row_id  # every caller gets the stored row
    created = [k for k, (new, _) in zip(keys, results, strict=True) if new]
    assert sorted(created) == sorted(set(keys) - {(a.id, "old")})  # each new key once


async def test_a_bad_sms_fails_alone(store: Store) -> None:
    a = await device(store, "a")
    good = [incoming(a.id, f"g{i}") for i in range(5)]
    bad = incoming(a.id + 1000, "no such device")  # violates the foreign key
    results = await asyncio.gather(
        *(store.record_inbound(m) for m in [*good[:3], bad, *good[3:]]), return_exceptions=True
    )
    assert isinstance(results[3], Exception)
    assert all(isinstance(r, tuple) and r[0] for r in results[:3] + results[4:])
    stored = {m.message_id for m in await store.inbound()}
    assert stored == {m.message_id for m in good}


@pytest.mark.postgres
async def test_postgres_reconnects_after_losing_its_connections(pg_database: str) -> None:
    store = open_store(pg_url(pg_database))
    await store.open()
    try:
        a = await device(store, "a")
        assert (await store.record_inbound(incoming(a.id, "k1")))[0]
        # The server drops every connection of this database (a restart, a failover).
        pg_admin(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            f" WHERE datname = '{pg_database}'"
        )
        with pytest.raises(StoreUnavailable):  # the phone hears 503 and retries
            await store.record_inbound(incoming(a.id, "k2"))
        assert await store.record_inbound(incoming(a.id, "k2")) == (True, 2)
        assert [m.message_id for m in await store.inbound()] == ["k1", "k2"]
    finally:
        await store.close()
