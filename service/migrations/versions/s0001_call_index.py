"""The call index (``govex_calls``): a rebuildable convenience, updated in place.

Adopts a database created before migrations existed: an existing table is kept.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "s0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table("govex_calls"):
        return
    op.create_table(
        "govex_calls",
        sa.Column("call_id", sa.String(64), primary_key=True),
        sa.Column("entry_id", sa.String(200), nullable=False),
        sa.Column("principal", sa.String(200), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("verdict", sa.String(32)),
        sa.Column("started_seq", sa.BigInteger),
        sa.Column("finished_seq", sa.BigInteger),
        sa.Column("packet_id", sa.String(64), unique=True),
        sa.Column("packet_seq", sa.BigInteger),
        sa.Column("manifest_sha256", sa.String(64)),
        sa.Column("manifest_blake3", sa.String(64)),
        sa.Column("rows", sa.BigInteger),
        sa.Column("bytes", sa.BigInteger),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("finished_at", sa.String(40)),
    )


def downgrade() -> None:
    op.drop_table("govex_calls")
