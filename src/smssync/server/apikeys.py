"""API keys: generated here, stored only as keyed hashes, looked up through a short cache."""

from __future__ import annotations

import secrets
import time
from datetime import datetime

from smssync.records import ApiKey, Scope
from smssync.server.credentials import keyed_hash
from smssync.store import apikeys, serverkey
from smssync.store.engine import Database

KEY_PREFIX = "ssk_"
#: Characters of a key shown in listings to tell keys apart.
SHOWN = 12
#: Longest a cached lookup is trusted without a change heard: a safety net only (a revoked
#: key stops working at once in every process, see ``KeyCache``).
CACHE_TTL_S = 30.0
CACHE_SIZE = 10_000


def generate_key() -> str:
    """Return a new API key with 192 random bits."""
    return KEY_PREFIX + secrets.token_urlsafe(24)


def generate_signing_secret() -> str:
    """Return a new secret for signing webhooks."""
    return "whsec_" + secrets.token_urlsafe(24)


async def create_key(
    store: Database, name: str, scopes: list[Scope], now: datetime
) -> tuple[ApiKey, str]:
    """Store a new key and return it with the key in clear (shown once)."""
    key = generate_key()
    digest = keyed_hash(await serverkey.server_key(store), "apikey", key)
    stored = await apikeys.add_api_key(
        store, name, digest, key[:SHOWN], [s.value for s in scopes], generate_signing_secret(), now
    )
    return stored, key


class KeyCache:
    """Resolve presented keys without a database read per request; a revocation by any
    process applies at once (``Database.fresh``)."""

    def __init__(self, store: Database, server_key: bytes) -> None:
        self.store = store
        self.server_key = server_key
        self._cache: dict[bytes, tuple[ApiKey | None, float]] = {}
        store.on_change("apikeys", self.forget)

    async def resolve(self, presented: str) -> ApiKey | None:
        """Return the live key for a presented string, None when unknown or revoked."""
        digest = keyed_hash(self.server_key, "apikey", presented)
        await self.store.fresh()
        now = time.monotonic()
        hit = self._cache.get(digest)
        if hit is not None and hit[1] > now:
            return hit[0]
        generation = self.store.generation("apikeys")
        found = await apikeys.list_api_keys(self.store, digest)
        key = found[0] if found and found[0].revoked_at is None else None
        if self.store.generation("apikeys") == generation:  # else read across a change
            if len(self._cache) >= CACHE_SIZE:
                self._cache.clear()
            self._cache[digest] = (key, now + CACHE_TTL_S)
        return key

    def forget(self) -> None:
        """Drop every cached lookup (after a revocation in any process)."""
        self._cache.clear()
