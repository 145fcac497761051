"""The API's campaign models write the one shape of ``serialize`` unchanged."""

from __future__ import annotations

from datetime import UTC, datetime, time

from smssync import compose
from smssync.records import Campaign, CampaignStatus, SendWindow
from smssync.serialize import campaign_json, plan_json
from smssync.server.api.campaign_models import CampaignOut, CampaignPlan
from tests.unit.test_serialize import check

T0 = datetime(2030, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)
CAMPAIGN = Campaign(
    id=3,
    name="drive",
    template="Hi {name}",
    status=CampaignStatus.PAUSED,
    region="KE",
    device=None,
    window=SendWindow(time(8), time(20, 30), "Africa/Nairobi"),
    total=4,
    created_at=T0,
    updated_at=T0,
    recipients={"pending": 1, "released": 1, "invalid": 1, "opted_out": 1, "cancelled": 0},
    messages={"delivered": 1},
    segments=2,
)


def test_campaign_and_plan_shapes() -> None:
    data = campaign_json(CAMPAIGN)
    check(CampaignOut, data)
    assert data["window"] == {"start": "08:00", "end": "20:30", "tz": "Africa/Nairobi"}
    assert data["released_ratio"] == 0.5
    plan = compose.plan("c", "Hi {name}", [{"to": "0700000001", "name": "A"}, {"to": "x"}], "KE")
    body = {"ok": True, "campaign": data} | plan_json(plan, 2, 60)
    check(CampaignPlan, body)
    assert body["estimate"] == {"online_phones": 2, "sms_per_minute": 60, "minutes": 1}
