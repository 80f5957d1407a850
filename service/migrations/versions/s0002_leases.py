"""Call leases (``govex_leases``): operational state, deleted on release; not evidence.

Times are integer microseconds since the Unix epoch, so they compare the same
way on SQLite and PostgreSQL. The index serves the per-scope reclaim and count
that every acquire runs (``service.leases``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "s0002"
down_revision = "s0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "govex_leases",
        sa.Column("lease_id", sa.String(64), primary_key=True),
        sa.Column("scope", sa.String(400), nullable=False),
        sa.Column("holder", sa.String(64), nullable=False),
        sa.Column("acquired_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_govex_leases_scope_expires", "govex_leases", ["scope", "expires_at"])


def downgrade() -> None:
    op.drop_index("ix_govex_leases_scope_expires", table_name="govex_leases")
    op.drop_table("govex_leases")
