"""Which device sent a request (S-6), or why none did (S-8).

Order of precedence: path token, HTTP Basic, the secret, then lease binding for E5. Every
credential present must be valid and point at the same device; a device with a configured
secret must present exactly it on every exchange but E5 and E8, where the App sends none.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar, cast

from smssync.errors import BasicUnauthorized, ProtocolError, Unauthorized
from smssync.protocol.query import parse_basic_auth
from smssync.records import Credentials, Device
from smssync.server.credentials import keyed_hash, same_hash
from smssync.store import devices
from smssync.store.engine import Database

T = TypeVar("T")

#: Longest a cached lookup is trusted without a change heard: a safety net only.
CACHE_TTL_S = 30.0


class Directory(Protocol):
    """The device lookups authentication needs (an engine, or a cache in front of one)."""

    async def device_by_token(self, token_hash: bytes) -> Device | None: ...
    async def device_by_secret(self, secret_hash: bytes) -> Device | None: ...
    async def device_by_basic_user(self, user: str) -> tuple[Device, bytes | None] | None: ...
    async def device_credentials(self, device_id: int) -> Credentials: ...


async def identify(
    store: Directory, key: bytes, token: str | None, authorization: str | None
) -> Device | None:
    """Return the device named by path token and/or Basic auth, None when neither was sent;
    raise Unauthorized when one is wrong or they disagree."""
    device: Device | None = None
    if token is not None:
        device = await store.device_by_token(keyed_hash(key, "token", token))
        if device is None:
            raise Unauthorized()
    if authorization is not None:
        try:
            basic = parse_basic_auth(authorization)
        except ProtocolError:
            raise BasicUnauthorized() from None
        if basic is not None:
            found = await store.device_by_basic_user(basic[0])
            if found is None or not same_hash(found[1], key, "password", basic[1]):
                raise BasicUnauthorized(target="basic:" + basic[0])
            if device is not None and device.id != found[0].id:
                raise Unauthorized()
            device = found[0]
    return device


async def with_secret(
    store: Directory,
    key: bytes,
    device: Device | None,
    secret: str | None,
    *,
    required: bool = True,
) -> Device | None:
    """Check the secret against an identified device, or identify the device by it.

    A presented secret is ignored for a device without one (S-6). A device with one must
    present exactly it: a missing secret is as wrong as a wrong one (S-8), unless the
    exchange is one where the App sends none (``required=False``: E5). None when nothing
    identifies a device.
    """
    if device is not None:
        if device.has_secret and (secret is not None or required):
            if secret is None:
                raise Unauthorized(target=f"device:{device.id}")
            credentials = await store.device_credentials(device.id)
            if not same_hash(credentials.secret_hash, key, "secret", secret):
                raise Unauthorized(target=f"device:{device.id}")
        return device
    if secret:
        device = await store.device_by_secret(keyed_hash(key, "secret", secret))
        if device is None:
            raise Unauthorized()
    return device


class CachedDirectory:
    """Device lookups for authentication, remembered until a device changes.

    Every request authenticates, so without this each one costs two database reads. A change
    to a device (settings, credentials, removal) by any process applies at once: every
    lookup first asks the store whether some process changed a device (``Database.fresh``:
    a notification heard on PostgreSQL, a read of the change marks on SQLite). ``ttl_s`` is
    only a safety net.
    """

    def __init__(self, store: Database, ttl_s: float = CACHE_TTL_S) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self._entries: dict[tuple[str, object], tuple[float, object]] = {}
        store.on_change("devices", self._entries.clear)

    async def _cached(self, kind: str, key: object, fetch: Callable[[], Awaitable[T]]) -> T:
        await self.store.fresh()
        now = time.monotonic()
        hit = self._entries.get((kind, key))
        if hit is not None and now - hit[0] < self.ttl_s:
            return cast(T, hit[1])
        generation = self.store.generation("devices")
        value = await fetch()
        # Unknown credentials are not remembered, nor an answer read while a change landed.
        if value is not None and self.store.generation("devices") == generation:
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[(kind, key)] = (now, value)
        return value

    async def device_by_token(self, token_hash: bytes) -> Device | None:
        """Return the device of a path token hash."""
        return await self._cached(
            "token", token_hash, lambda: devices.device_by_token(self.store, token_hash)
        )

    async def device_by_secret(self, secret_hash: bytes) -> Device | None:
        """Return the device of a secret hash."""
        return await self._cached(
            "secret", secret_hash, lambda: devices.device_by_secret(self.store, secret_hash)
        )

    async def device_by_basic_user(self, user: str) -> tuple[Device, bytes | None] | None:
        """Return the device of a Basic user and its password hash."""
        return await self._cached(
            "basic", user, lambda: devices.device_by_basic_user(self.store, user)
        )

    async def device_credentials(self, device_id: int) -> Credentials:
        """Return the stored hashes of a device."""
        return await self._cached(
            "credentials", device_id, lambda: devices.device_credentials(self.store, device_id)
        )
