"""The key behind credential hashes lives outside the database, checked against it (finding 9)."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from smssync.errors import ConfigError
from smssync.server.credentials import create_device, keyed_hash
from smssync.store import devices, open_store, serverkey
from smssync.store.engine import Database
from tests.integration.test_store_migrations import engine_for


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def meta_keys(store_url: str) -> list[str]:
    """The keys of ``meta`` but SQLite's change marks (``store.changes``)."""
    engine = create_engine(engine_for(store_url))
    try:
        with engine.connect() as conn:
            keys = conn.execute(text("SELECT key FROM meta"))
            return sorted(k for (k,) in keys if not k.startswith("changes:"))
    finally:
        engine.dispose()


async def test_first_start_writes_a_private_key_file_and_no_key_in_the_database(
    store: Database, store_url: str, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    key = await serverkey.use_server_key(store, data)
    assert (data / "server.key").read_text() == key.hex() + "\n"
    assert (mode(data), mode(data / "server.key")) == (0o700, 0o600)
    assert await serverkey.server_key(store) == key
    # Only a check value stays behind: a copied database allows no offline guessing.
    assert meta_keys(store_url) == ["server_key_check"]
    assert await serverkey.use_server_key(store, data) == key  # the next start reads it back


async def test_a_key_kept_in_the_database_moves_out_on_first_start(
    store: Database, store_url: str, tmp_path: Path
) -> None:
    legacy = await serverkey.server_key(store)  # what versions before kept in the database
    assert meta_keys(store_url) == ["server_key"]
    device, _ = await create_device(store, "a", datetime.now(UTC), secret="guess me")
    again = open_store(store_url)
    await again.open()
    try:
        assert await serverkey.use_server_key(again, tmp_path) == legacy
        assert bytes.fromhex((tmp_path / "server.key").read_text()) == legacy
        assert meta_keys(store_url) == ["server_key_check"]
        # Every phone's credentials still work with the key from the file.
        found = await devices.device_by_secret(again, keyed_hash(legacy, "secret", "guess me"))
        assert found is not None and found.id == device.id
    finally:
        await again.close()


async def test_a_server_with_another_key_refuses_to_start(
    store: Database, store_url: str, tmp_path: Path
) -> None:
    first = os.urandom(32).hex()
    await serverkey.use_server_key(store, tmp_path / "one", first)
    assert not (tmp_path / "one" / "server.key").exists()  # the environment's key is not copied
    other = open_store(store_url)
    await other.open()
    try:
        with pytest.raises(ConfigError, match="does not match"):
            await serverkey.use_server_key(other, tmp_path / "two", os.urandom(32).hex())
        with pytest.raises(ConfigError, match="does not match"):
            await serverkey.use_server_key(other, tmp_path / "three")  # a fresh key file of its own
        assert await serverkey.use_server_key(
            other, tmp_path / "four", first.upper()
        ) == bytes.fromhex(first)
    finally:
        await other.close()


@pytest.mark.parametrize("given", ["not hex", "ab" * 31])
async def test_a_bad_key_is_a_clear_error(store: Database, tmp_path: Path, given: str) -> None:
    with pytest.raises(ConfigError, match="SMSSYNC_SERVER_KEY"):
        await serverkey.use_server_key(store, tmp_path, given)


async def test_sqlite_files_are_private_whatever_the_umask(tmp_path: Path) -> None:
    path = tmp_path / "smssync.db"
    path.touch()
    path.chmod(0o644)  # as versions before created it
    old = os.umask(0o022)
    try:
        store = open_store(str(path))
        await store.open()
        try:
            await serverkey.server_key(store)  # a write, so that the WAL exists
            for name in ("smssync.db", "smssync.db-wal", "smssync.db-shm"):
                assert mode(tmp_path / name) == 0o600, name
        finally:
            await store.close()
    finally:
        os.umask(old)
