"""Approvals (``govex_approvals``): an index of ``approval.granted`` ledger entries.

Rows are inserted once and never updated or deleted (the service role gets INSERT and
SELECT only): the ledger entry at ``seq`` is the evidence, this table finds it by
(entry id, requester, inputs digest). Times are FORMATS time text, as in the ledger.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "s0003"
down_revision = "s0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "govex_approvals",
        sa.Column("approval_id", sa.String(64), primary_key=True),
        sa.Column("entry_id", sa.String(200), nullable=False),
        sa.Column("entry_digest", sa.String(64), nullable=False),
        sa.Column("inputs_digest", sa.String(64), nullable=False),
        sa.Column("requester", sa.String(200), nullable=False),
        sa.Column("requester_tenant", sa.String(200), nullable=False),
        sa.Column("tenant_relation", sa.String(16), nullable=False),
        sa.Column("approver", sa.String(200), nullable=False),
        sa.Column("approved_at", sa.String(40), nullable=False),
        sa.Column("expires_at", sa.String(40), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
    )
    op.create_index(
        "ix_govex_approvals_lookup",
        "govex_approvals",
        ["entry_id", "requester", "inputs_digest"],
    )


def downgrade() -> None:
    op.drop_index("ix_govex_approvals_lookup", table_name="govex_approvals")
    op.drop_table("govex_approvals")
