"""Analysts' link decisions and the review-band candidates waiting for one.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SEQ_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
ACTIVE = sa.text("superseded_at IS NULL")


def upgrade() -> None:
    op.create_table(
        "link_decisions",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("subject_id", sa.String(36), sa.ForeignKey("subjects.id"), nullable=False),
        sa.Column("source", sa.String(30), nullable=False),
        sa.Column("source_record_id", sa.String(200), nullable=False),
        sa.Column("decision", sa.String(10), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("decided_by", sa.String(200), nullable=False),
        sa.Column("decided_by_agency", sa.String(50)),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("superseded_at", sa.DateTime(timezone=True)),
        sa.Column("contact_id", sa.String(64)),
    )
    op.create_index("ix_link_decisions_subject", "link_decisions", ["subject_id"])
    # At most one active decision per pair, on PostgreSQL and SQLite alike.
    op.create_index(
        "ux_link_decisions_active",
        "link_decisions",
        ["subject_id", "source", "source_record_id"],
        unique=True,
        sqlite_where=ACTIVE,
        postgresql_where=ACTIVE,
    )
    op.create_table(
        "link_reviews",
        sa.Column("seq", SEQ_PK, primary_key=True, autoincrement=True),
        sa.Column("subject_id", sa.String(36), sa.ForeignKey("subjects.id"), nullable=False),
        sa.Column("source", sa.String(30), nullable=False),
        sa.Column("source_record_id", sa.String(200), nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("explanation", sa.JSON, nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint(
            "subject_id", "source", "source_record_id", name="uq_link_reviews_pair"
        ),
    )


def downgrade() -> None:
    op.drop_table("link_reviews")
    op.drop_index("ux_link_decisions_active", table_name="link_decisions")
    op.drop_index("ix_link_decisions_subject", table_name="link_decisions")
    op.drop_table("link_decisions")
