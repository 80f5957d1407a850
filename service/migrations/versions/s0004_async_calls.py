"""Calls as executions: each call's deadline, and idempotency keys (``govex_idempotency``).

``govex_calls.deadline_at`` is when a started call must have ended (its timeout plus its
lease grace): a call still ``created`` or ``running`` past it belongs to a process that is
gone, and is finished as interrupted (``service.call_reaper``). ``cancel_requested_at``
asks whichever worker runs the call to stop it (``DELETE /v1/calls/{id}``);
``claim_verdict`` and ``claim_reason`` show a finished call's claim in its status.
``govex_idempotency`` binds a principal's ``Idempotency-Key`` to the call it started and
the digest of the request, inserted and read only.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "s0004"
down_revision = "s0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("govex_calls") as batch:
        batch.add_column(sa.Column("deadline_at", sa.String(40)))
        batch.add_column(sa.Column("cancel_requested_at", sa.String(40)))
        batch.add_column(sa.Column("claim_verdict", sa.String(32)))
        batch.add_column(sa.Column("claim_reason", sa.String(32)))
    op.create_index("ix_govex_calls_state_deadline", "govex_calls", ["state", "deadline_at"])
    op.create_index("ix_govex_calls_created", "govex_calls", ["created_at"])
    op.create_table(
        "govex_idempotency",
        sa.Column("principal", sa.String(200), primary_key=True),
        sa.Column("idempotency_key", sa.String(200), primary_key=True),
        sa.Column("request_sha256", sa.String(64), nullable=False),
        sa.Column("call_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("govex_idempotency")
    op.drop_index("ix_govex_calls_created", table_name="govex_calls")
    op.drop_index("ix_govex_calls_state_deadline", table_name="govex_calls")
    with op.batch_alter_table("govex_calls") as batch:
        batch.drop_column("claim_reason")
        batch.drop_column("claim_verdict")
        batch.drop_column("cancel_requested_at")
        batch.drop_column("deadline_at")
