"""Partner systems (issue 14): the audit event names the partner system a request came
through (`client_system`, its configured name beside the client id in `client`) and whether
a person or the system itself asked (`actor_kind`: person, machine).

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Added columns only (no UPDATE of existing rows): append-only guards stay intact.
    op.add_column("audit_events", sa.Column("client_system", sa.String(200)))
    op.add_column("audit_events", sa.Column("actor_kind", sa.String(10)))


def downgrade() -> None:
    op.drop_column("audit_events", "actor_kind")
    op.drop_column("audit_events", "client_system")
