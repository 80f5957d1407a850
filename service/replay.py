"""Replay recorded calls and compare their results: ``govex ledger replay``. No FastAPI here.

:func:`replay`, for an authenticated principal:

1. policy ``read_ledger`` (a replay reads the recorded contracts): a deny raises
   :class:`~service.errors.PolicyDenied` and nothing is ledgered;
2. ``replay.started`` (durable before anything runs): who, the filters, the seq range
   (``to_seq`` defaults to the last entry as the replay starts), the catalog digest;
3. the plan (:mod:`service.replay_plan`), then each recorded call replayed in
   ``call.started`` order (:mod:`service.replay_run`: its own ``replay`` policy decision
   per call, scratch runs that are never published);
4. the report packet staged (:mod:`service.replay_report`);
5. ``replay.finished`` (counts per outcome, the report's digest, the packet id and
   manifest hash), then ``packet.issued`` for the report packet, then the call index
   names it (:func:`~service.replay_report.index_report`), then the packet is published:
   visible only once both entries are durable, and served like a call's packet.

A failure after ``replay.started`` still appends ``replay.finished`` (with ``error`` and
no report) when the ledger takes it, then goes up; the staged report is discarded.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from service.ids import new_ulid
from service.packets.build import PacketBuilder
from service.policy import require_ledger_reader
from service.replay_compare import Outcome, ReplayLine
from service.replay_plan import ReplayFilters, recorded_calls
from service.replay_report import build_report, index_report
from service.replay_run import replay_call

if TYPE_CHECKING:
    from catalog.digest import DigestSet
    from ledger.entry import Entry
    from service.identity import Principal
    from service.runtime import Runtime

__all__ = ["ReplayFilters", "ReplayResult", "replay"]

_log = structlog.get_logger("govex.replay")


@dataclass(frozen=True)
class ReplayResult:
    """What a replay found and where its evidence is (ledger seqs, the report packet)."""

    replay_id: str
    started_seq: int
    finished_seq: int
    packet_seq: int
    packet_id: str
    manifest_hash: DigestSet
    report_digest: DigestSet
    packet_path: Path
    from_seq: int
    to_seq: int
    lines: tuple[ReplayLine, ...]

    @property
    def counts(self) -> dict[str, int]:
        """Calls per outcome, every outcome named (zeros included)."""
        return _counts(self.lines)

    @property
    def clean(self) -> bool:
        """Whether every replayed call ran clean (an empty replay is clean)."""
        return all(line.outcome is Outcome.ran_clean for line in self.lines)


def _counts(lines: tuple[ReplayLine, ...]) -> dict[str, int]:
    counts = dict.fromkeys((outcome.value for outcome in Outcome), 0)
    for line in lines:
        counts[line.outcome.value] += 1
    return counts


def replay(
    runtime: Runtime,
    principal: Principal,
    filters: ReplayFilters,
    *,
    request_id: str | None = None,
) -> ReplayResult:
    """Replay the recorded calls ``filters`` select, as ``principal``; see the module docstring.

    Raises :class:`PolicyDenied` (no ``read_ledger``), ``ValueError`` for a range whose
    start is past its end, and the ledger's and packet builder's errors.
    """
    require_ledger_reader(runtime.policy, principal)
    last = runtime.ledger.size() - 1
    to_seq = last if filters.to_seq is None else min(filters.to_seq, last)
    if filters.from_seq < 0 or (filters.to_seq is not None and filters.to_seq < filters.from_seq):
        raise ValueError(f"--from {filters.from_seq} is past --to {filters.to_seq}")
    replay_id = new_ulid(runtime.clock())
    scope: dict[str, Any] = {
        "filters": filters.record(),
        "range": {"from_seq": filters.from_seq, "to_seq": to_seq},
    }
    started = runtime.ledger.append(
        "replay.started",
        {
            "replay_id": replay_id,
            "by": principal.model_dump(mode="json"),
            **scope,
            "catalog_digest": runtime.sealed.digest.model_dump(),
            "authority_status": runtime.sealed.authority.value,
            "request_id": request_id,
        },
        runtime.clock(),
    )
    builder: PacketBuilder | None = None
    finished: Entry | None = None
    lines: tuple[ReplayLine, ...] = ()
    try:
        planned = recorded_calls(runtime.ledger, filters, to_seq)
        lines = tuple(replay_call(runtime, principal, call) for call in planned)
        builder = PacketBuilder(runtime.settings.packet_root, new_ulid(runtime.clock()))
        staged, written = build_report(
            runtime,
            builder,
            replay_id=replay_id,
            principal=principal,
            started_seq=started.seq,
            scope=scope,
            lines=lines,
            counts=_counts(lines),
        )
        finished = runtime.ledger.append(
            "replay.finished",
            {
                "replay_id": replay_id,
                "started_seq": started.seq,
                "calls": len(lines),
                "counts": _counts(lines),
                "report_digest": written.record.digest.model_dump(),
                "packet_id": staged.packet_id,
                "manifest_hash": staged.manifest_hash.model_dump(),
            },
            runtime.clock(),
        )
        issued = runtime.ledger.append(
            "packet.issued",
            {
                "call_id": replay_id,
                "packet_id": staged.packet_id,
                "manifest_hash": staged.manifest_hash.model_dump(),
            },
            runtime.clock(),
        )
        index_report(
            runtime,
            replay_id=replay_id,
            principal=principal,
            entries=(started, finished, issued),
            staged=staged,
            written=written,
            clean=all(line.outcome is Outcome.ran_clean for line in lines),
        )
        path = builder.publish(staged)
    except BaseException as exc:
        if builder is not None:
            with contextlib.suppress(Exception):
                builder.discard()
        if finished is None:  # a replay.finished already appended is not repeated
            _abandon(runtime, replay_id, started.seq, lines, exc)
        raise
    return ReplayResult(
        replay_id=replay_id,
        started_seq=started.seq,
        finished_seq=finished.seq,
        packet_seq=issued.seq,
        packet_id=staged.packet_id,
        manifest_hash=staged.manifest_hash,
        report_digest=written.record.digest,
        packet_path=path,
        from_seq=filters.from_seq,
        to_seq=to_seq,
        lines=lines,
    )


def _abandon(
    runtime: Runtime,
    replay_id: str,
    started_seq: int,
    lines: tuple[ReplayLine, ...],
    exc: BaseException,
) -> None:
    """Private: ``replay.finished`` with ``error`` and no report, if the ledger takes it.

    The caller's error is the one that goes up.
    """
    try:
        runtime.ledger.append(
            "replay.finished",
            {
                "replay_id": replay_id,
                "started_seq": started_seq,
                "calls": len(lines),
                "counts": _counts(lines),
                "report_digest": None,
                "error": f"{type(exc).__name__}: {getattr(exc, 'message', '') or exc}"[:500],
            },
            runtime.clock(),
        )
    except Exception as failure:  # noqa: BLE001 - the caller's error is the one that goes up
        _log.warning("replay.unfinished", replay_id=replay_id, error=type(failure).__name__)
