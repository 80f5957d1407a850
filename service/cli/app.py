"""The root of the ``govex`` command line: thin commands over the same core as the HTTP routes.

Here: ``catalog``, ``call``, ``schemas`` and ``serve``; the ``ledger``,
``keys``, ``db`` and ``packet`` groups live in their own modules.

Exit codes follow FORMATS section 6: a call exits with its verdict's code;
``packet verify`` and ``ledger verify`` exit 0 (every check passed), 1 (a check
failed) or 2 (usage or I/O error). Offline commands import neither FastAPI nor
SQLAlchemy: heavy modules load inside the commands that need them.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from catalog.errors import CatalogError
from service.cli.approvals import approvals_app
from service.cli.db import db_app
from service.cli.gate import gate
from service.cli.keys import keys_app
from service.cli.ledger import ledger_app
from service.cli.output import fail
from service.cli.packets import packet_app
from service.cli.packets_admin import packets_app
from service.cli.remote import remote_app
from service.cli.replay import ledger_replay
from service.cli.selftest import selftest
from service.cli.session import ConfigOption, caller_session, load_settings, parse_params
from service.problems import EXIT_USAGE

app = typer.Typer(
    name="govex",
    help="Audited read-only exports: sealed catalogs, call contracts, a ledger, packets.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
catalog_app = typer.Typer(help="Check, seal and verify a catalog directory.", no_args_is_help=True)
schemas_app = typer.Typer(help="JSON Schemas of govex documents.", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")
app.add_typer(ledger_app, name="ledger")
app.add_typer(keys_app, name="keys")
app.add_typer(approvals_app, name="approvals")
app.add_typer(db_app, name="db")
app.add_typer(packet_app, name="packet")
app.add_typer(remote_app, name="remote")
app.add_typer(packets_app, name="packets")
app.add_typer(schemas_app, name="schemas")
app.command("gate")(gate)
app.command("selftest")(selftest)
ledger_app.command("replay")(ledger_replay)

CatalogDir = Annotated[
    Path, typer.Argument(help="Catalog directory (catalog.toml).", file_okay=False)
]


def main() -> None:
    """Console script entry point; log lines go to stderr, as stdout is a command's answer."""
    from service.logging import configure_logging  # noqa: PLC0415

    configure_logging()
    app()


# --- catalog ---------------------------------------------------------------------------------


@catalog_app.command("check")
def catalog_check(directory: CatalogDir) -> None:
    """Load the catalog and run every static check (read-only SQL, parameters, ids)."""
    from catalog.load import load_catalog_dir  # noqa: PLC0415

    try:
        catalog = load_catalog_dir(directory)
    except CatalogError as exc:
        fail(exc)
    typer.echo(
        f"catalog {catalog.name} {catalog.version}: {len(catalog.entries)} entries, checks passed"
    )


@catalog_app.command("seal")
def catalog_seal(directory: CatalogDir) -> None:
    """Check the catalog and write catalog.seal.json with its entry and catalog digests."""
    from catalog.load import SEAL_FILE, load_catalog_dir, write_seal  # noqa: PLC0415
    from catalog.seal import compute_seal  # noqa: PLC0415

    try:
        catalog = load_catalog_dir(directory)
        seal = compute_seal(catalog, datetime.now(UTC))
        write_seal(directory / SEAL_FILE, seal)
    except CatalogError as exc:
        fail(exc)
    typer.echo(f"sealed {len(catalog.entries)} entries of {catalog.name} {catalog.version}")
    typer.echo(
        f"catalog_digest {seal.catalog_digest.text('sha256')} {seal.catalog_digest.text('blake3')}"
    )


@catalog_app.command("verify")
def catalog_verify(directory: CatalogDir) -> None:
    """Compare the catalog with its seal; name every entry changed, added or removed."""
    from catalog.load import SEAL_FILE, load_catalog_dir, read_seal  # noqa: PLC0415
    from catalog.seal import check_seal  # noqa: PLC0415

    try:
        catalog = load_catalog_dir(directory)
        check_seal(catalog, read_seal(directory / SEAL_FILE))
    except CatalogError as exc:
        fail(exc)
    typer.echo(
        f"catalog {catalog.name} {catalog.version} matches its seal, {len(catalog.entries)} entries"
    )


@catalog_app.command("resolve")
def catalog_resolve(
    directory: CatalogDir,
    canonical: Annotated[
        bool, typer.Option(help="Print the exact JCS bytes that are hashed.")
    ] = False,
) -> None:
    """Print the resolved catalog document (FORMATS section 2)."""
    from catalog.canonical import jcs  # noqa: PLC0415
    from catalog.load import load_catalog_dir  # noqa: PLC0415

    try:
        document = load_catalog_dir(directory).model_dump(mode="json")
    except CatalogError as exc:
        fail(exc)
    if canonical:
        sys.stdout.buffer.write(jcs(document, "catalog"))
    else:
        typer.echo(json.dumps(document, indent=2, ensure_ascii=False))


