"""What the ledger pages show: entries by range, checkpoints, consistency, the chain's state.

For whoever may read the ledger (``read_ledger``); anyone else gets the 403 page. Entries
are read through :func:`service.reads.ledger_entries` and a consistency proof through
:func:`service.reads.ledger_consistency_proof`, so both are ledgered (``access.read``) as
the API's reads are. Stored checkpoints are listed as they are, each checked against the
ledger's verifier key; none is signed on a page view (a checkpoint is signed
periodically, or on demand by ``GET /v1/ledger/checkpoint`` and proofs). The chain's
state is the self-test's (:func:`service.selftest.run_selftest`: the whole chain up to
its bound, else the latest window; the checkpoint signature; the rest of the checks),
and the chart counts calls per hour by verdict (:mod:`service.console.chart`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from ledger.checkpoint import open_checkpoint
from ledger.entry import format_ts
from ledger.errors import LedgerError
from ledger.merkle import verify_consistency
from service import reads
from service.call_index import CallQuery
from service.console.chart import Chart, calls_per_hour
from service.console.errors import FormRefused
from service.errors import NotFound
from service.policy import require_ledger_reader
from service.selftest import SelftestReport, run_selftest

if TYPE_CHECKING:
    from ledger.entry import Entry as LedgerEntry
    from ledger.keys import VerifierKey
    from ledger.store import StoredCheckpoint
    from service.identity import Principal
    from service.runtime import Runtime

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
CHECKPOINTS_SHOWN = 20
CHART_HOURS = 24
MAX_CHART_HOURS = 168
CHART_MAX_CALLS = 5000
# A page view checks the whole chain up to this size, else the latest window (govex ledger
# verify and govex selftest check more).
SELFTEST_FULL_CHAIN_MAX = 10_000
SELFTEST_CHAIN_WINDOW = 2_000


@dataclass(frozen=True)
class CheckpointRow:
    size: int
    root_hex: str
    created_at: str
    signature_lines: tuple[str, ...]
    verified: bool
    detail: str


@dataclass(frozen=True)
class Consistency:
    old: int
    new: int
    proof_hex: tuple[str, ...]
    consistent: bool
    detail: str


@dataclass(frozen=True)
class LedgerPage:
    size: int
    start: int
    end: int  # the last seq read (start - 1 when none was)
    limit: int
    kind: str
    entries: tuple[LedgerEntry, ...]
    kinds: tuple[str, ...]  # the kinds on this page, for the filter
    previous_start: int | None
    next_start: int | None
    origin: str
    verifier_key: str | None
    checkpoints: tuple[CheckpointRow, ...]
    checkpoint_count: int
    default_old: int  # the consistency form's defaults: the two latest stored checkpoints
    default_new: int
    consistency: Consistency | None
    selftest: SelftestReport
    chart: Chart


@dataclass(frozen=True)
class EntryPage:
    entry: LedgerEntry
    size: int
    call_id: str | None
    packet_id: str | None
    proof_available: bool


def ledger_page(  # noqa: PLR0913 - one keyword per query parameter of the page
    runtime: Runtime,
    principal: Principal,
    *,
    start: int | None,
    limit: int,
    kind: str = "",
    old: int | None = None,
    new: int | None = None,
    hours: int = CHART_HOURS,
) -> LedgerPage:
    """The ledger page; ``PolicyDenied`` (403) without ``read_ledger``, before anything is read.

    ``start`` None shows the latest ``limit`` entries; ``kind`` keeps only that kind of
    the range read; ``old`` and ``new`` (two stored checkpoint sizes) add their consistency.
    """
    require_ledger_reader(runtime.policy, principal)
    if not 1 <= limit <= MAX_LIMIT:
        raise FormRefused(f"limit is 1 to {MAX_LIMIT}", status=422, where="limit")
    if not 1 <= hours <= MAX_CHART_HOURS:
        raise FormRefused(f"hours is 1 to {MAX_CHART_HOURS}", status=422, where="hours")
    # The latest few only: a ledger checkpointed every minute stores half a million a year.
    stored = runtime.ledger.recent_checkpoints(CHECKPOINTS_SHOWN)
    consistency = None
    if old is not None or new is not None:
        consistency = _consistency(runtime, principal, old, new)
    now = runtime.clock()
    since = format_ts(now - timedelta(hours=hours + 1))
    calls = reads.list_calls(runtime, principal, CallQuery(since=since, limit=CHART_MAX_CALLS))
    # The entries are read last (their size counts every read of this page), then the chain.
    first = max(runtime.ledger.size() + 1 - limit, 0) if start is None else start
    size, entries = reads.ledger_entries(runtime, principal, first, limit)
    key = None if runtime.checkpointer is None else runtime.checkpointer.verifier_key
    return LedgerPage(
        size=size,
        start=first,
        end=first + len(entries) - 1,
        limit=limit,
        kind=kind,
        entries=tuple(e for e in entries if not kind or e.kind == kind),
        kinds=tuple(sorted({e.kind for e in entries})),
        previous_start=max(first - limit, 0) if first > 0 else None,
        next_start=first + len(entries) if first + len(entries) < size else None,
        origin=runtime.settings.origin,
        verifier_key=None if key is None else key.text(),
        checkpoints=tuple(_checkpoint(c, key) for c in reversed(stored)),
        checkpoint_count=runtime.ledger.checkpoint_count(),
        default_old=stored[-2].size if len(stored) > 1 else (stored[-1].size if stored else 0),
        default_new=stored[-1].size if stored else 0,
        consistency=consistency,
        selftest=run_selftest(
            runtime, full_chain_max=SELFTEST_FULL_CHAIN_MAX, chain_window=SELFTEST_CHAIN_WINDOW
        ),
        chart=calls_per_hour(calls, now=now, hours=hours, truncated=len(calls) == CHART_MAX_CALLS),
    )


def entry_page(runtime: Runtime, principal: Principal, seq: int) -> EntryPage:
    """One entry (a ledgered read); ``NotFound`` past the end of the ledger."""
    size, entries = reads.ledger_entries(runtime, principal, seq, 1)
    if not entries:
        raise NotFound("ledger entry", str(seq))
    entry = entries[0]
    call_id = entry.body.get("call_id")
    packet_id = entry.body.get("packet_id")
    return EntryPage(
        entry=entry,
        size=size,
        call_id=call_id if isinstance(call_id, str) else None,
        packet_id=packet_id if isinstance(packet_id, str) else None,
        proof_available=runtime.checkpointer is not None,
    )


def _checkpoint(stored: StoredCheckpoint, key: VerifierKey | None) -> CheckpointRow:
    """Private: a stored checkpoint, its signature lines, and whether ``key`` verifies it."""
    lines = tuple(line for line in stored.note.splitlines() if line.startswith("\u2014 "))
    verified, detail = _signature(stored, key)
    return CheckpointRow(
        size=stored.size,
        root_hex=stored.root.hex(),
        created_at=stored.created_at,
        signature_lines=lines,
        verified=verified,
        detail=detail,
    )


def _signature(stored: StoredCheckpoint, key: VerifierKey | None) -> tuple[bool, str]:
    """Private: whether ``key`` verifies the stored note, and for the same tree as its row."""
    if key is None:
        return False, "no verifier key"
    try:
        checkpoint = open_checkpoint(stored.note, key)
    except LedgerError as exc:
        return False, exc.message
    if checkpoint.root != stored.root or checkpoint.size != stored.size:
        return False, "the signed note names another tree than the stored row"
    return True, f"signed by {key.name}"


def _consistency(
    runtime: Runtime,
    principal: Principal,
    old: int | None,
    new: int | None,
) -> Consistency:
    """Private: the proof between two stored checkpoints (a ledgered read), verified here."""
    chosen: list[StoredCheckpoint] = []
    for name, value in (("old", old), ("new", new)):
        found = None if value is None else runtime.ledger.checkpoint_at(value)
        if found is None:
            raise FormRefused(
                f"{name} must be the tree size of a stored checkpoint", status=422, where=name
            )
        chosen.append(found)
    first, last = sorted(chosen, key=lambda checkpoint: checkpoint.size)
    low, high = first.size, last.size
    proof = reads.ledger_consistency_proof(runtime, principal, low, high)
    hashes = tuple(h.hex() for h in proof)
    try:
        verify_consistency(low, high, first.root, last.root, proof)
    except LedgerError as exc:
        return Consistency(low, high, hashes, consistent=False, detail=exc.message)
    detail = (
        f"the tree of {high:,} entries extends the tree of {low:,} entries: the RFC 9162 proof "
        "recomputes both signed roots"
    )
    return Consistency(low, high, hashes, consistent=True, detail=detail)
