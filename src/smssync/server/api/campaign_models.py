"""Request and response bodies of ``/api/v1/campaigns`` (bulk sends)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StrictBool, StrictInt, StringConstraints

from smssync.server.api.models import Name, Number, Strict

#: Most recipients of one campaign, pasted or uploaded.
MAX_RECIPIENTS = 100_000

Template = Annotated[str, StringConstraints(min_length=1, max_length=5000, pattern=r"^[^\x00]*$")]
CsvText = Annotated[str, StringConstraints(min_length=1, pattern=r"^[^\x00]*$")]
Clock = Annotated[str, StringConstraints(pattern=r"^([01]?[0-9]|2[0-3]):[0-5][0-9]$")]
Zone = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_+/-]+$")]
Region = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
Column = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[^\x00]*$")]


class WindowIn(Strict):
    """A daily send window; across midnight when ``end`` is before ``start``."""

    start: Clock = Field(description="HH:MM, local time.")
    end: Clock = Field(description="HH:MM, local time.")
    tz: Zone | None = Field(None, description="IANA zone; omitted: each recipient's own.")


class CampaignRequest(Strict):
    """``POST /campaigns``: a template and its recipients, a list or CSV rows."""

    template: Template = Field(description="The text, with {column} placeholders.")
    to: Annotated[list[Number], Field(min_length=1, max_length=MAX_RECIPIENTS)] | None = Field(
        None, description="Numbers (a pasted list); give this or csv."
    )
    csv: CsvText | None = Field(
        None, description="CSV with a header line; its columns fill the placeholders."
    )
    number_column: Column | None = Field(
        None, description="The CSV column of the number; by default to, number, phone…"
    )
    name: Name = "campaign"
    region: Region | None = Field(None, description="For national numbers; the server's default.")
    device: Name | None = Field(None, description="Send through this device only.")
    window: WindowIn | None = None
    dry_run: StrictBool = Field(False, description="Check and preview only; store nothing.")
    preview: Annotated[StrictInt, Field(ge=0, le=50)] = 5


class WindowOut(BaseModel):
    """A campaign's daily window."""

    start: str
    end: str
    tz: str | None


class CampaignOut(BaseModel):
    """A campaign and its counts (``serialize.campaign_json``)."""

    id: int
    name: str
    template: str
    status: Literal["running", "paused", "cancelled", "done"]
    region: str
    device: str | None
    window: WindowOut | None
    total: int
    segments: int
    recipients: dict[str, int] = Field(description="By state: pending, released, invalid…")
    messages: dict[str, int] = Field(description="Released messages by status.")
    released_ratio: float
    created_at: datetime
    updated_at: datetime


class PreviewItem(BaseModel):
    """One rendered message."""

    to: str | None
    body: str | None
    segments: int


class InvalidItem(BaseModel):
    """A recipient that will not be sent, by its position in the input."""

    index: int
    to: str
    message: str


class Estimate(BaseModel):
    """How long the fleet needs at its pacing."""

    online_phones: int
    sms_per_minute: int
    minutes: int


class CampaignPlan(BaseModel):
    """What the campaign sends (``serialize.plan_json``) and, unless a dry run, itself."""

    ok: Literal[True] = True
    campaign: CampaignOut | None
    characters: int
    encoding: Literal["gsm7", "ucs2"]
    segments_per_message: int
    recipients: int
    segments: int
    region: str
    preview: list[PreviewItem]
    invalid: list[InvalidItem]
    estimate: Estimate


class CampaignReply(BaseModel):
    """One campaign."""

    ok: Literal[True] = True
    campaign: CampaignOut


class CampaignPage(BaseModel):
    """Campaigns newest first; pass ``next_cursor`` as ``cursor`` for the next page."""

    ok: Literal[True] = True
    campaigns: list[CampaignOut]
    next_cursor: str | None
