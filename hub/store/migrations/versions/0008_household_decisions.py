"""Household means the same home (DOMAIN.md §3 rule 2): analysts' decisions on the residents
of a large shared address, the subject's UPRN, and subjects' address keys re-derived.

The address key now keeps the house number, name and flat (hub/addresses.py); keys stored
before this revision dropped them (everyone on a street and postcode shared one), so they
are cleared here and filled again, in the new form, the next time the subject is seen.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

ACTIVE = sa.text("superseded_at IS NULL")


def upgrade() -> None:
    op.create_table(
        "household_decisions",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("subject_id", sa.String(36), sa.ForeignKey("subjects.id"), nullable=False),
        sa.Column("resident_id", sa.String(36), sa.ForeignKey("subjects.id"), nullable=False),
        sa.Column("decision", sa.String(10), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("decided_by", sa.String(200), nullable=False),
        sa.Column("decided_by_agency", sa.String(50)),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("superseded_at", sa.DateTime(timezone=True)),
        sa.Column("contact_id", sa.String(64)),
    )
    op.create_index("ix_household_decisions_subject", "household_decisions", ["subject_id"])
    # At most one active decision per (child, resident), on PostgreSQL and SQLite alike.
    op.create_index(
        "ux_household_decisions_active",
        "household_decisions",
        ["subject_id", "resident_id"],
        unique=True,
        sqlite_where=ACTIVE,
        postgresql_where=ACTIVE,
    )
    op.add_column("subjects", sa.Column("uprn", sa.String(20)))
    op.execute("UPDATE subjects SET address_key = NULL")


def downgrade() -> None:
    # The keys stay in the new form: the old form matched neighbours as household.
    op.drop_table("household_decisions")
    # SQLite before 3.35 cannot drop a column in place: batch mode copies the table there.
    with op.batch_alter_table("subjects") as batch:
        batch.drop_column("uprn")
