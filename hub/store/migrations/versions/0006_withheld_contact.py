"""Decisions not to share name the contact they were made for (DOMAIN.md §3 rule 8), so the
register can say which contact and children a decision concerned.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: decisions recorded before this revision (or without a contact) keep none.
    op.add_column("withheld_items", sa.Column("contact_id", sa.String(36)))
    op.create_index("ix_withheld_items_contact_id", "withheld_items", ["contact_id"])


def downgrade() -> None:
    op.drop_index("ix_withheld_items_contact_id", table_name="withheld_items")
    # SQLite before 3.35 cannot drop a column in place: batch mode copies the table there.
    with op.batch_alter_table("withheld_items") as batch:
        batch.drop_column("contact_id")
