"""Ledger entries: append-only rows of exact entry bytes (FORMATS section 3).

Adopts a ledger created before migrations existed: when ``ledger_entries`` is
already there it is left as it is (its triggers are created if missing).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ledger.migrations.append_only import append_only_ddl

revision = "l0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    if not sa.inspect(bind).has_table("ledger_entries"):
        op.create_table(
            "ledger_entries",
            sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
            sa.Column("kind", sa.Text, nullable=False),
            sa.Column("ts", sa.Text, nullable=False),
            sa.Column("leaf_input", sa.LargeBinary, nullable=False),
            sa.Column("leaf_hash", sa.LargeBinary, nullable=False),
        )
    for ddl in append_only_ddl(bind.dialect.name, "ledger_entries"):
        op.execute(ddl)
    if bind.dialect.name == "postgresql":
        # One round trip for "take the append lock, then read the head": a VOLATILE
        # function's statements each get a fresh snapshot, so the head is read after
        # the lock is held and sees every append committed before it.
        op.execute(
            "CREATE OR REPLACE FUNCTION govex_ledger_lock_head("
            "OUT seq bigint, OUT leaf_hash bytea) LANGUAGE plpgsql VOLATILE AS $$ BEGIN "
            "PERFORM pg_advisory_xact_lock(7453010373645639271); "
            "SELECT e.seq, e.leaf_hash INTO seq, leaf_hash FROM ledger_entries e "
            "ORDER BY e.seq DESC LIMIT 1; END $$"
        )
        # One round trip for a whole append when the caller already knows the head: under
        # the same lock, insert the rows only if the head is still the one they chain to
        # and they continue its seq; otherwise insert nothing and return the head.
        op.execute(
            "CREATE OR REPLACE FUNCTION govex_ledger_append("
            "expect_seq bigint, expect_hash bytea, seqs bigint[], kinds text[], tss text[], "
            "inputs bytea[], hashes bytea[], "
            "OUT appended boolean, OUT head_seq bigint, OUT head_hash bytea) "
            "LANGUAGE plpgsql VOLATILE AS $$ BEGIN "
            "PERFORM pg_advisory_xact_lock(7453010373645639271); "
            "SELECT e.seq, e.leaf_hash INTO head_seq, head_hash FROM ledger_entries e "
            "ORDER BY e.seq DESC LIMIT 1; "
            "appended := head_seq IS NOT DISTINCT FROM expect_seq "
            "AND head_hash IS NOT DISTINCT FROM expect_hash "
            "AND seqs[1] = coalesce(head_seq, -1) + 1; "
            "IF appended THEN "
            "INSERT INTO ledger_entries (seq, kind, ts, leaf_input, leaf_hash) "
            "SELECT * FROM unnest(seqs, kinds, tss, inputs, hashes); "
            "END IF; END $$"
        )


def downgrade() -> None:
    raise NotImplementedError("the ledger is append-only: its tables are never dropped")
