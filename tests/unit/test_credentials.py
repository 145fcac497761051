from __future__ import annotations

import secrets
import tracemalloc

from smssync.server.credentials import issue, keyed_hash, same_hash


def test_hashes_are_keyed_and_separated_by_purpose() -> None:
    key = secrets.token_bytes(32)
    assert keyed_hash(key, "secret", "x") != keyed_hash(key, "token", "x")
    assert keyed_hash(key, "secret", "x") != keyed_hash(secrets.token_bytes(32), "secret", "x")
    assert same_hash(keyed_hash(key, "secret", "my secret"), key, "secret", "my secret")
    assert not same_hash(keyed_hash(key, "secret", "my secret"), key, "secret", "My secret")
    assert not same_hash(keyed_hash(key, "secret", "my secret"), key, "secret", "my secret ")
    assert not same_hash(None, key, "secret", "")


def test_issue_keeps_only_hashes() -> None:
    key = secrets.token_bytes(32)
    issued, stored = issue(key, secret="s", basic_user="u", basic_password="p:w")
    assert len(issued.token) >= 22  # at least 128 random bits, base64url
    assert stored.token_hash == keyed_hash(key, "token", issued.token)
    assert stored.secret_hash == keyed_hash(key, "secret", "s")
    assert stored.basic_password_hash == keyed_hash(key, "password", "p:w")
    assert b"p:w" not in repr(stored).encode()
    assert issue(key, secret=None)[1].secret_hash is None


def test_hashing_keeps_nothing_of_what_clients_present() -> None:
    key = secrets.token_bytes(32)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(20):
            keyed_hash(key, "secret", f"{i:04d}" + "x" * 1_000_000)
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert kept < 1_000_000  # a cache keyed by the values held all 20 MB
