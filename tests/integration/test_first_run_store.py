"""What the store keeps for a first run: the default region and a Sync URL shown again."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, text

from smssync.errors import NotFound, Unauthorized
from smssync.records import Credentials, DeviceSettings
from smssync.server import auth
from smssync.server.credentials import (
    create_device,
    keyed_hash,
    rotate_secret,
    shown_again,
)
from smssync.store import devices, region, serverkey
from smssync.store.engine import Database
from tests.integration.test_store_migrations import engine_for


async def test_the_first_region_comes_from_the_locale_and_is_kept(store: Database) -> None:
    none = await region.default_region(store, "", {"LANG": "C.UTF-8"})
    assert none.code == "" and await region.stored_region(store) is None
    first = await region.default_region(store, "", {"LANG": "en_GB.UTF-8", "LC_ALL": ""})
    assert (first.code, first.source) == ("GB", "the locale (LANG=en_GB.UTF-8)")
    # Another locale later changes nothing: the store decided at its first run.
    again = await region.default_region(store, "", {"LANG": "de_DE.UTF-8"})
    assert (again.code, again.source) == ("GB", "the store")
    # The setting wins, is kept for the next commands, and says what it replaced.
    given = await region.default_region(store, "KE", {"LANG": "de_DE.UTF-8"})
    assert (given.code, given.replaced) == ("KE", "GB")
    assert (await region.default_region(store, "", {})).code == "KE"


async def test_a_device_url_is_shown_again_never_its_secret(store: Database) -> None:
    device, issued = await create_device(store, "p", datetime.now(UTC), secret="s3cret")
    shown_device, shown = await shown_again(store, "p")
    assert shown_device.id == device.id and shown is not None
    assert shown.token == issued.token and shown.secret is None
    # The database keeps the seed and the hash, never the token itself.
    stored = await devices.device_credentials(store, device.id)
    assert stored.token_seed is not None and issued.token.encode() not in stored.token_seed
    with pytest.raises(NotFound, match="nobody"):
        await shown_again(store, "nobody")


async def test_rotation_refuses_the_old_secret_and_keeps_the_url(store: Database) -> None:
    _, issued = await create_device(store, "p", datetime.now(UTC), secret="old")
    key = await serverkey.server_key(store)
    directory = auth.CachedDirectory(store)
    found = await auth.identify(directory, key, issued.token, None)
    assert await auth.with_secret(directory, key, found, "old") is not None  # cached now
    _, rotated = await rotate_secret(store, "p", secret="new")
    assert rotated.token == issued.token and rotated.secret == "new"
    found = await auth.identify(directory, key, issued.token, None)
    with pytest.raises(Unauthorized):
        await auth.with_secret(directory, key, found, "old")
    assert await auth.with_secret(directory, key, found, "new") is not None
    # A new URL too: the old token names nobody.
    _, moved = await rotate_secret(store, "p", secret="newer", new_url=True)
    assert moved.token != issued.token
    assert await devices.device_by_token(store, keyed_hash(key, "token", issued.token)) is None


def test_0008_keeps_kenya_for_a_database_in_use(store_url: str) -> None:
    from alembic import command

    from smssync.store.migrate import alembic_config

    engine = create_engine(engine_for(store_url))
    device = (
        "INSERT INTO devices (name, token_hash, settings, effective_mode, created_at) "
        "VALUES ('old', :token, '{}', 'handoff', 1)"
    )
    region_row = text("SELECT value FROM meta WHERE key = 'default_region'")
    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), "head")
            # A new database has no region until its first run decides one.
            assert conn.execute(region_row).first() is None
            command.downgrade(alembic_config(conn), "0007")
            conn.execute(text(device), {"token": b"t"})
            command.upgrade(alembic_config(conn), "head")
            # It read national numbers as Kenyan before: it goes on doing so, now said.
            assert bytes(conn.execute(region_row).scalar_one()) == b"KE"
            seed = conn.execute(text("SELECT token_seed FROM devices")).scalar_one()
            assert seed is None  # its URL cannot be shown again until rotated
    finally:
        engine.dispose()


async def test_a_device_from_before_seeds_gets_a_url_shown_again_by_rotation(
    store: Database,
) -> None:
    key = await serverkey.server_key(store)
    old = Credentials(keyed_hash(key, "token", "old-token"), None, None, None)
    await devices.add_device(store, "legacy", old, DeviceSettings(), datetime.now(UTC))
    assert (await shown_again(store, "legacy"))[1] is None  # its token was never derived
    _, rotated = await rotate_secret(store, "legacy", secret=None)
    assert rotated.token != "old-token" and rotated.secret is None
    _, shown = await shown_again(store, "legacy")
    assert shown is not None and shown.token == rotated.token
