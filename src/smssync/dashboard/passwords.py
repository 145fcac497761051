"""Passwords hashed with argon2id (memory-hard), and random ones for new accounts."""

from __future__ import annotations

import asyncio
import functools
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

#: argon2-cffi's defaults (RFC 9106's second recommendation: 64 MiB, 3 passes).
_HASHER = PasswordHasher()

#: Fewest characters a password may have.
MIN_LENGTH = 8


def hash_password(password: str) -> str:
    """Return the argon2id hash of ``password`` in its encoded form."""
    return _HASHER.hash(password)


def verify_password(stored: str, password: str) -> bool:
    """Tell whether ``password`` matches ``stored`` (argon2 compares in constant time)."""
    try:
        return _HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


@functools.cache
def _decoy() -> str:
    return hash_password(secrets.token_urlsafe(16))


async def check_password(stored: str | None, password: str) -> bool:
    """Verify off the event loop (a hash costs tens of milliseconds of CPU); an unknown
    user (``stored`` None) costs as much as a known one, so timing tells no names."""
    return await asyncio.to_thread(verify_password, stored or _decoy(), password)


def generate_password() -> str:
    """Return a random password for a new account, shown once."""
    return secrets.token_urlsafe(12)


def password_problem(password: str) -> str | None:
    """Return why a chosen password is refused, or None."""
    if len(password) < MIN_LENGTH:
        return f"a password needs at least {MIN_LENGTH} characters"
    return None
