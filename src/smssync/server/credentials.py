"""Device credentials: generated here, stored only as keyed hashes (S-7)."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import secrets
from datetime import datetime

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
    secret costs about 2 µs.
    """
    return hmac.digest(key, f"{purpose}\0{value}".encode(), hashlib.sha256)


def same_hash(stored: bytes | None, key: bytes, purpose: str, presented: str) -> bool:
    """Compare a presented credential with a stored hash in constant time (S-7)."""
    if stored is None:
        return False
    return hmac.compare_digest(stored, keyed_hash(key, purpose, presented))


@dataclasses.dataclass(frozen=True)
class IssuedCredentials:
    """What a device's owner is told once: the token and secret in clear."""

    token: str
    secret: str | None
    basic_user: str | None
    basic_password: str | None


def issue(
    key: bytes,
    *,
    secret: str | None,
    basic_user: str | None = None,
    basic_password: str | None = None,
) -> tuple[IssuedCredentials, Credentials]:
    """Create a new path token and hash the given credentials."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    issued = IssuedCredentials(token, secret, basic_user, basic_password)
    return issued, Credentials(
        token_hash=keyed_hash(key, "token", token),
        secret_hash=keyed_hash(key, "secret", secret) if secret else None,
        basic_user=basic_user,
        basic_password_hash=(
            keyed_hash(key, "password", basic_password) if basic_user and basic_password else None
        ),
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
