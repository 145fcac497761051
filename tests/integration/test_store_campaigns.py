"""Campaigns in the store: recipients held, released by the fleet's capacity and the daily
window, paused, resumed, cancelled, counted and exported; the opt-out list."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, time

import pytest

from smssync.compose import parse_window, read_csv, recipients
from smssync.errors import Conflict, NotFound
from smssync.records import Campaign, NewCampaign, SendWindow
from smssync.store import campaigns, inbox, liveness, optouts, queue
from smssync.store.engine import Database
from smssync.store.release import release_due
from tests.integration.store_helpers import T0, at, device, incoming, status_of


def numbers(count: int, start: int = 0) -> list[dict[str, str]]:
    """CSV-like rows of Kenyan numbers with a name column."""
    return [{"to": f"0700{start + i:06d}", "name": f"n{i}"} for i in range(count)]


async def make(
    store: Database, rows: list[dict[str, str]], window: SendWindow | None = None, **kw: object
) -> Campaign:
    """Create a campaign of 'Hi {name}' to the rows."""
    new = NewCampaign(
        name="test",
        template="Hi {name}",
        region="KE",
        recipients=tuple(recipients("Hi {name}", rows, "KE")),
        window=window,
        **kw,  # type: ignore[arg-type]
    )
    return await campaigns.create_campaign(store, new, T0)


async def test_bad_numbers_opt_outs_and_repeats_are_recorded_not_sent(store: Database) -> None:
    await optouts.add_opt_out(store, "+254700000002", "test", T0)
    rows = read_csv(
        "Phone,name\n0700000001,Ann\nnot a number,Bob\n0700000002,Cy\n0700000001,Ann\n0700000003,\n"
    )
    made = await make(store, rows)
    assert made.total == 5
    assert made.recipients == {
        "pending": 1,
        "released": 0,
        "invalid": 3,
        "opted_out": 1,
        "cancelled": 0,
    }
    results = await campaigns.campaign_results(store, made.id)
    assert [(r.to_raw, r.state.value) for r in results] == [
        ("0700000001", "pending"),
        ("not a number", "invalid"),
        ("0700000002", "opted_out"),
        ("0700000001", "invalid"),
        ("0700000003", "invalid"),
    ]
    assert "not a phone number" in (results[1].error or "")
    assert results[3].error == campaigns.DUPLICATE
    assert results[4].error == "no value for {name}"
    assert made.segments == 1


async def test_release_fills_the_fleets_next_minutes_only(store: Database) -> None:
    phone = await device(store, "a", segments_per_minute=1000)
    made = await make(store, numbers(100))
    # No phone recorded online: one phone's 30 SMS a minute for the 2-minute horizon.
    assert await release_due(store, T0) == 60
    assert await release_due(store, T0) == 0  # the queue already holds the horizon's worth
    counted = await campaigns.campaign(store, made.id)
    assert counted.recipients["released"] == 60
    assert counted.messages == {"queued": 60}
    claimed = await queue.claim_outbound(store, phone.id, 20, at(1))
    assert [c.content for c in claimed][:2] == ["Hi n0", "Hi n1"]
    assert await release_due(store, at(2)) == 20
    counted = await campaigns.campaign(store, made.id)
    assert counted.messages == {"queued": 60, "dispatched": 20}


async def test_a_campaign_is_done_once_every_recipient_is_released(store: Database) -> None:
    made = await make(store, numbers(3))
    assert await release_due(store, T0) == 3
    assert await release_due(store, T0) == 0
    assert (await campaigns.campaign(store, made.id)).status.value == "done"
    assert await campaigns.running_campaigns(store) == []


async def test_the_window_holds_messages_in_the_recipients_zone(store: Database) -> None:
    window = parse_window("08:00-20:00")
    made = await make(store, numbers(5), window)
    # 18:00 UTC is 21:00 in Nairobi: held.
    night = datetime(2030, 1, 1, 18, 0, tzinfo=UTC)
    assert await release_due(store, night) == 0
    # 16:59 UTC is 19:59 there: open, but not for the two minutes a release looks ahead.
    assert await release_due(store, datetime(2030, 1, 1, 16, 59, tzinfo=UTC)) == 0
    assert (await campaigns.campaign(store, made.id)).recipients["pending"] == 5
    # 05:00 UTC is 08:00 there.
    assert await release_due(store, datetime(2030, 1, 2, 5, 0, tzinfo=UTC)) == 5


async def test_a_campaign_zone_overrides_the_recipients(store: Database) -> None:
    window = SendWindow(time(8), time(20), "America/New_York")
    await make(store, numbers(2), window)
    # T0 is 12:00 UTC: 15:00 in Nairobi, but 07:00 in the campaign's zone.
    assert await release_due(store, T0) == 0
    assert await release_due(store, datetime(2030, 1, 1, 13, 0, tzinfo=UTC)) == 2


async def test_pause_takes_back_what_no_phone_took_and_resume_releases_again(
    store: Database,
) -> None:
    phone = await device(store, "a", segments_per_minute=1000)
    made = await make(store, numbers(10))
    assert await release_due(store, T0) == 10
    taken = await queue.claim_outbound(store, phone.id, 4, at(1))
    paused = await campaigns.pause_campaign(store, made.id, at(2))
    assert paused.status.value == "paused"
    assert paused.recipients["pending"] == 6
    assert paused.messages == {"dispatched": 4}
    assert await release_due(store, at(3)) == 0
    with pytest.raises(Conflict):
        await campaigns.pause_campaign(store, made.id, at(3))
    resumed = await campaigns.resume_campaign(store, made.id, at(4))
    assert resumed.status.value == "running"
    assert await release_due(store, at(5)) == 6
    results = await campaigns.campaign_results(store, made.id)
    assert {r.message_id for r in results if r.status == "dispatched"} == {
        t.message_id for t in taken
    }
    assert sum(r.status == "queued" for r in results) == 6


async def test_cancel_cancels_pending_and_queued_not_what_a_phone_has(store: Database) -> None:
    phone = await device(store, "a", segments_per_minute=1000)
    made = await make(store, numbers(100))
    await release_due(store, T0)
    [taken] = await queue.claim_outbound(store, phone.id, 1, at(1))
    cancelled = await campaigns.cancel_campaign(store, made.id, at(2))
    assert cancelled.status.value == "cancelled"
    assert cancelled.recipients["cancelled"] == 40
    assert cancelled.messages == {"dispatched": 1, "cancelled": 59}
    assert await status_of(store, taken.message_id or "") == "dispatched"
    results = await campaigns.campaign_results(store, made.id, limit=3)
    assert results[1].status == "cancelled"
    with pytest.raises(Conflict):
        await campaigns.cancel_campaign(store, made.id, at(3))
    with pytest.raises(Conflict):
        await campaigns.resume_campaign(store, made.id, at(3))


async def test_unknown_campaign_and_device(store: Database) -> None:
    with pytest.raises(NotFound):
        await campaigns.campaign(store, 99)
    with pytest.raises(NotFound):
        await campaigns.pause_campaign(store, 99, T0)
    with pytest.raises(NotFound):
        await make(store, numbers(1), device="ghost")


async def test_a_pinned_campaign_goes_through_its_device(store: Database) -> None:
    await device(store, "a")
    made = await make(store, numbers(2), device="a")
    await release_due(store, T0)
    results = await campaigns.campaign_results(store, made.id)
    assert [r.device for r in results] == ["a", "a"]


async def test_campaigns_list_newest_first_by_cursor(store: Database) -> None:
    ids = [(await make(store, numbers(1, i))).id for i in range(3)]
    first = await campaigns.list_campaigns(store, limit=2)
    assert [c.id for c in first] == ids[::-1][:2]
    rest = await campaigns.list_campaigns(store, before_id=first[-1].id, limit=2)
    assert [c.id for c in rest] == [ids[0]]


async def test_opt_out_list(store: Database) -> None:
    assert await optouts.add_opt_out(store, "+254700000009", "stop", T0)
    assert not await optouts.add_opt_out(store, "+254700000009", "stop", T0)
    assert [a for a, _, _ in await optouts.list_opt_outs(store)] == ["+254700000009"]
    assert await optouts.remove_opt_out(store, "+254700000009")
    assert not await optouts.remove_opt_out(store, "+254700000009")


async def test_a_stop_sms_opts_its_sender_out_and_start_back_in(store: Database) -> None:
    phone = await device(store, "a")
    sender = "+254700000001"  # the sender of ``incoming``

    async def receive(key: str, text: str) -> None:
        await inbox.record_inbound(
            store, dataclasses.replace(incoming(phone.id, key), content=text)
        )

    await receive("k1", "please stop sending")  # not the word alone
    assert await optouts.list_opt_outs(store) == []
    await receive("k2", " Stop! ")
    assert [(a, s) for a, s, _ in await optouts.list_opt_outs(store)] == [(sender, "stop")]
    await receive("k2", "STOP")  # a duplicate changes nothing
    made = await make(store, [{"to": "0700000001", "name": "Ann"}])
    assert made.recipients["opted_out"] == 1
    await receive("k3", "start")
    assert await optouts.list_opt_outs(store) == []


async def test_release_follows_the_online_phones_own_pacing(store: Database) -> None:
    await device(store, "fast", segments_per_minute=600)
    await device(store, "slow", segments_per_minute=30)
    await device(store, "silent", seen=None, segments_per_minute=10_000)
    await liveness.check_liveness(store, at(1))
    assert await campaigns.fleet(store) == (2, 630)
    assert await campaigns.fleet(store, "silent") == (1, 10_000)
    made = await make(store, numbers(2000))
    # Two minutes at 630 segments a minute.
    assert await release_due(store, at(2)) == 1260
    assert (await campaigns.campaign(store, made.id)).recipients["pending"] == 740
