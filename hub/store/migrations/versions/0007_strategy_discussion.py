"""A manager records an s47 strategy discussion on a contact (DOMAIN.md §3 rule 3: s47 is a
fact recorded on the contact, not a purpose a reader names): when it was held, whether the
parents were told, the reason (free text), who recorded it and when.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
COLUMNS = (
    ("strategy_held_at", TS),
    ("strategy_parents_told", sa.Boolean),
    ("strategy_reason", sa.String(4000)),
    ("strategy_recorded_by", sa.String(200)),
    ("strategy_recorded_at", TS),
)


def upgrade() -> None:
    # Nullable: contacts received before this revision (and most after) have none.
    for name, kind in COLUMNS:
        op.add_column("contacts", sa.Column(name, kind))


def downgrade() -> None:
    # SQLite before 3.35 cannot drop a column in place: batch mode copies the table there.
    with op.batch_alter_table("contacts") as batch:
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)
