"""``govex ledger``: verify against trusted checkpoints, export, checkpoint, prove, consistency.

Offline where it can be: ``verify --export`` and ``consistency --export``
read a JSON Lines export and the auditor's own checkpoint files, nothing else.
Verification without a trusted checkpoint says ``unanchored``, never plain OK.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from service.cli.keys import signer_key, verifier_key
from service.cli.options import LedgerUrl, SignerKeyFile, VerifierKeyOption
from service.cli.output import fail, io_error, usage
from service.problems import EXIT_CHECK_FAILED, EXIT_USAGE
from service.settings import DEFAULT_LEDGER_URL, sqlite_file

if TYPE_CHECKING:
    from ledger.anchor import AnchoredReport
    from ledger.checkpoint import Checkpoint
    from ledger.keys import VerifierKey
    from ledger.store import LedgerStore, StoredCheckpoint

ledger_app = typer.Typer(
    help="Verify, export, checkpoint and prove the ledger.", no_args_is_help=True
)


@ledger_app.command("verify")
def ledger_verify(
    export: Annotated[
        Path | None, typer.Option(help="A JSON Lines export; without it, the configured store.")
    ] = None,
    checkpoint: Annotated[
        list[Path] | None,
        typer.Option(
            help="A signed checkpoint you trust (repeat); needs --key.", show_default=False
        ),
    ] = None,
    key: VerifierKeyOption = None,
    require_anchor: Annotated[
        bool, typer.Option(help="Exit 1 unless a trusted checkpoint anchors the ledger.")
    ] = False,
    full: Annotated[
        bool,
        typer.Option(
            help="Export only: also check each entry's canonical form and body schema, in one "
            "process (about ten times slower). The store is always verified in full."
        ),
    ] = False,
    jobs: Annotated[
        int | None,
        typer.Option(
            min=1, help="Export only: processes for the scan (default: the CPUs available)."
        ),
    ] = None,
    ledger_url: LedgerUrl = DEFAULT_LEDGER_URL,
) -> None:
    """Verify the chain and anchor it to the checkpoints you trust.

    Without a trusted checkpoint the ledger is reported `unanchored`: its chain
    is intact, but a truncated or fully recomputed ledger cannot be detected.
    """
    from ledger.errors import LedgerError  # noqa: PLC0415

    if key is not None and not checkpoint:
        usage("--key verifies --checkpoint files: give at least one")
    if (full or jobs is not None) and export is None:
        usage("--full and --jobs apply to an export (--export FILE); the store is verified in full")
    if full and jobs is not None:
        usage("--full verifies in one process: drop --jobs")
    trusted = _trusted_checkpoints(checkpoint or [], key)
    try:
        if export is not None:
            report = _verify_export(export, trusted, full=full, jobs=jobs)
        else:
            report = _verify_store(ledger_url, trusted)
    except LedgerError as exc:
        fail(exc)
    except OSError as exc:
        io_error(exc)
    _print_verified(report)
    if export is not None:
        checked = (
            "JSON, canonical form, schema, seq, prev, tree"
            if full
            else "JSON, seq, prev, tree (FORMATS section 3); --full adds canonical form and schema"
        )
        typer.echo(f"  checked per entry: {checked}")
    if require_anchor and report.anchor is None:
        typer.echo(
            "error [unanchored]: --require-anchor: no trusted checkpoint anchors it", err=True
        )
        raise typer.Exit(EXIT_CHECK_FAILED)


def _verify_export(
    export: Path, trusted: list[Checkpoint], *, full: bool, jobs: int | None
) -> AnchoredReport:
    """Private: an export, scanned on ``jobs`` processes, or ``full``y in this one."""
    from ledger.anchor import anchor_scan, verify_anchored  # noqa: PLC0415
    from ledger.export_scan import scan_export  # noqa: PLC0415
    from ledger.verify import export_leaf_inputs  # noqa: PLC0415

    if full:
        with export.open("rb") as lines:
            return verify_anchored(export_leaf_inputs(lines), trusted)
    return anchor_scan(scan_export(export, [c.size for c in trusted], jobs=jobs), trusted)


def _verify_store(ledger_url: str, trusted: list[Checkpoint]) -> AnchoredReport:
    """Private: the configured store in full (stored columns and checkpoints too), anchored."""
    from ledger.anchor import AnchoredReport, verify_anchored  # noqa: PLC0415

    store = _open_existing_ledger(ledger_url)
    try:
        chain = store.verify()
        if not trusted:
            return AnchoredReport(chain=chain, anchor=None, matched=())
        return verify_anchored(store.iter_leaf_inputs(), trusted)
    finally:
        store.close()


def _print_verified(report: AnchoredReport) -> None:
    """Private: say what a verification proved, anchored or not."""
    if report.anchor is None:
        typer.echo(f"ledger unanchored: {report.size} entries, chain intact")
        typer.echo(
            "  no trusted checkpoint given: a truncated or fully recomputed ledger cannot be "
            "detected (pass --checkpoint FILE --key KEY)"
        )
    else:
        typer.echo(
            f"ledger anchored: {report.size} entries, chain intact, tree size "
            f"{report.anchored_size} matches the trusted checkpoint of {report.anchor.origin} "
            f"(root {report.anchor.root.hex()})"
        )
        if report.unanchored_tail:
            typer.echo(
                f"  unanchored tail: {report.unanchored_tail} entries, seq "
                f"{report.anchored_size}..{report.size - 1}, not covered by a trusted checkpoint"
            )
    typer.echo(f"root {report.root.hex()} (RFC 9162, tree size {report.size})")


@ledger_app.command("export")
def ledger_export(
    out: Annotated[
        Path | None, typer.Option(help="Output file; standard output when omitted.")
    ] = None,
    ledger_url: LedgerUrl = DEFAULT_LEDGER_URL,
) -> None:
    """Write the ledger as JSON Lines: line i is exactly leaf_input(i)."""
    from ledger.export import export_lines  # noqa: PLC0415

    store = _open_existing_ledger(ledger_url)
    try:
        if out is None:
            export_lines(store, sys.stdout.buffer)
        else:
            tmp = out.with_name(out.name + ".partial")
            with tmp.open("wb") as handle:
                export_lines(store, handle)
            tmp.replace(out)
    finally:
        store.close()


@ledger_app.command("checkpoint")
def ledger_checkpoint(
    key_file: SignerKeyFile = None,
    ledger_url: LedgerUrl = DEFAULT_LEDGER_URL,
) -> None:
    """Sign and store a checkpoint of the ledger as stored now, and print the signed note.

    The latest stored checkpoint is printed when the ledger has not grown. A
    ledger that does not extend its latest checkpoint gets no signature (exit 1).
    """
    from ledger.checkpointer import Checkpointer  # noqa: PLC0415
    from ledger.errors import LedgerError  # noqa: PLC0415

    signer = signer_key(key_file)
    store = _open_existing_ledger(ledger_url)
    try:
        stored = Checkpointer(store, signer, _now).checkpoint()
    except LedgerError as exc:
        fail(exc)
    finally:
        store.close()
    typer.echo(stored.note, nl=False)


@ledger_app.command("prove")
def ledger_prove(
    seq: Annotated[int | None, typer.Argument(min=0, help="The entry to prove.")] = None,
    packet: Annotated[
        str | None,
        typer.Option(help="Prove the packet.issued entry of this packet id instead of SEQ."),
    ] = None,
    size: Annotated[
        int | None,
        typer.Option(min=1, help="Tree size of a stored checkpoint; the latest when omitted."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Write the tlog-proof here; standard output when omitted.")
    ] = None,
    key_file: SignerKeyFile = None,
    ledger_url: LedgerUrl = DEFAULT_LEDGER_URL,
) -> None:
    """Write a C2SP tlog-proof that an entry is in a signed checkpoint (FORMATS section 4).

    The proof's extra line holds the entry's leaf input; its checkpoint is the
    stored one of --size, or the latest, signed first with --key-file when
    none covers the entry.
    """
    from ledger.errors import LedgerError  # noqa: PLC0415
    from ledger.tlog_proof import format_tlog_proof  # noqa: PLC0415

    if (seq is None) == (packet is None):
        usage("give SEQ or --packet PACKET_ID (one of them)")
    store = _open_existing_ledger(ledger_url)
    try:
        target = seq if seq is not None else _packet_issued_seq(store, packet or "")
        stored = _proof_checkpoint(store, target, size, key_file)
        proof = store.tlog_proof(target, stored)
    except LedgerError as exc:
        fail(exc)
    finally:
        store.close()
    text = format_tlog_proof(proof)
    if out is None:
        typer.echo(text, nl=False)
    else:
        try:
            out.write_text(text, encoding="utf-8")
        except OSError as exc:
            io_error(exc)
    typer.echo(f"proof of seq {target} in the checkpoint of tree size {stored.size}", err=True)


@ledger_app.command("consistency")
def ledger_consistency(
    old: Annotated[Path, typer.Argument(help="The older signed checkpoint, one you trust.")],
    new: Annotated[Path, typer.Argument(help="The newer signed checkpoint.")],
    key: Annotated[
        str,
        typer.Option(
            help="The ledger's verifier key (<name>+<id>+<data>) or a file holding it.",
            show_default=False,
        ),
    ],
    export: Annotated[
        Path | None, typer.Option(help="A JSON Lines export; without it, the configured store.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Write the consistency proof here, one base64 hash a line.")
    ] = None,
    ledger_url: LedgerUrl = DEFAULT_LEDGER_URL,
) -> None:
    """Prove from the entries that checkpoint NEW extends checkpoint OLD.

    Both signatures must verify with --key; a rollback names the first missing
    seq, a fork the range of seqs between the checkpoints (exit 1).
    """
    from ledger.anchor import check_consistency  # noqa: PLC0415
    from ledger.errors import LedgerError  # noqa: PLC0415
    from ledger.keys import encode_base64  # noqa: PLC0415
    from ledger.verify import export_leaf_inputs  # noqa: PLC0415

    verifier = verifier_key(key)
    older, newer = (_open_checkpoint_file(path, verifier) for path in (old, new))
    try:
        if export is not None:
            with export.open("rb") as lines:
                report = check_consistency(export_leaf_inputs(lines), older, newer)
        else:
            store = _open_existing_ledger(ledger_url)
            try:
                report = check_consistency(store.iter_leaf_inputs(), older, newer)
            finally:
                store.close()
    except LedgerError as exc:
        fail(exc)
    except OSError as exc:
        io_error(exc)
    typer.echo(
        f"consistent: the tree of size {newer.size} (root {newer.root.hex()}) extends the tree "
        f"of size {older.size} (root {older.root.hex()})"
    )
    typer.echo(f"consistency proof: {len(report.proof)} hashes, verified against both roots")
    if out is not None:
        try:
            out.write_text("".join(encode_base64(node) + "\n" for node in report.proof))
        except OSError as exc:
            io_error(exc)


def _now() -> datetime:
    return datetime.now(UTC)


def _open_existing_ledger(url: str) -> LedgerStore:
    """Open a ledger that exists; a mistyped SQLite path must not create an empty one."""
    from ledger.errors import LedgerError  # noqa: PLC0415
    from ledger.store import LedgerStore  # noqa: PLC0415

    database = sqlite_file(url)
    if database is not None and not database.is_file():
        typer.echo(f"error [io_error]: no ledger database at {database}", err=True)
        raise typer.Exit(EXIT_USAGE)
    try:
        return LedgerStore.open(url)
    except LedgerError as exc:
        fail(exc)


def _open_checkpoint_file(path: Path, verifier: VerifierKey) -> Checkpoint:
    """A checkpoint file verified with ``verifier``; a refusal exits 1 naming the file."""
    from ledger.checkpoint import open_checkpoint  # noqa: PLC0415
    from ledger.errors import NoteError  # noqa: PLC0415

    try:
        data = path.read_bytes()
    except OSError as exc:
        io_error(exc)
    try:
        return open_checkpoint(data, verifier)
    except NoteError as exc:
        fail(exc, context=f"checkpoint {path}")


def _trusted_checkpoints(paths: list[Path], key: str | None) -> list[Checkpoint]:
    if not paths:
        return []
    if key is None:
        usage("--checkpoint needs --key, the ledger's trusted verifier key")
    verifier = verifier_key(key)
    return [_open_checkpoint_file(path, verifier) for path in paths]


def _packet_issued_seq(store: LedgerStore, packet_id: str) -> int:
    """The seq of the ``packet.issued`` entry of ``packet_id``: from the call index, else a scan.

    The index only says where to look: the entry found there must issue the
    packet, or the whole ledger is scanned.
    """
    from sqlalchemy import inspect  # noqa: PLC0415

    from service.call_index import CallIndex  # noqa: PLC0415

    if inspect(store.engine).has_table("govex_calls"):
        record = CallIndex(store.engine).by_packet(packet_id)
        if record is not None and record.packet_seq is not None:
            seq = record.packet_seq
            if seq < store.size() and _issues(store.get_leaf_input(seq), packet_id) is not None:
                return seq
    needle = packet_id.encode()
    for data in store.iter_leaf_inputs():
        if needle in data:
            found = _issues(data, packet_id)
            if found is not None:
                return found
    typer.echo(f"error [not_found]: no packet.issued entry for packet {packet_id}", err=True)
    raise typer.Exit(EXIT_USAGE)


def _issues(data: bytes, packet_id: str) -> int | None:
    """The seq of ``data`` when it is the ``packet.issued`` entry of ``packet_id``."""
    from ledger.entry import Kind, entry_from_leaf_input  # noqa: PLC0415

    try:
        entry = entry_from_leaf_input(data)
    except ValueError:
        return None
    if entry.kind is Kind.packet_issued and entry.body.get("packet_id") == packet_id:
        return entry.seq
    return None


def _proof_checkpoint(
    store: LedgerStore, seq: int, size: int | None, key_file: Path | None
) -> StoredCheckpoint:
    """The stored checkpoint to prove ``seq`` against: of ``size``, or the latest covering it.

    Signs one of the ledger as stored now (with ``key_file``) when none is
    stored for that; exits 2 when it cannot.
    """
    from ledger.checkpointer import Checkpointer  # noqa: PLC0415

    entries = store.size()
    if seq >= entries:
        usage(f"the ledger has {entries} entries: no seq {seq}")
    stored = store.latest_checkpoint() if size is None else store.checkpoint_at(size)
    wanted = size if size is not None else entries
    if (stored is None or stored.size <= seq) and key_file is not None and wanted == entries:
        stored = Checkpointer(store, signer_key(key_file), _now).checkpoint()
    if stored is None or (size is not None and stored.size != size):
        sizes = ", ".join(str(c.size) for c in store.checkpoints()) or "none"
        usage(
            f"no stored checkpoint of tree size {wanted} (stored: {sizes}); run "
            "'govex ledger checkpoint', or pass --key-file to sign one of the ledger as it is"
        )
    if seq >= stored.size:
        usage(
            f"seq {seq} is not in the latest checkpoint (tree size {stored.size}); run "
            "'govex ledger checkpoint', or pass --key-file to sign one"
        )
    return stored
