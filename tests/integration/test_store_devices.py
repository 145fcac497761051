"""Store verbs for devices, events, incoming SMS and the server key, on both engines."""

from __future__ import annotations

import pytest

from smssync.errors import Conflict, NotFound
from smssync.messages import AckMode
from smssync.store.base import Credentials, DeviceSettings, Store
from tests.integration.store_helpers import T0, at, device, incoming, queue


async def test_server_key_is_created_once(store: Store, store_url: str) -> None:
    key = await store.server_key()
    assert len(key) == 32
    assert await store.server_key() == key
    from smssync.store import open_store

    again = open_store(store_url)
    await again.open()
    try:
        assert await again.server_key() == key
    finally:
        await again.close()


async def test_add_device_and_look_it_up_every_way(store: Store) -> None:
    creds = Credentials(b"token", b"secret", "bee", b"pw")
    added = await store.add_device("a", creds, DeviceSettings(ack_mode=AckMode.HANDSHAKE), T0)
    assert added.name == "a" and added.has_secret and added.basic_user == "bee"
    assert added.effective_mode is AckMode.HANDSHAKE
    assert added.created_at == T0 and added.last_seen_at is None
    assert await store.device_by_name("a") == added
    assert await store.device_by_token(b"token") == added
    assert await store.device_by_secret(b"secret") == added
    assert await store.device_by_basic_user("bee") == (added, b"pw")
    assert await store.device_credentials(added.id) == creds
    assert await store.device_by_name("nope") is None
    assert await store.device_by_token(b"nope") is None
    with pytest.raises(NotFound):
        await store.device_credentials(999)


@pytest.mark.parametrize(
    ("name", "creds"),
    [
        ("a", Credentials(b"t2", None, None, None)),
        ("b", Credentials(b"t1", None, None, None)),
        ("b", Credentials(b"t2", None, "u1", None)),
    ],
    ids=["name", "token", "basic-user"],
)
async def test_taken_values_conflict(store: Store, name: str, creds: Credentials) -> None:
    await store.add_device("a", Credentials(b"t1", b"s1", "u1", b"p"), DeviceSettings(), T0)
    with pytest.raises(Conflict):
        await store.add_device(name, creds, DeviceSettings(), T0)
    # The failed insert left the store usable and unchanged.
    assert [d.name for d in await store.devices()] == ["a"]


async def test_two_devices_may_not_share_a_secret(store: Store) -> None:
    """A shared secret would identify nobody on the shared Sync URL (finding 10)."""
    a = await store.add_device("a", Credentials(b"t1", b"s", None, None), DeviceSettings(), T0)
    with pytest.raises(Conflict, match="another device has this secret"):
        await store.add_device("b", Credentials(b"t2", b"s", None, None), DeviceSettings(), T0)
    await store.add_device("b", Credentials(b"t2", b"s2", None, None), DeviceSettings(), T0)
    with pytest.raises(Conflict, match="another device has this secret"):
        await store.update_device("b", credentials=Credentials(b"t2", b"s", None, None))
    # A device keeps its own secret when its other credentials change.
    await store.update_device("a", credentials=Credentials(b"t3", b"s", None, None))
    assert (await store.device_by_secret(b"s")).id == a.id  # type: ignore[union-attr]
    assert (await store.device_by_secret(b"s2")).name == "b"  # type: ignore[union-attr]


async def test_devices_without_secret_can_coexist(store: Store) -> None:
    await store.add_device("b", Credentials(b"t1", None, None, None), DeviceSettings(), T0)
    await store.add_device("a", Credentials(b"t2", None, None, None), DeviceSettings(), T0)
    assert [d.name for d in await store.devices()] == ["a", "b"]


async def test_update_device(store: Store) -> None:
    a = await device(store, "a")
    await device(store, "b")
    changed = await store.update_device(
        "a", settings=DeviceSettings(ack_mode=AckMode.HANDSHAKE, batch_limit=5)
    )
    assert changed.settings.batch_limit == 5 and changed.effective_mode is AckMode.HANDSHAKE
    changed = await store.update_device("a", credentials=Credentials(b"new", b"s", None, None))
    assert changed.has_secret and await store.device_by_token(b"new") == changed
    assert changed.id == a.id
    b_token = (await store.device_credentials((await store.devices())[1].id)).token_hash
    with pytest.raises(Conflict):
        await store.update_device("a", credentials=Credentials(b_token, None, None, None))
    with pytest.raises(NotFound):
        await store.update_device("zz", settings=DeviceSettings())


async def test_remove_device_unassigns_its_queue(store: Store) -> None:
    a = await device(store, "a")
    await device(store, "b")
    [pinned] = await queue(store, 1, device="a")
    await store.record_inbound(incoming(a.id))
    await store.record_event(a.id, "alert", {"message": "x"}, T0)
    await store.remove_device("a")
    assert await store.device_by_name("a") is None
    [message] = await store.outbound(message_id=pinned)
    assert message.device is None and message.status.value == "queued"
    assert await store.queue_depths() == {None: 1}
    [kept] = await store.inbound()
    assert kept.device == ""
    assert await store.events() == []
    with pytest.raises(NotFound):
        await store.remove_device("a")


async def test_touch_device_is_coalesced(store: Store) -> None:
    a = await device(store, "a", seen=None)
    await store.touch_device(a.id, at(0), "ua/1")
    await store.touch_device(a.id, at(2), "ua/1")  # within 5 s: skipped
    found = await store.device_by_name("a")
    assert found is not None and found.last_seen_at == at(0)
    await store.touch_device(a.id, at(3), "ua/2")  # a new User-Agent is written at once
    await store.touch_device(a.id, at(9), "ua/2")
    found = await store.device_by_name("a")
    assert found is not None
    assert (found.last_seen_at, found.last_user_agent) == (at(9), "ua/2")


async def test_events_newest_first_per_device(store: Store) -> None:
    a = await device(store, "a")
    b = await device(store, "b")
    await store.record_event(a.id, "test_integration", {}, at(1))
    await store.record_event(b.id, "alert", {"battery": 10}, at(2))
    events = await store.events()
    assert [(e["device"], e["kind"], e["detail"], e["at"]) for e in events] == [
        ("b", "alert", {"battery": 10}, at(2)),
        ("a", "test_integration", {}, at(1)),
    ]
    assert [e["kind"] for e in await store.events(device="a")] == ["test_integration"]
    assert len(await store.events(limit=1)) == 1


async def test_inbound_is_deduplicated_per_device(store: Store) -> None:
    a = await device(store, "a")
    b = await device(store, "b")
    created, first = await store.record_inbound(incoming(a.id, "k1"))
    assert created
    assert await store.record_inbound(incoming(a.id, "k1", content="retry")) == (False, first)
    created, other = await store.record_inbound(incoming(b.id, "k1"))
    assert created and other != first
    stored = await store.inbound()
    assert [(m.device, m.content) for m in stored] == [("a", "hi"), ("b", "hi")]
    message = stored[0]
    assert message.flags == ("a", "b") and message.sent_at == T0 and message.received_at == at(1)
    assert message.from_raw == "0700 000001" and message.sent_timestamp_raw == "1893499200000"
    assert [m.device for m in await store.inbound(device="b")] == ["b"]
    assert [m.id for m in await store.inbound(after_id=first)] == [other]
    assert len(await store.inbound(limit=1)) == 1
