"""``govex packets prune``: the retention sweep of the server, on demand.

It first finishes removals already ledgered (a crash between ``packet.removed`` and the
unlink), then removes the packets older than ``packet_retention_days``, each ledgered as
``packet.removed`` before its file goes (:mod:`service.retention`). ``--dry-run`` lists
them and changes nothing. Exit 0 when done (nothing to do included), 2 for settings that
cannot work or a ledger that cannot be written, 4 while another sweep holds the lease.
"""

from __future__ import annotations

from typing import Annotated

import typer

from service.cli.output import fail
from service.cli.session import ConfigOption, load_settings

packets_app = typer.Typer(
    help="Manage the packet root: retention (govex packet verify checks one packet).",
    no_args_is_help=True,
)


@packets_app.command("prune")
def prune(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would be removed; change nothing.")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Remove packet files older than packet_retention_days; ledger each removal."""
    from service.retention import RetentionSweeper  # noqa: PLC0415 - heavy: runtime, SQL
    from service.runtime import build_runtime  # noqa: PLC0415

    settings = load_settings(config)
    try:
        runtime = build_runtime(settings, record_start=False)
    except Exception as exc:  # noqa: BLE001 - every start-up failure is reported, never traced
        fail(exc)
    try:
        sweeper = RetentionSweeper(runtime)
        if not dry_run:
            for packet_id in sweeper.reconcile():
                typer.echo(f"finished the ledgered removal of {packet_id}")
        if sweeper.retention is None:
            typer.echo("retention is off (packet_retention_days = 0): no packet expires")
            return
        removals = sweeper.sweep(dry_run=dry_run)
    except Exception as exc:  # noqa: BLE001 - mapped to a problem and an exit code
        fail(exc)
    finally:
        runtime.close()
    for removal in removals:
        if removal.removed_seq is None:
            typer.echo(f"would remove {removal.packet_id} (issued {removal.issued_at})")
        else:
            typer.echo(
                f"removed {removal.packet_id} (issued {removal.issued_at}, seq "
                f"{removal.issued_seq}); packet.removed at seq {removal.removed_seq}"
            )
    verb = "would remove" if dry_run else "removed"
    days = settings.packet_retention_days
    typer.echo(f"{verb} {len(removals)} packet(s) older than {days} day(s)")
