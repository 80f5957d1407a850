"""DDL that makes a table append-only in the database itself (FORMATS section 3).

Frozen with the migrations that use it: a change here is a new migration.
"""

from __future__ import annotations

APPEND_ONLY_MESSAGE = "govex ledger is append-only"


def append_only_ddl(dialect: str, table: str) -> tuple[str, ...]:
    """Statements refusing UPDATE, DELETE (and TRUNCATE on PostgreSQL) on ``table``; idempotent."""
    if dialect == "sqlite":  # SQLite has no TRUNCATE; DELETE without WHERE fires the trigger
        return tuple(
            f"CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} BEFORE {op} ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END"
            for op in ("UPDATE", "DELETE")
        )
    if dialect == "postgresql":
        return (
            (
                "CREATE OR REPLACE FUNCTION govex_refuse_change() RETURNS trigger "
                "LANGUAGE plpgsql AS $$ BEGIN "
                f"RAISE EXCEPTION '{APPEND_ONLY_MESSAGE}: % on % refused', TG_OP, TG_TABLE_NAME "
                "USING ERRCODE = 'insufficient_privilege'; END $$"
            ),
            (
                f"CREATE OR REPLACE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION govex_refuse_change()"
            ),
            (
                f"CREATE OR REPLACE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION govex_refuse_change()"
            ),
        )
    raise ValueError(f"no append-only DDL for dialect {dialect!r}")
