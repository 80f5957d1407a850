"""``govex packet verify``: the consumption contract of FORMATS section 4, offline.

Prints, in this order, what will be enforced (required authority, pinned
hashes, trusted catalogs, trusted keys and origin), one ``OK``/``FAIL``/``SKIP``
line per check and per file (a damaged file's chunks located below it by byte
and row range), then a summary line. ``--json`` prints the same report as JSON
(``schemas/packet-verify-report.schema.json``). Trust material comes only from
the files and values named on the command line; nothing is fetched: the
command opens no network connection. Exit 0 when every check passes, 1 when
one fails, 2 on usage or I/O errors (FORMATS section 6).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from catalog.authority import AuthorityStatus
from service.cli.keys import verifier_key
from service.cli.options import (
    ExpectManifestHash,
    PacketArgument,
    RequireAuthority,
    TrustCatalog,
    VerifierKeyOption,
)
from service.cli.output import io_error, usage
from service.problems import EXIT_CHECK_FAILED, EXIT_USAGE

if TYPE_CHECKING:
    from service.packets.verify import InclusionEvidence

packet_app = typer.Typer(help="Verify export packets offline.", no_args_is_help=True)


@packet_app.command("verify")
def packet_verify(
    packet: PacketArgument,
    expect_manifest_hash: ExpectManifestHash = None,
    require_authority: RequireAuthority = AuthorityStatus.sealed,
    trust_catalog: TrustCatalog = None,
    proof: Annotated[
        Path | None,
        typer.Option(
            help="C2SP tlog-proof of the packet's ledger entry (govex ledger prove --packet); "
            "runs ledger_inclusion with --key.",
        ),
    ] = None,
    checkpoint: Annotated[
        Path | None,
        typer.Option(help="A signed checkpoint you trust: the proof must be against its tree."),
    ] = None,
    key: VerifierKeyOption = None,
    bag_only: Annotated[
        bool,
        typer.Option(
            "--bag-only",
            help="Only the BagIt checks (layout, bagit_manifest), on any BagIt 1.0 bag.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable report.")] = False,
) -> None:
    """Run the consumption-contract checks (FORMATS section 4) in order; exit 0 only if all pass."""
    from service.packets.bag_checks import verify_bag_file  # noqa: PLC0415
    from service.packets.report import render_text  # noqa: PLC0415
    from service.packets.verify import verify_packet_file  # noqa: PLC0415

    if not packet.exists():
        typer.echo(f"error [io_error]: {packet} does not exist", err=True)
        raise typer.Exit(EXIT_USAGE)
    if bag_only:
        if expect_manifest_hash or trust_catalog or proof or checkpoint or key:
            usage("--bag-only checks the BagIt layer only: it takes no pins, proof or key")
        report = verify_bag_file(packet)
    else:
        inclusion = _inclusion_evidence(proof, checkpoint, key)
        try:
            report = verify_packet_file(
                packet,
                expect_manifest_hash=expect_manifest_hash,
                require_authority=require_authority,
                trusted_catalog_digests=tuple(trust_catalog or ()),
                inclusion=inclusion,
            )
        except ValueError as exc:  # a malformed pin or digest given on the command line
            usage(str(exc))
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    else:
        for line in render_text(report, str(packet)):
            typer.echo(line)
    raise typer.Exit(0 if report.ok else EXIT_CHECK_FAILED)


def _inclusion_evidence(
    proof: Path | None, checkpoint: Path | None, key: str | None
) -> InclusionEvidence | None:
    """What ``ledger_inclusion`` runs on, read from the files given; None without --proof."""
    from service.packets.verify import InclusionEvidence  # noqa: PLC0415

    if proof is None:
        if checkpoint is not None or key is not None:
            usage("--checkpoint and --key check a --proof: give the proof file too")
        return None
    if key is None:
        usage("--proof needs --key, the ledger's trusted verifier key")
    verifier = verifier_key(key)
    try:
        return InclusionEvidence(
            proof=proof.read_bytes(),
            key=verifier,
            checkpoint=None if checkpoint is None else checkpoint.read_bytes(),
        )
    except OSError as exc:
        io_error(exc)
