"""What every request handler needs, built once in the app's lifespan."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from smssync.server.auth import Directory
from smssync.settings import Settings
from smssync.store.devices import LastSeen
from smssync.store.engine import Database

if TYPE_CHECKING:
    from smssync.server.apikeys import KeyCache
    from smssync.server.hooks import Hooks
    from smssync.server.throttle import Throttle


@dataclasses.dataclass(frozen=True)
class ServerContext:
    """The settings, the open store and the key for credential hashes."""

    settings: Settings
    store: Database
    key: bytes
    #: Cached device lookups for authentication.
    directory: Directory
    #: Records each authenticated request's device as seen (S-9), coalesced.
    last_seen: LastSeen
    #: Cached rules and webhook endpoints for incoming SMS; None: none ever apply.
    hooks: Hooks | None = None
    #: Cached API key lookups.
    api_keys: KeyCache | None = None
    #: The brake on failed authentications; None: no brake.
    throttle: Throttle | None = None
