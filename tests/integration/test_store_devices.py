"""Store verbs for devices, events, incoming SMS and the server key, on both engines."""

from __future__ import annotations

import pytest

from smssync.errors import Conflict, NotFound
from smssync.records import AckMode, Credentials, DeviceSettings
from smssync.store import devices, inbox, liveness, messages, serverkey
from smssync.store.engine import Database
from tests.integration.store_helpers import T0, at, device, incoming, queue_some


async def test_server_key_is_created_once(store: Database, store_url: str) -> None:
    key = await serverkey.server_key(store)
    assert len(key) == 32
    assert await serverkey.server_key(store) == key
    from smssync.store import open_store

    again = open_store(store_url)
    await again.open()
    try:
        assert await serverkey.server_key(again) == key
    finally:
        await again.close()


async def test_add_device_and_look_it_up_every_way(store: Database) -> None:
    creds = Credentials(b"token", b"secret", "bee", b"pw")
    added = await devices.add_device(
        store, "a", creds, DeviceSettings(ack_mode=AckMode.HANDSHAKE), T0
    )
    assert added.name == "a" and added.has_secret and added.basic_user == "bee"
    assert added.effective_mode is AckMode.HANDSHAKE
    assert added.created_at == T0 and added.last_seen_at is None
    assert await devices.device_by_name(store, "a") == added
    assert await devices.device_by_token(store, b"token") == added
    assert await devices.device_by_secret(store, b"secret") == added
    assert await devices.device_by_basic_user(store, "bee") == (added, b"pw")
    assert await devices.device_credentials(store, added.id) == creds
    assert await devices.device_by_name(store, "nope") is None
    assert await devices.device_by_token(store, b"nope") is None
    with pytest.raises(NotFound):
        await devices.device_credentials(store, 999)


@pytest.mark.parametrize(
    ("name", "creds"),
    [
        ("a", Credentials(b"t2", None, None, None)),
        ("b", Credentials(b"t1", None, None, None)),
        ("b", Credentials(b"t2", None, "u1", None)),
    ],
    ids=["name", "token", "basic-user"],
)
async def test_taken_values_conflict(store: Database, name: str, creds: Credentials) -> None:
    await devices.add_device(
        store, "a", Credentials(b"t1", b"s1", "u1", b"p"), DeviceSettings(), T0
    )
    with pytest.raises(Conflict):
        await devices.add_device(store, name, creds, DeviceSettings(), T0)
    # The failed insert left the store usable and unchanged.
    assert [d.name for d in await devices.all_devices(store)] == ["a"]


async def test_two_devices_may_not_share_a_secret(store: Database) -> None:
    """A shared secret would identify nobody on the shared Sync URL (finding 10)."""
    a = await devices.add_device(
        store, "a", Credentials(b"t1", b"s", None, None), DeviceSettings(), T0
    )
    with pytest.raises(Conflict, match="another device has this secret"):
        await devices.add_device(
            store, "b", Credentials(b"t2", b"s", None, None), DeviceSettings(), T0
        )
    await devices.add_device(
        store, "b", Credentials(b"t2", b"s2", None, None), DeviceSettings(), T0
    )
    with pytest.raises(Conflict, match="another device has this secret"):
        await devices.update_device(store, "b", credentials=Credentials(b"t2", b"s", None, None))
    # A device keeps its own secret when its other credentials change.
    await devices.update_device(store, "a", credentials=Credentials(b"t3", b"s", None, None))
    assert (await devices.device_by_secret(store, b"s")).id == a.id  # type: ignore[union-attr]
    assert (await devices.device_by_secret(store, b"s2")).name == "b"  # type: ignore[union-attr]


async def test_devices_without_secret_can_coexist(store: Database) -> None:
    await devices.add_device(store, "b", Credentials(b"t1", None, None, None), DeviceSettings(), T0)
    await devices.add_device(store, "a", Credentials(b"t2", None, None, None), DeviceSettings(), T0)
    assert [d.name for d in await devices.all_devices(store)] == ["a", "b"]