# --- calls -----------------------------------------------------------------------------------


@app.command("call")
def call(
    entry: Annotated[str, typer.Argument(help="Catalog entry id.")],
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="Input as name=value (repeat).")
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="jsonl, csv or parquet (govex[parquet]).")
    ] = "jsonl",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Return the would-be contract, run nothing.")
    ] = False,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--key",
            envvar="GOVEX_API_KEY",
            help="API key (or a JWT, where enabled).",
            show_default=False,
        ),
    ] = None,
    provisional: Annotated[
        bool | None, typer.Option("--provisional", help="Development override.")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Run a catalog entry locally, through the same core as POST /v1/calls.

    While a large export runs, its progress shows on stderr (a line redrawn on a terminal).
    """
    from service import calls  # noqa: PLC0415
    from service.api_models import CallResponse  # noqa: PLC0415
    from service.cli.progress_line import ProgressLine  # noqa: PLC0415
    from service.contract import CallRequest  # noqa: PLC0415
    from service.packets.tables import PARQUET_INSTALL_HINT, parquet_available  # noqa: PLC0415
    from service.progress import reporting_to  # noqa: PLC0415

    if fmt not in {"jsonl", "csv", "parquet"}:
        typer.echo(
            f"error [invalid_request]: --format {fmt!r}: use jsonl, csv or parquet", err=True
        )
        raise typer.Exit(EXIT_USAGE)
    if fmt == "parquet" and not parquet_available():
        typer.echo(
            f"error [invalid_request]: --format parquet needs pyarrow: {PARQUET_INSTALL_HINT}",
            err=True,
        )
        raise typer.Exit(EXIT_USAGE)
    settings = load_settings(config, provisional=provisional)
    pairs = parse_params(param or [])
    with caller_session(settings, api_key) as (runtime, principal):
        request = CallRequest.model_validate(
            {
                "entry": entry,
                "params": pairs,
                "mode": "dry_run" if dry_run else "run",
                "format": fmt,
            }
        )
        # CLI values are text: the entry's parameter types convert them.
        line = ProgressLine(sys.stderr, interactive=sys.stderr.isatty())
        try:
            with reporting_to(line):
                result = calls.execute(
                    runtime, principal, request, request_id=None, inputs_from_text=True
                )
        finally:
            line.close()
    typer.echo(CallResponse.of(result).model_dump_json(indent=2))
    if result.dry_run is not None:
        for check in result.dry_run.checks:
            typer.echo(
                f"{'OK' if check.passed else 'FAIL':4} {check.check:10} {check.detail}", err=True
            )
        typer.echo(
            f"dry run: a run {'would' if result.dry_run.would_run else 'would not'} pass", err=True
        )
    if result.packet_id:
        path = settings.packet_root / f"{result.packet_id}.zip"
        typer.echo(f"packet: {path}", err=True)
    raise typer.Exit(result.exit_code)


# --- schemas and serving ---------------------------------------------------------------------


@schemas_app.command("write")
def schemas_write(
    directory: Annotated[Path, typer.Argument(file_okay=False)] = Path("schemas"),
) -> None:
    """Regenerate the JSON Schemas from the models into DIRECTORY."""
    from service.schemas import write_schemas  # noqa: PLC0415

    for path in write_schemas(directory):
        typer.echo(f"wrote {path}")


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Bind address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    provisional: Annotated[
        bool | None,
        typer.Option(
            "--provisional",
            help="Development override: run an unsealed catalog, stamped provisional.",
        ),
    ] = None,
    config: ConfigOption = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            help="Worker processes sharing the ledger and packet root (PostgreSQL ledger "
            "recommended past one).",
        ),
    ] = 1,
) -> None:
    """Serve the HTTP API (settings from --config or ./govex.toml, and GOVEX_* variables)."""
    import os  # noqa: PLC0415

    import uvicorn  # noqa: PLC0415

    from service.app import create_app  # noqa: PLC0415
    from service.logging import configure_logging  # noqa: PLC0415
    from service.runtime import build_runtime  # noqa: PLC0415

    settings = load_settings(config, provisional=provisional)
    try:  # refuse early, with the problem on stderr, before uvicorn starts
        build_runtime(settings, record_start=False).close()
    except Exception as exc:  # noqa: BLE001 - reported as a problem, never a trace
        fail(exc)
    configure_logging()
    if workers == 1:
        uvicorn.run(create_app(settings), host=host, port=port, log_level="info", access_log=False)
        return
    # Each worker process builds its own app from the same settings: the file and overrides
    # go to them through the environment its factory reads (service.app.app_factory).
    if config is not None:
        os.environ["GOVEX_CONFIG"] = str(config.resolve())
    if provisional is not None:
        os.environ["GOVEX_PROVISIONAL"] = "true" if provisional else "false"
    uvicorn.run(
        "service.app:app_factory",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        access_log=False,  # service.request_log logs every request, with its request id
    )
