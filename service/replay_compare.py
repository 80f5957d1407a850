"""What the replay of one recorded call found, and where its result first differs. Pure: no I/O.

A replay re-runs a recorded call and compares its result with the one recorded in
``call.finished``. :func:`judge` decides, in this order (the first rule that applies):

1. the replay did not run to a result (``error_running``, ``timed_out``, ``blocked``):
   that verdict is the outcome, nothing is compared;
2. the recorded call ended without a result (it failed or timed out) and the replay
   produced one: ``ran_with_drift``, drift ``outcome``;
3. both digests (SHA-256 and BLAKE3) are equal: ``ran_clean``;
4. otherwise ``ran_with_drift``; the drift is ``engine`` when the engine's version
   changed since the call (both versions known and different), else ``data``; the
   first differing chunk (:func:`first_difference`) locates it when the call recorded
   its chunks.

``catalog`` drift (the entry is gone from the sealed catalog, or its digest changed)
and ``interrupted`` (no ``call.finished``, or one the reaper wrote) are decided before
anything runs, by :mod:`service.replay_run`.

Chunks are cut on row boundaries at about the same size for the export and the replay
(:mod:`service.packets.tables`): up to the first differing chunk both files are equal,
byte for byte, so that chunk's byte and row range holds the first difference.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from service.packets.columns import ColumnType

if TYPE_CHECKING:
    from collections.abc import Sequence

    from catalog.digest import DigestSet
    from service.packets.manifest import Chunk, FileRecord

MAX_LEDGER_CHUNKS = 4096
"""Chunks recorded in ``call.finished`` at most (about 4 GiB of result); past it, none."""


class Outcome(StrEnum):
    """How the replay of one recorded call ended (FORMATS section 6 verdicts, and one more)."""

    ran_clean = "ran_clean"
    ran_with_drift = "ran_with_drift"
    error_running = "error_running"
    timed_out = "timed_out"
    blocked = "blocked"
    interrupted = "interrupted"  # the recorded call never finished: nothing to compare


class Drift(StrEnum):
    """What changed, where it can be told."""

    catalog = "catalog"  # the entry is gone from the sealed catalog, or its digest changed
    data = "data"  # same entry, same engine version, different rows
    engine = "engine"  # the source engine's version changed since the call
    outcome = "outcome"  # the call ended without a result; the replay gave one


@dataclass(frozen=True)
class ResultFacts:
    """One side of the comparison: how a run ended and what its result file was."""

    verdict: str
    digest: DigestSet | None
    rows: int | None
    chunks: tuple[Chunk, ...] | None  # None: not recorded
    engine_version: str | None
    error: str | None = None


@dataclass(frozen=True)
class FirstDifference:
    """The first chunk whose bytes differ: byte range, and data rows (from 0) of a table."""

    chunk: int
    offset: int
    bytes: int
    first_row: int | None
    rows: int | None

    def describe(self) -> str:
        end = self.offset + self.bytes - 1
        text = f"chunk {self.chunk}, bytes {self.offset:,}-{max(end, self.offset):,}"
        if self.first_row is not None and self.rows:
            text += f" (rows {self.first_row:,}-{self.first_row + self.rows - 1:,})"
        return text


@dataclass(frozen=True)
class Judgement:
    outcome: Outcome
    drift: Drift | None
    reason: str
    difference: FirstDifference | None = None


def _same(a: Chunk, b: Chunk) -> bool:
    return (a.offset, a.bytes, a.blake3) == (b.offset, b.bytes, b.blake3)


def first_difference(
    recorded: Sequence[Chunk], replayed: Sequence[Chunk]
) -> FirstDifference | None:
    """The first chunk where ``recorded`` and ``replayed`` differ; None when all are equal.

    The range covers that chunk on both sides (the longer one, when one file goes on;
    a chunk only one side has is that side's). Chunks before it are equal, so it starts
    at the same byte and row on both sides.
    """
    for index in range(max(len(recorded), len(replayed))):
        old = recorded[index] if index < len(recorded) else None
        new = replayed[index] if index < len(replayed) else None
        if old is not None and new is not None and _same(old, new):
            continue
        sides = [side for side in (old, new) if side is not None]
        first = sides[0]
        rows = [side.rows for side in sides if side.rows is not None]
        starts = [side.first_row for side in sides if side.first_row is not None]
        return FirstDifference(
            chunk=index,
            offset=first.offset,
            bytes=max(side.bytes for side in sides),
            first_row=starts[0] if starts else None,
            rows=max(rows) if rows else None,
        )
    return None


def attribute(recorded_version: str | None, replayed_version: str | None) -> Drift:
    """``engine`` when both engine versions are known and differ; ``data`` otherwise."""
    if recorded_version and replayed_version and recorded_version != replayed_version:
        return Drift.engine
    return Drift.data


_RAN = frozenset({"ran_clean", "ran_with_drift"})
_NOT_RUN = {
    "error_running": Outcome.error_running,
    "timed_out": Outcome.timed_out,
    "blocked": Outcome.blocked,
}


def _equal(a: DigestSet, b: DigestSet) -> bool:
    return a.sha256 == b.sha256 and a.blake3 == b.blake3


def judge(recorded: ResultFacts, replayed: ResultFacts) -> Judgement:
    """Compare a replay with the recorded call, by the rules of the module docstring."""
    if replayed.verdict not in _RAN or replayed.digest is None:
        # A run that gave no result file to compare is an error too.
        outcome = _NOT_RUN.get(replayed.verdict, Outcome.error_running)
        why = replayed.error or "no result to compare"
        return Judgement(
            outcome, None, f"the replay ended {outcome.value}: {why} (recorded: {recorded.verdict})"
        )
    if recorded.digest is None:
        return Judgement(
            Outcome.ran_with_drift,
            Drift.outcome,
            f"the recorded call ended {recorded.verdict} without a result"
            f"{f' ({recorded.error})' if recorded.error else ''}; the replay gave "
            f"{replayed.rows if replayed.rows is not None else 'a'} rows",
        )
    if _equal(recorded.digest, replayed.digest):
        return Judgement(
            Outcome.ran_clean, None, f"same result digest {replayed.digest.text('sha256')}"
        )
    drift = attribute(recorded.engine_version, replayed.engine_version)
    reason = (
        f"result digest {replayed.digest.text('sha256')} differs from the recorded "
        f"{recorded.digest.text('sha256')}"
    )
    if drift is Drift.engine:
        reason += f"; engine version {recorded.engine_version} -> {replayed.engine_version}"
    difference = None
    if recorded.chunks is None or replayed.chunks is None:
        reason += "; no chunk digests recorded: the first difference is not located"
    else:
        difference = first_difference(recorded.chunks, replayed.chunks)
        if difference is not None:
            reason += f"; first difference in {difference.describe()}"
    return Judgement(Outcome.ran_with_drift, drift, reason, difference)


def ledger_chunks(record: FileRecord) -> list[dict[str, Any]] | None:
    """``call.finished``'s ``chunks`` for a result file; None past :data:`MAX_LEDGER_CHUNKS`."""
    if len(record.chunks) > MAX_LEDGER_CHUNKS:
        return None
    return [chunk.model_dump() for chunk in record.chunks]


class ReplayLine(BaseModel):
    """One line of a replay report (``data/replay.jsonl``): one recorded call, replayed.

    ``recorded_*`` come from the call's ledger entries, ``replay_*`` from the replay
    (null when it did not run to a result); ``diff_*`` locate the first differing
    chunk (byte offset and length; data rows from 0 of a table).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    call_id: str
    started_seq: int
    finished_seq: int | None
    entry_id: str
    caller: str
    outcome: Outcome
    drift: Drift | None
    reason: str
    recorded_verdict: str | None
    recorded_entry_sha256: str | None
    sealed_entry_sha256: str | None
    recorded_sha256: str | None
    recorded_blake3: str | None
    recorded_rows: int | None
    recorded_engine_version: str | None
    replay_sha256: str | None = None
    replay_blake3: str | None = None
    replay_rows: int | None = None
    replay_engine_version: str | None = None
    replay_duration_ms: int | None = None
    diff_chunk: int | None = None
    diff_offset: int | None = None
    diff_bytes: int | None = None
    diff_first_row: int | None = None
    diff_rows: int | None = None

    def row(self) -> tuple[str | int | None, ...]:
        """The values in :data:`REPORT_COLUMNS` order."""
        values = self.model_dump(mode="json")
        return tuple(values[name] for name in REPORT_COLUMNS)


REPORT_COLUMNS: tuple[str, ...] = tuple(ReplayLine.model_fields)
_INTEGER = ColumnType("integer", int)
_STRING = ColumnType("string", str)
REPORT_COLUMN_TYPES: tuple[ColumnType, ...] = tuple(
    _INTEGER if ReplayLine.model_fields[name].annotation in {int, int | None} else _STRING
    for name in REPORT_COLUMNS
)
