"""``govex db``: schema migrations of both govex schemas, and the service role's grants."""

from __future__ import annotations

from typing import Annotated

import typer

from service.cli.options import LedgerUrl
from service.cli.output import fail, usage
from service.settings import DEFAULT_LEDGER_URL

db_app = typer.Typer(help="Database schema migrations and grants.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade(ledger_url: LedgerUrl = DEFAULT_LEDGER_URL) -> None:
    """Migrate the ledger and service schemas to this govex's head (as the database owner)."""
    from sqlalchemy import create_engine  # noqa: PLC0415
    from sqlalchemy.exc import ArgumentError, DBAPIError  # noqa: PLC0415

    from ledger.errors import LedgerError  # noqa: PLC0415
    from ledger.migrate import (  # noqa: PLC0415
        LEDGER_SCHEMA,
        current_revision,
        head_revision,
        upgrade,
    )
    from ledger.sql_session import WRITE_OPTION, prepare_engine, storage_error  # noqa: PLC0415
    from service.call_index import SERVICE_SCHEMA  # noqa: PLC0415

    try:
        engine = create_engine(ledger_url)
    except ArgumentError as exc:
        usage(f"--ledger-url: {exc}")
    try:
        prepare_engine(engine)
        writer = engine.execution_options(**{WRITE_OPTION: True})
        for schema in (LEDGER_SCHEMA, SERVICE_SCHEMA):
            before = current_revision(writer, schema)
            upgrade(writer, schema)
            head = head_revision(schema)
            change = "already at head" if before == head else f"{before or '(none)'} -> {head}"
            typer.echo(f"{schema.name} schema: {change}")
    except DBAPIError as exc:
        fail(storage_error(exc, "migrate"))
    except LedgerError as exc:
        fail(exc)
    finally:
        engine.dispose()


@db_app.command("grants")
def db_grants(
    role: Annotated[str, typer.Option(help="The service's PostgreSQL role.", show_default=False)],
) -> None:
    """Print the PostgreSQL GRANTs of the documented deployment for the service ROLE.

    INSERT and SELECT on the ledger tables, never UPDATE, DELETE or TRUNCATE;
    the rebuildable call index (govex_calls) may also be updated.
    """
    from ledger.migrate import LEDGER_SCHEMA, service_grants  # noqa: PLC0415
    from service.call_index import SERVICE_SCHEMA  # noqa: PLC0415

    try:
        statements = service_grants(
            role,
            (LEDGER_SCHEMA, SERVICE_SCHEMA),
            writable=("govex_calls",),
            operational=("govex_leases",),
        )
    except ValueError as exc:
        usage(f"--role: {exc}")
    for statement in statements:
        typer.echo(statement + ";")
