"""A device's Sync URL that can be shown again, and no silent default region (issue 17).

``devices.token_seed``: the path token is derived from it with the server key, so that
``device show`` can print a device's URL again; devices from before have none, and get one
from ``device rotate-secret``. A database that already has devices kept reading national
numbers as Kenyan (the old default), so it keeps ``KE`` as its region, now said at start;
a new database takes its region at first run.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the column; keep KE for a database in use."""
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("token_seed", sa.LargeBinary, nullable=True))
    bind = op.get_bind()
    in_use = bind.execute(sa.text("SELECT count(*) FROM devices")).scalar()
    if in_use:
        meta = sa.table("meta", sa.column("key", sa.String), sa.column("value", sa.LargeBinary))
        known = bind.execute(sa.select(meta.c.key).where(meta.c.key == "default_region")).first()
        if known is None:
            bind.execute(meta.insert().values(key="default_region", value=b"KE"))


def downgrade() -> None:
    """Drop what 0008 added."""
    op.execute("DELETE FROM meta WHERE key = 'default_region'")
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("token_seed")
