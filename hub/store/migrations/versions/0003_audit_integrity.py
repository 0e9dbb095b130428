"""Audit integrity: the sequencer's hash chain, the log's identity, append-only guards and
the PostgreSQL roles (issue 6).

Revision ID: 0003
Revises: 0002
"""

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
GUARDED = ("audit_events", "audit_subjects", "audit_chain", "audit_log_identity")
# Deletes of these go through only while the purge job holds the gate open.
PURGEABLE = ("audit_events", "audit_subjects")
ROLES = ("mash_audit_writer", "mash_audit_reader")

PG_FUNCTION = """
CREATE OR REPLACE FUNCTION mash_audit_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' AND TG_ARGV[0] = 'purgeable'
     AND EXISTS (SELECT 1 FROM audit_purge_gate) THEN
    RETURN OLD;
  END IF;
  RAISE EXCEPTION 'the audit log is append-only: % on % refused', TG_OP, TG_TABLE_NAME
    USING ERRCODE = 'insufficient_privilege';
END $$;
"""

# The sequencer's horizon (hub.sequencer): take the writers' advisory lock exclusively, which
# waits out every transaction that drew a seq, read the highest seq with a fresh snapshot,
# and let go, all inside one statement so writers are held up only on the server side.
PG_HORIZON = """
CREATE OR REPLACE FUNCTION mash_audit_horizon() RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE top bigint;
BEGIN
  PERFORM pg_advisory_lock({lock});
  BEGIN
    SELECT max(seq) INTO top FROM audit_events;
  EXCEPTION WHEN OTHERS OR query_canceled THEN
    PERFORM pg_advisory_unlock({lock});
    RAISE;
  END;
  PERFORM pg_advisory_unlock({lock});
  RETURN coalesce(top, 0);
END $$;
"""
WRITE_LOCK = 0x6D617368_0002

# Roles are cluster-wide and many databases are migrated side by side (tests): create each
# only if missing, and tolerate a concurrent creator.
PG_ROLE = """
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{name}') THEN
    CREATE ROLE {name} NOLOGIN;
  END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$;
"""


def upgrade() -> None:
    op.create_table(
        "audit_chain",
        sa.Column("seq", SEQ, primary_key=True, autoincrement=False),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("occurred_at", sa.String(40), nullable=False),
        sa.Column("event_class", sa.String(80), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("chain_hash", sa.String(64), nullable=False),
    )
    op.create_table(
        "audit_log_identity",
        sa.Column("log_id", sa.String(36), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "audit_purge_gate",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    )
    op.bulk_insert(
        sa.table(
            "audit_log_identity",
            sa.column("log_id", sa.String),
            sa.column("created_at", sa.DateTime(timezone=True)),
        ),
        [{"log_id": str(uuid.uuid4()), "created_at": datetime.now(UTC)}],
    )
    if op.get_bind().dialect.name == "postgresql":
        _postgres_guards()
    else:
        _sqlite_guards()


def _postgres_guards() -> None:
    op.execute(PG_FUNCTION)
    op.execute(PG_HORIZON.format(lock=WRITE_LOCK))  # the same key as hub.audit.WRITE_LOCK
    for table in GUARDED:
        kind = "purgeable" if table in PURGEABLE else "fixed"
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION mash_audit_append_only('{kind}')"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION mash_audit_append_only('fixed')"
        )
    for role in ROLES:
        op.execute(PG_ROLE.format(name=role))
    # The writer inserts events (RETURNING their seq) and chain entries; it can change none.
    op.execute("GRANT INSERT ON audit_events, audit_subjects, audit_chain TO mash_audit_writer")
    op.execute("GRANT SELECT (seq) ON audit_events TO mash_audit_writer")
    op.execute("GRANT USAGE ON SEQUENCE audit_events_seq_seq TO mash_audit_writer")
    op.execute(
        "GRANT SELECT ON audit_events, audit_subjects, audit_chain, audit_log_identity "
        "TO mash_audit_reader"
    )


def _sqlite_guards() -> None:
    for table in GUARDED:
        op.execute(
            f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
            f"BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END"
        )
        gate = " WHEN NOT EXISTS (SELECT 1 FROM audit_purge_gate)" if table in PURGEABLE else ""
        op.execute(
            f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table}{gate} "
            f"BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END"
        )


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table in GUARDED:
        if postgres:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
    if postgres:
        op.execute(
            "REVOKE ALL ON audit_events, audit_subjects FROM mash_audit_writer, mash_audit_reader"
        )
        op.execute("REVOKE ALL ON SEQUENCE audit_events_seq_seq FROM mash_audit_writer")
        op.execute("DROP FUNCTION IF EXISTS mash_audit_append_only()")
        op.execute("DROP FUNCTION IF EXISTS mash_audit_horizon()")
    op.drop_table("audit_purge_gate")
    op.drop_table("audit_log_identity")
    op.drop_table("audit_chain")
