"""Indexes of the dashboard's webhook pages: an endpoint's deliveries and the dead letters,
each newest first by keyset (issue 18).

The endpoint's index also serves ``remove_webhook``, which deletes its deliveries.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the two indexes."""
    op.create_index(
        "ix_webhook_deliveries_endpoint_id_id", "webhook_deliveries", ["endpoint_id", "id"]
    )
    op.create_index("ix_webhook_deliveries_state_id", "webhook_deliveries", ["state", "id"])


def downgrade() -> None:
    """Drop them."""
    op.drop_index("ix_webhook_deliveries_state_id", "webhook_deliveries")
    op.drop_index("ix_webhook_deliveries_endpoint_id_id", "webhook_deliveries")
