"""MASH contacts and their workflow (issue 5): contacts, the children they are about,
research tasks, consent and overrides, stage history, break-glass grants, IG alerts,
notifications and decisions not to share.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SEQ_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "contacts",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("received_at", TS, nullable=False, index=True),
        sa.Column("concern", sa.String(4000), nullable=False),
        sa.Column("child_details", sa.JSON, nullable=False),
        sa.Column("referrer_type", sa.String(30), nullable=False),
        sa.Column("referrer_name", sa.String(200)),
        sa.Column("referrer_contact", sa.String(200)),
        sa.Column("referrer_anonymous", sa.Boolean, nullable=False),
        sa.Column("stage", sa.String(20), nullable=False, index=True),
        sa.Column("rag", sa.String(10), nullable=False),
        sa.Column("due_at", TS, nullable=False),
        sa.Column("assigned_staff", sa.JSON, nullable=False),
        sa.Column("assigned_teams", sa.JSON, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_by_agency", sa.String(50)),
        sa.Column("decision", sa.String(30)),
        sa.Column("decision_reasons", sa.String(4000)),
        sa.Column("referrer_feedback", sa.String(4000)),
        sa.Column("parents_told", sa.Boolean),
        sa.Column("decided_by", sa.String(200)),
        sa.Column("decided_at", TS),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "contact_subjects",
        sa.Column("contact_id", sa.String(36), sa.ForeignKey("contacts.id"), primary_key=True),
        sa.Column("subject_id", sa.String(36), primary_key=True),
    )
    op.create_index("ix_contact_subjects_subject", "contact_subjects", ["subject_id"])
    op.create_table(
        "research_tasks",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("contact_id", sa.String(36), sa.ForeignKey("contacts.id"), nullable=False),
        sa.Column("agency", sa.String(50), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("requested_at", TS, nullable=False),
        sa.Column("due_at", TS, nullable=False),
        sa.Column("completed_at", TS),
        sa.Column("summary", sa.String(4000)),
        sa.Column("updated_by", sa.String(200)),
        sa.UniqueConstraint("contact_id", "agency", name="uq_research_tasks_agency"),
    )
    op.create_table(
        "consent_records",
        sa.Column("seq", SEQ_PK, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(36), nullable=False, unique=True),
        sa.Column("contact_id", sa.String(36), sa.ForeignKey("contacts.id"), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("given_by", sa.String(200)),
        sa.Column("scope", sa.JSON, nullable=False),
        sa.Column("recorded_by", sa.String(200), nullable=False),
        sa.Column("recorded_at", TS, nullable=False),
    )
    op.create_index("ix_consent_records_contact_id", "consent_records", ["contact_id"])
    op.create_table(
        "consent_overrides",
        sa.Column("seq", SEQ_PK, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(36), nullable=False, unique=True),
        sa.Column("contact_id", sa.String(36), sa.ForeignKey("contacts.id"), nullable=False),
        sa.Column("authorised_by", sa.String(200), nullable=False),
        sa.Column("authoriser_role", sa.String(50), nullable=False),
        sa.Column("reason_code", sa.String(40), nullable=False),
        sa.Column("justification", sa.String(4000), nullable=False),
        sa.Column("authorised_at", TS, nullable=False),
    )
    op.create_index("ix_consent_overrides_contact_id", "consent_overrides", ["contact_id"])
    op.create_table(
        "stage_transitions",
        sa.Column("seq", SEQ_PK, primary_key=True, autoincrement=True),
        sa.Column("contact_id", sa.String(36), sa.ForeignKey("contacts.id"), nullable=False),
        sa.Column("from_stage", sa.String(20)),
        sa.Column("to_stage", sa.String(20), nullable=False),
        sa.Column("reason", sa.String(4000)),
        sa.Column("by", sa.String(200), nullable=False),
        sa.Column("at", TS, nullable=False),
    )
    op.create_index("ix_stage_transitions_contact_id", "stage_transitions", ["contact_id"])
    op.create_table(
        "break_glass_grants",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("actor_subject", sa.String(200), nullable=False),
        sa.Column("actor_issuer", sa.String(300), nullable=False),
        sa.Column("actor_agency", sa.String(50)),
        sa.Column("actor_team", sa.String(100)),
        sa.Column("subject_id", sa.String(36), nullable=False, index=True),
        sa.Column("reason_code", sa.String(40), nullable=False),
        sa.Column("justification", sa.String(4000), nullable=False),
        sa.Column("granted_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
    )
    op.create_index("ix_break_glass_actor", "break_glass_grants", ["actor_subject", "expires_at"])
    op.create_table(
        "ig_alerts",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("grant_id", sa.String(36), sa.ForeignKey("break_glass_grants.id")),
        sa.Column("subject_id", sa.String(36), nullable=False),
        sa.Column("actor_subject", sa.String(200), nullable=False),
        sa.Column("actor_agency", sa.String(50)),
        sa.Column("reason_code", sa.String(40), nullable=False),
        sa.Column("raised_at", TS, nullable=False, index=True),
        sa.Column("review_outcome", sa.String(30)),
        sa.Column("review_notes", sa.String(4000)),
        sa.Column("reviewed_by", sa.String(200)),
        sa.Column("reviewed_at", TS),
    )
    op.create_table(
        "notifications",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("team", sa.String(100), nullable=False),
        sa.Column("agency", sa.String(50), nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("subject_id", sa.String(36), nullable=False),
        sa.Column("contact_id", sa.String(36)),
        sa.Column("actor_subject", sa.String(200)),
        sa.Column("actor_agency", sa.String(50)),
        sa.Column("actor_team", sa.String(100)),
        sa.Column("purpose", sa.String(40)),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_notifications_team", "notifications", ["team", "created_at"])
    op.create_table(
        "withheld_items",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("source", sa.String(30), nullable=False),
        sa.Column("item_id", sa.String(200), nullable=False),
        sa.Column("agency", sa.String(50), nullable=False),
        sa.Column("reason_code", sa.String(40), nullable=False),
        sa.Column("reason", sa.String(4000), nullable=False),
        sa.Column("withheld_by", sa.String(200), nullable=False),
        sa.Column("withheld_at", TS, nullable=False),
        sa.UniqueConstraint("source", "item_id", name="uq_withheld_items_item"),
    )


def downgrade() -> None:
    for table in (
        "withheld_items",
        "notifications",
        "ig_alerts",
        "break_glass_grants",
        "stage_transitions",
        "consent_overrides",
        "consent_records",
        "research_tasks",
        "contact_subjects",
        "contacts",
    ):
        op.drop_table(table)
