"""What the dashboard's pages need, handed in by the server that mounts it."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Protocol

from smssync.records import ApiKey, Scope
from smssync.settings import Settings
from smssync.store.engine import Database


class Limiter(Protocol):
    """A brake on guessing passwords, per address and per account (``server.throttle``)."""

    def blocked(self, address: str | None, credential: str) -> int | None:
        """Return Retry-After seconds when this address may not try now."""

    def target_blocked(self, target: str) -> int | None:
        """Return Retry-After seconds when this account may not be tried now."""

    def failed(self, address: str | None, target: str | None, credential: str) -> int | None:
        """Count a failure; return Retry-After seconds when a limit has now run out."""


@dataclasses.dataclass(frozen=True)
class PhoneSetup:
    """What a person types or scans into the SMSsync app for a new phone (shown once)."""

    name: str
    sync_url: str
    secret: str
    #: The app's import payload, the QR code's text.
    payload: str


#: Registers a phone by name and returns its setup (the server's ``create_device``).
AddPhone = Callable[[str], Awaitable[PhoneSetup]]
#: Stores an API key (name, scopes, now) and returns it with the key in clear, shown once
#: (the server's ``create_key``, which hashes it under the server key).
CreateKey = Callable[[str, list[Scope], datetime], Awaitable[tuple[ApiKey, str]]]
#: Gives a phone a new secret (and a new Sync URL when asked) and returns its new setup
#: (the server's ``rotate_secret``, as ``smssync device rotate-secret``); NotFound.
RotatePhone = Callable[[str, bool], Awaitable[PhoneSetup]]


@dataclasses.dataclass(frozen=True)
class DashboardContext:
    """The settings, the open store, the session key and the server's services."""

    settings: Settings
    store: Database
    #: Signs session cookies; derived from the server key, so every worker and every server
    #: sharing the store accepts the others' sessions.
    session_key: bytes
    limiter: Limiter
    add_phone: AddPhone
    create_key: CreateKey
    #: Returns a new webhook signing secret, in the server's format.
    signing_secret: Callable[[], str]
    #: Rings this process's webhook dispatcher: deliveries are due now (a redelivery).
    wake_hooks: Callable[[], None]
    rotate_phone: RotatePhone
