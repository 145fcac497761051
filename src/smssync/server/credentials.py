"""Device credentials: generated here, stored only as keyed hashes (S-7)."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import secrets
from datetime import datetime

from smssync.errors import NotFound
from smssync.records import Credentials, Device, DeviceSettings
from smssync.store import devices, serverkey
from smssync.store.engine import Database

#: Path tokens carry 128 random bits or more (§3).
TOKEN_BYTES = 18


def keyed_hash(key: bytes, purpose: str, value: str) -> bytes:
    """Return HMAC-SHA256 of a credential, separated by purpose so a token never matches a
    secret; lookups use it instead of the raw value (S-7).

    Not remembered: the values come from clients, so a cache keyed by them would hold
    whatever an attacker sends (4,096 distinct 10 MB tokens), and one HMAC of a phone's
    secret costs some 6 µs. The digest is named, not given as ``hashlib.sha256``: with the
    constructor, OpenSSL 3 looks the algorithm up again each time (15 µs, bench/README.md).
    """
    return hmac.digest(key, f"{purpose}\0{value}".encode(), "sha256")


def same_hash(stored: bytes | None, key: bytes, purpose: str, presented: str) -> bool:
    """Compare a presented credential with a stored hash in constant time (S-7)."""
    if stored is None:
        return False
    return hmac.compare_digest(stored, keyed_hash(key, purpose, presented))


@dataclasses.dataclass(frozen=True)
class IssuedCredentials:
    """What a device's owner is told: the token, and the secret in clear once only."""

    token: str
    secret: str | None
    basic_user: str | None
    basic_password: str | None


def token_of(key: bytes, seed: bytes) -> str:
    """Return the path token a seed stands for under this server key.

    The token is derived rather than random so that the Sync URL can be shown again
    (``device show``) while the database holds only the seed and the token's hash: with
    the database alone, nobody learns a token; the server key as well reveals it, as it
    reveals everything the operator holds (docs/security.md).
    """
    digest = hmac.digest(key, b"path token\0" + seed, hashlib.sha256)
    return base64.urlsafe_b64encode(digest[:TOKEN_BYTES]).decode().rstrip("=")


def new_token(key: bytes) -> tuple[str, bytes, bytes]:
    """Return a new path token, its seed and its hash."""
    seed = secrets.token_bytes(TOKEN_BYTES)
    token = token_of(key, seed)
    return token, seed, keyed_hash(key, "token", token)


def issue(
    key: bytes,
    *,
    secret: str | None,
    basic_user: str | None = None,
    basic_password: str | None = None,
) -> tuple[IssuedCredentials, Credentials]:
    """Create a new path token and hash the given credentials."""
    token, seed, token_hash = new_token(key)
    issued = IssuedCredentials(token, secret, basic_user, basic_password)
    return issued, Credentials(
        token_hash=token_hash,
        secret_hash=keyed_hash(key, "secret", secret) if secret else None,
        basic_user=basic_user,
        basic_password_hash=(
            keyed_hash(key, "password", basic_password) if basic_user and basic_password else None
        ),
        token_seed=seed,
    )


def generate_secret() -> str:
    """Return a random secret that is easy to type into a phone."""
    return secrets.token_urlsafe(12)


async def create_device(
    store: Database,
    name: str,
    now: datetime,
    *,
    secret: str | None,
    basic_user: str | None = None,
    basic_password: str | None = None,
    settings: DeviceSettings | None = None,
) -> tuple[Device, IssuedCredentials]:
    """Register a device and return it with its credentials in clear (shown once)."""
    key = await serverkey.server_key(store)
    issued, hashed = issue(key, secret=secret, basic_user=basic_user, basic_password=basic_password)
    device = await devices.add_device(store, name, hashed, settings or DeviceSettings(), now)
    return device, issued


async def shown_again(store: Database, name: str) -> tuple[Device, IssuedCredentials | None]:
    """Return a device and what can be shown of its credentials again: its token (None for
    a device registered before seeds, 0006), never a secret or password, which are kept
    only as hashes; NotFound."""
    device = await devices.device_by_name(store, name)
    if device is None:
        raise NotFound(f"no device named {name!r}")
    stored = await devices.device_credentials(store, device.id)
    if stored.token_seed is None:
        return device, None
    key = await serverkey.server_key(store)
    token = token_of(key, stored.token_seed)
    if not hmac.compare_digest(keyed_hash(key, "token", token), stored.token_hash):
        return device, None  # the token was set otherwise (by a library caller)
    return device, IssuedCredentials(token, None, stored.basic_user, None)


async def rotate_secret(
    store: Database, name: str, *, secret: str | None, new_url: bool = False
) -> tuple[Device, IssuedCredentials]:
    """Give a device a new secret (None: none) and, with ``new_url`` or when its URL cannot
    be shown again, a new path token; the old ones stop working at once. NotFound."""
    device, shown = await shown_again(store, name)
    key = await serverkey.server_key(store)
    stored = await devices.device_credentials(store, device.id)
    token = shown.token if shown is not None else ""
    if new_url or shown is None:
        token, seed, token_hash = new_token(key)
        stored = dataclasses.replace(stored, token_hash=token_hash, token_seed=seed)
    credentials = dataclasses.replace(
        stored,
        secret_hash=keyed_hash(key, "secret", secret) if secret else None,
    )
    updated = await devices.update_device(store, name, credentials=credentials)
    return updated, IssuedCredentials(token, secret, stored.basic_user, None)
