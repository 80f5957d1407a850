"""Alembic environment of the service tables (the call index); run through :mod:`ledger.migrate`.

The caller passes an open connection (inside its transaction) and the version
table in ``config.attributes``, so one runner serves both govex schemas.
"""

from __future__ import annotations

from alembic import context

_connection = context.config.attributes["connection"]
context.configure(
    connection=_connection,
    version_table=context.config.attributes["version_table"],
    transactional_ddl=True,
)
with context.begin_transaction():
    context.run_migrations()
