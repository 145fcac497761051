"""Response bodies of ``/api/v1/conversations``, ``/api/v1/search`` and ``/api/v1/opt-outs``."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from smssync.server.api.models import Number, Strict


class ConversationOut(BaseModel):
    """A thread with one number (``serialize.conversation_json``)."""

    address: str
    last_at: datetime
    last_direction: Literal["in", "out"]
    last_body: str
    last_device: str | None
    unread: int = Field(description="Incoming SMS since the thread was last marked read.")


class ConversationPage(BaseModel):
    """Conversations newest first; pass ``next_cursor`` as ``cursor`` for the next page."""

    ok: Literal[True] = True
    conversations: list[ConversationOut]
    next_cursor: str | None


class ThreadMessageOut(BaseModel):
    """One SMS of either direction (``serialize.thread_message_json``)."""

    direction: Literal["in", "out"]
    id: int
    at: datetime
    address: str
    body: str
    device: str | None
    uuid: str | None = Field(description="An outgoing SMS's uuid; null for incoming.")
    status: str | None
    reason: str | None


class ThreadPage(BaseModel):
    """SMS of both directions newest first; pass ``next_cursor`` as ``cursor``."""

    ok: Literal[True] = True
    messages: list[ThreadMessageOut]
    next_cursor: str | None


class OptOutRequest(Strict):
    """``POST /opt-outs``: a number every campaign is to skip."""

    number: Number


class OptOutOut(BaseModel):
    """A number on the opt-out list."""

    number: str
    source: str = Field(description="stop (an incoming STOP), cli or api.")
    since: datetime


class OptOutPage(BaseModel):
    """The list in number order; pass ``next_cursor`` as ``cursor``."""

    ok: Literal[True] = True
    opt_outs: list[OptOutOut]
    next_cursor: str | None


class OptOutReply(BaseModel):
    """A number put on the list or taken off it."""

    ok: Literal[True] = True
    number: str
    changed: bool = Field(description="False when it was already so.")
