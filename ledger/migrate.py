"""Schema migrations (alembic) of govex's database, on SQLite and PostgreSQL.

Two schemas share one database, each with its own alembic script folder and
version table: :data:`LEDGER_SCHEMA` (``ledger_entries``, ``ledger_checkpoints``)
and the service's call index (``service.migrations``). :func:`upgrade` brings
one to its head inside one transaction; on PostgreSQL it first takes an
advisory lock, so workers starting together migrate once. At head, upgrading
only reads the version table, so a service role with no DDL rights may call it.

:func:`service_grants` is the documented deployment's grant set: the service
role may INSERT and SELECT the ledger tables and nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

from ledger.errors import SchemaNotCurrent

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

_MIGRATION_LOCK = 0x676F7665786D6967  # "govexmig": one migrating process per PostgreSQL database


@dataclass(frozen=True)
class Schema:
    """One alembic-managed schema: where its scripts are and which table records its revision."""

    name: str
    scripts: Path
    version_table: str
    tables: tuple[str, ...]


LEDGER_SCHEMA = Schema(
    name="ledger",
    scripts=Path(__file__).parent / "migrations",
    version_table="govex_ledger_version",
    tables=("ledger_entries", "ledger_checkpoints"),
)


def _config(schema: Schema, conn: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(schema.scripts))
    config.attributes["connection"] = conn
    config.attributes["version_table"] = schema.version_table
    return config


def run_environment() -> None:
    """The body of every govex alembic ``env.py``: migrate on the caller's connection.

    :func:`upgrade` passes an open connection (inside its transaction) and the
    schema's version table in ``config.attributes``, so one runner serves both
    govex schemas.
    """
    from alembic import context  # noqa: PLC0415 - alembic's proxy exists only inside a run

    context.configure(
        connection=context.config.attributes["connection"],
        version_table=context.config.attributes["version_table"],
        transactional_ddl=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def head_revision(schema: Schema) -> str:
    """The revision the code expects."""
    head = ScriptDirectory.from_config(_config(schema)).get_current_head()
    if head is None:  # pragma: no cover - every schema ships at least one revision
        raise SchemaNotCurrent(f"{schema.name} schema has no migrations", schema=schema.name)
    return head


def current_revision(engine: Engine, schema: Schema) -> str | None:
    """The revision recorded in the database (None before the first migration)."""
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": schema.version_table})
        return context.get_current_revision()


def upgrade(engine: Engine, schema: Schema) -> None:
    """Migrate ``schema`` to its head in one transaction (a no-op read when already there)."""
    if current_revision(engine, schema) == head_revision(schema):
        return
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        command.upgrade(_config(schema, conn), "head")


def check_current(engine: Engine, schema: Schema) -> None:
    """Raise :class:`SchemaNotCurrent` unless the database is at ``schema``'s head."""
    current, head = current_revision(engine, schema), head_revision(schema)
    if current != head:
        raise SchemaNotCurrent(
            f"{schema.name} schema is at revision {current or '(none)'}, this govex needs {head}: "
            "run `govex db upgrade` as the database owner",
            schema=schema.name,
        )


def service_grants(
    role: str,
    schemas: tuple[Schema, ...],
    *,
    writable: tuple[str, ...] = (),
    operational: tuple[str, ...] = (),
) -> list[str]:
    """PostgreSQL GRANTs of the documented deployment for service ``role``.

    Every table of ``schemas`` gets SELECT and INSERT only, except those named
    in ``writable`` (the rebuildable call index), which also get UPDATE, and
    in ``operational`` (leases: state, not evidence), which also get UPDATE
    and DELETE; the version tables get SELECT. Never UPDATE, DELETE or
    TRUNCATE on the ledger.
    """
    if not role.isidentifier():
        raise ValueError(f"role name {role!r} must be a plain SQL identifier")
    statements = [f"GRANT USAGE ON SCHEMA public TO {role}"]
    for schema in schemas:
        statements.append(f"GRANT SELECT ON {schema.version_table} TO {role}")
        for table in schema.tables:
            rights = "SELECT, INSERT"
            if table in operational:
                rights = "SELECT, INSERT, UPDATE, DELETE"
            elif table in writable:
                rights = "SELECT, INSERT, UPDATE"
            statements.append(f"GRANT {rights} ON {table} TO {role}")
    return statements