async def test_update_device(store: Database) -> None:
    a = await device(store, "a")
    await device(store, "b")
    changed = await devices.update_device(
        store, "a", settings=DeviceSettings(ack_mode=AckMode.HANDSHAKE, batch_limit=5)
    )
    assert changed.settings.batch_limit == 5 and changed.effective_mode is AckMode.HANDSHAKE
    changed = await devices.update_device(
        store, "a", credentials=Credentials(b"new", b"s", None, None)
    )
    assert changed.has_secret and await devices.device_by_token(store, b"new") == changed
    assert changed.id == a.id
    b_token = (
        await devices.device_credentials(store, (await devices.all_devices(store))[1].id)
    ).token_hash
    with pytest.raises(Conflict):
        await devices.update_device(store, "a", credentials=Credentials(b_token, None, None, None))
    with pytest.raises(NotFound):
        await devices.update_device(store, "zz", settings=DeviceSettings())


async def test_remove_device_unassigns_its_queue(store: Database) -> None:
    a = await device(store, "a")
    await device(store, "b")
    [pinned] = await queue_some(store, 1, device="a")
    await inbox.record_inbound(store, incoming(a.id))
    await devices.record_event(store, a.id, "alert", {"message": "x"}, T0)
    await devices.remove_device(store, "a")
    assert await devices.device_by_name(store, "a") is None
    [message] = await messages.list_outbound(store, message_id=pinned)
    assert message.device is None and message.status.value == "queued"
    assert await messages.queue_depths(store) == {None: 1}
    [kept] = await inbox.list_inbound(store)
    assert kept.device == ""
    assert await devices.device_events(store) == []
    with pytest.raises(NotFound):
        await devices.remove_device(store, "a")


async def test_touch_device_is_coalesced(store: Database) -> None:
    a = await device(store, "a", seen=None)
    seen = devices.LastSeen(store)
    await seen.touch(a.id, at(0), "ua/1")
    await seen.touch(a.id, at(2), "ua/1")  # within 5 s: skipped
    found = await devices.device_by_name(store, "a")
    assert found is not None and found.last_seen_at == at(0)
    await seen.touch(a.id, at(3), "ua/2")  # a new User-Agent is written at once
    await seen.touch(a.id, at(9), "ua/2")
    found = await devices.device_by_name(store, "a")
    assert found is not None
    assert (found.last_seen_at, found.last_user_agent) == (at(9), "ua/2")


async def test_a_poll_not_yet_written_never_fails_a_device_over_early(store: Database) -> None:
    a = await device(store, "a", seen=None, liveness_s=60)
    seen = devices.LastSeen(store)
    await seen.touch(a.id, at(0), "ua")
    await liveness.check_liveness(store, at(0))
    await seen.touch(a.id, at(4), "ua")  # coalesced: the store still says 0
    # 61 s after the stored poll, but only 57 s after the last one: still online.
    assert await liveness.check_liveness(store, at(61)) == []
    # Past the window from the last poll, and from the stored one plus LAST_SEEN_EVERY.
    assert await liveness.check_liveness(store, at(66)) == [("a", False)]


async def test_events_newest_first_per_device(store: Database) -> None:
    a = await device(store, "a")
    b = await device(store, "b")
    await devices.record_event(store, a.id, "test_integration", {}, at(1))
    await devices.record_event(store, b.id, "alert", {"battery": 10}, at(2))
    events = await devices.device_events(store)
    assert [(e["device"], e["kind"], e["detail"], e["at"]) for e in events] == [
        ("b", "alert", {"battery": 10}, at(2)),
        ("a", "test_integration", {}, at(1)),
    ]
    assert [e["kind"] for e in await devices.device_events(store, device="a")] == [
        "test_integration"
    ]
    assert len(await devices.device_events(store, limit=1)) == 1


async def test_inbound_is_deduplicated_per_device(store: Database) -> None:
    a = await device(store, "a")
    b = await device(store, "b")
    created, first = await inbox.record_inbound(store, incoming(a.id, "k1"))
    assert created
    assert await inbox.record_inbound(store, incoming(a.id, "k1", content="retry")) == (
        False,
        first,
    )
    created, other = await inbox.record_inbound(store, incoming(b.id, "k1"))
    assert created and other != first
    stored = await inbox.list_inbound(store)
    assert [(m.device, m.content) for m in stored] == [("a", "hi"), ("b", "hi")]
    message = stored[0]
    assert message.flags == ("a", "b") and message.sent_at == T0 and message.received_at == at(1)
    assert message.from_raw == "0700 000001" and message.sent_timestamp_raw == "1893499200000"
    assert [m.device for m in await inbox.list_inbound(store, device="b")] == ["b"]
    assert [m.id for m in await inbox.list_inbound(store, after_id=first)] == [other]
    assert len(await inbox.list_inbound(store, limit=1)) == 1
