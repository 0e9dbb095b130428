"""Subjects and the audit log.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

EVENT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "subjects",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("identity_key", sa.String(64), nullable=False, unique=True),
        sa.Column("demographic_key", sa.String(64), nullable=False, index=True),
        sa.Column("nhs_number", sa.String(10), index=True),
        sa.Column("given_name", sa.String(100)),
        sa.Column("family_name", sa.String(100)),
        sa.Column("date_of_birth", sa.Date),
        sa.Column("sex", sa.String(10)),
        sa.Column("postcodes", sa.JSON, nullable=False),
        sa.Column("address_key", sa.String(200)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "audit_events",
        sa.Column("seq", EVENT_PK, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(36), nullable=False, unique=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("actor_subject", sa.String(200), index=True),
        sa.Column("actor_issuer", sa.String(300)),
        sa.Column("actor_roles", sa.JSON, nullable=False),
        sa.Column("actor_agency", sa.String(50)),
        sa.Column("actor_team", sa.String(100)),
        sa.Column("client", sa.String(200)),
        sa.Column("purpose", sa.String(40)),
        sa.Column("contact_id", sa.String(64)),
        sa.Column("operation_type", sa.String(20)),
        sa.Column("operation_name", sa.String(200)),
        sa.Column("query_hash", sa.String(64)),
        sa.Column("outcome", sa.String(20), nullable=False, index=True),
        sa.Column("error_code", sa.String(50)),
        sa.Column("subjects", sa.JSON, nullable=False),
        sa.Column("sources", sa.JSON, nullable=False),
        sa.Column("fields_returned", sa.JSON, nullable=False),
        sa.Column("fields_redacted", sa.JSON, nullable=False),
        sa.Column("policy_version", sa.String(64)),
    )
    op.create_table(
        "audit_subjects",
        sa.Column("event_seq", EVENT_PK, sa.ForeignKey("audit_events.seq"), primary_key=True),
        sa.Column("subject_id", sa.String(36), primary_key=True),
        sa.Column("relationship", sa.String(30), nullable=False),
    )
    op.create_index("ix_audit_subjects_subject", "audit_subjects", ["subject_id", "event_seq"])


def downgrade() -> None:
    op.drop_table("audit_subjects")
    op.drop_table("audit_events")
    op.drop_table("subjects")
