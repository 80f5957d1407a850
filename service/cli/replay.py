"""``govex ledger replay``: re-run recorded calls and compare their results (:mod:`service.replay`).

Runs as the principal of ``--key`` (``GOVEX_API_KEY``), with the service's settings
(``--config``), through the same core an HTTP route would use. Prints one line per
replayed call, the counts, and the report packet; ``--json`` prints the whole result.

Exit codes: 0 every replayed call ``ran_clean`` (or none in range); 1 any other outcome
(drift, error, time-out, blocked, interrupted: each named); 2 usage or settings; 4 the
replay itself refused by policy (``read_ledger``).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from service.cli.output import usage
from service.cli.session import ConfigOption, caller_session, load_settings
from service.problems import EXIT_CHECK_FAILED

if TYPE_CHECKING:
    from service.replay import ReplayResult


def ledger_replay(
    from_seq: Annotated[
        int, typer.Option("--from", min=0, help="First call.started seq to replay.")
    ] = 0,
    to_seq: Annotated[
        int | None,
        typer.Option(
            "--to",
            min=0,
            help="Last call.started seq (default: the last entry now).",
            show_default=False,
        ),
    ] = None,
    entry: Annotated[
        str | None, typer.Option("--entry", help="Only calls of this catalog entry id.")
    ] = None,
    principal: Annotated[
        str | None, typer.Option("--principal", help="Only calls made by this principal id.")
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--key",
            envvar="GOVEX_API_KEY",
            help="API key (or JWT) of the replaying principal (an auditor or operator).",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    config: ConfigOption = None,
) -> None:
    """Re-run recorded calls in mode replay and compare each result with the recorded one.

    Each call.started of mode run in [--from, --to] is replayed under the same entry
    digest and inputs, as your own identity (policy action replay): ran_clean,
    ran_with_drift (catalog, data or engine drift, with the first differing row range),
    error_running, timed_out, blocked, or interrupted (it never finished). The replay
    is ledgered (replay.started, replay.finished) and its report is a packet.
    """
    from service.replay import ReplayFilters, replay  # noqa: PLC0415 - heavy: only here

    if to_seq is not None and to_seq < from_seq:
        usage(f"--from {from_seq} is past --to {to_seq}")
    settings = load_settings(config)
    filters = ReplayFilters(from_seq=from_seq, to_seq=to_seq, entry=entry, principal=principal)
    with caller_session(settings, api_key) as (runtime, caller):
        result = replay(runtime, caller, filters)
    if as_json:
        typer.echo(json.dumps(_as_json(result), indent=2))
    else:
        _print(result)
    if not result.clean:
        raise typer.Exit(EXIT_CHECK_FAILED)


def _print(result: ReplayResult) -> None:
    """Private: one line per replayed call, then the counts and the report packet."""
    for line in result.lines:
        drift = f" [{line.drift.value} drift]" if line.drift is not None else ""
        typer.echo(
            f"{line.outcome.value:15} {line.call_id} {line.entry_id} (seq {line.started_seq})"
            f"{drift}: {line.reason}"
        )
    counts = ", ".join(f"{count} {name}" for name, count in result.counts.items() if count)
    typer.echo(
        f"replayed {len(result.lines)} calls of seq {result.from_seq}..{result.to_seq}: "
        f"{counts or 'nothing to replay'}"
    )
    typer.echo(
        f"replay {result.replay_id}: ledger seqs {result.started_seq} (replay.started), "
        f"{result.finished_seq} (replay.finished), {result.packet_seq} (packet.issued)"
    )
    typer.echo(f"report packet: {result.packet_path}")
    typer.echo(f"manifest_hash {result.manifest_hash.text('sha256')}")


def _as_json(result: ReplayResult) -> dict[str, object]:
    return {
        "replay_id": result.replay_id,
        "range": {"from_seq": result.from_seq, "to_seq": result.to_seq},
        "clean": result.clean,
        "counts": result.counts,
        "ledger": {
            "started": result.started_seq,
            "finished": result.finished_seq,
            "packet_issued": result.packet_seq,
        },
        "packet_id": result.packet_id,
        "packet_path": str(result.packet_path),
        "manifest_hash": result.manifest_hash.model_dump(),
        "report_digest": result.report_digest.model_dump(),
        "calls": [line.model_dump(mode="json") for line in result.lines],
    }
