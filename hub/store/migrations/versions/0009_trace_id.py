"""The OpenTelemetry trace id of each audited request (issue 15 item 1), so IG and operators
can go from an audit event to the request's spans and log lines.

A nullable column only (no UPDATE of existing rows: the append-only guards stay intact).
The hash chain leaves a null trace id out of an event's content (hub.chain), so events
chained before this revision verify as they did.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("audit_events", sa.Column("trace_id", sa.String(32)))


def downgrade() -> None:
    op.drop_column("audit_events", "trace_id")
