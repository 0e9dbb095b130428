"""Audit content for information governance (issue 6): contact stage, justification,
break-glass and consent-override details, policy decisions, the DPA 2018 s62 marker, the
operation's root fields and the parameters of an IG report read.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

EMPTY_LIST = sa.text("'[]'")


def upgrade() -> None:
    # Added columns only (no UPDATE of existing rows): append-only guards stay intact.
    op.add_column("audit_events", sa.Column("contact_stage", sa.String(20)))
    op.add_column("audit_events", sa.Column("justification", sa.String(1000)))
    op.add_column("audit_events", sa.Column("break_glass", sa.JSON))
    op.add_column("audit_events", sa.Column("consent_override", sa.JSON))
    op.add_column(
        "audit_events",
        sa.Column("policy_decisions", sa.JSON, nullable=False, server_default=EMPTY_LIST),
    )
    op.add_column(
        "audit_events",
        sa.Column("root_fields", sa.JSON, nullable=False, server_default=EMPTY_LIST),
    )
    op.add_column(
        "audit_events",
        sa.Column("police_consulted", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.add_column("audit_events", sa.Column("report", sa.JSON))
    op.create_index("ix_audit_events_police", "audit_events", ["police_consulted", "occurred_at"])


def downgrade() -> None:
    op.drop_index("ix_audit_events_police", table_name="audit_events")
    for column in (
        "report",
        "police_consulted",
        "root_fields",
        "policy_decisions",
        "consent_override",
        "break_glass",
        "justification",
        "contact_stage",
    ):
        op.drop_column("audit_events", column)
