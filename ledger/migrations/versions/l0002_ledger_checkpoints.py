"""Signed checkpoints (FORMATS section 3), append-only like the entries."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ledger.migrations.append_only import append_only_ddl

revision = "l0002"
down_revision = "l0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger_checkpoints",
        sa.Column("size", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("root", sa.LargeBinary, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("created_at", sa.Text, nullable=False),
    )
    for ddl in append_only_ddl(op.get_bind().dialect.name, "ledger_checkpoints"):
        op.execute(ddl)


def downgrade() -> None:
    raise NotImplementedError("the ledger is append-only: its tables are never dropped")
