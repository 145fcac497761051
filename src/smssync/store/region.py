"""The default region the store keeps, so that the CLI and the server read numbers alike."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Connection, select

from smssync.regions import DefaultRegion, known, locale_region
from smssync.store import dialects
from smssync.store.engine import Database, reads, writes
from smssync.store.schema import meta

#: The ``meta`` key of the region.
KEY = "default_region"


@reads
def stored_region(conn: Connection) -> str | None:
    """Return the region the store keeps, None if it keeps none."""
    value: bytes | None = conn.execute(
        select(meta.c.value).where(meta.c.key == KEY)
    ).scalar_one_or_none()
    return None if value is None else value.decode()


@writes
def keep_region(conn: Connection, region: str) -> None:
    """Keep ``region`` as the store's default region."""
    insert = dialects.insert(conn, meta).values(key=KEY, value=region.encode())
    conn.execute(
        insert.on_conflict_do_update(index_elements=[meta.c.key], set_={"value": region.encode()})
    )


async def default_region(db: Database, given: str, environ: Mapping[str, str]) -> DefaultRegion:
    """Return the region in force: ``given`` (the setting, kept for the next commands),
    else the store's, else the locale's (kept: the first run decides), else none."""
    stored = await stored_region(db)
    if stored is not None and not known(stored):
        stored = None  # written by hand, or by a newer phone-number library: not usable
    if given:
        if given == stored:
            return DefaultRegion(given, "the setting")
        await keep_region(db, given)
        return DefaultRegion(given, "the setting", replaced=stored or "", changed=True)
    if stored:
        return DefaultRegion(stored, "the store")
    found = locale_region(environ)
    if found is None:
        return DefaultRegion("", "")
    await keep_region(db, found[0])
    return DefaultRegion(found[0], f"the locale ({found[1]})", changed=True)
