"""What every request handler needs, built once in the app's lifespan."""

from __future__ import annotations

import dataclasses

from smssync.server.auth import Directory
from smssync.settings import Settings
from smssync.store.base import Store


@dataclasses.dataclass(frozen=True)
class ServerContext:
    """The settings, the open store and the key for credential hashes."""

    settings: Settings
    store: Store
    key: bytes
    #: Cached device lookups for authentication.
    directory: Directory
