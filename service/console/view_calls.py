"""What the call pages show: a filtered list, and one call with its lifecycle and evidence.

Visibility is :mod:`service.reads`'s: one's own calls, anyone's for whoever may read the
ledger (naming another principal without that is a 403). A call's ledger entries are read
through :func:`service.reads.ledger_entries`, so they need ``read_ledger`` and the read is
ledgered (``access.read``, one per page view); without it the page says so and names the
seqs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from service import reads
from service.call_index import CallQuery
from service.console.errors import FormRefused
from service.errors import PolicyDenied
from service.policy import require_ledger_reader
from service.verdicts import Verdict

if TYPE_CHECKING:
    from ledger.entry import Entry as LedgerEntry
    from service.call_index import CallRecord
    from service.identity import Principal
    from service.runtime import Runtime

PAGE = 50
STATES = ("created", "running", "completed", "failed")
VERDICTS = tuple(v.value for v in Verdict)
_SINCE = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z)?$")
_ENTRY_KINDS = ("call.started", "call.finished", "packet.issued", "call.cancelled")


@dataclass(frozen=True)
class CallFilters:
    """The list's filters as the form sent them (empty: not filtered)."""

    entry: str = ""
    principal: str = ""
    verdict: str = ""
    state: str = ""
    since: str = ""
    before: str = ""

    def query(self) -> CallQuery:
        """The index query; :class:`FormRefused` (422) names a filter that cannot match."""
        if self.verdict and self.verdict not in VERDICTS:
            raise FormRefused(f"unknown verdict {self.verdict!r}", status=422, where="verdict")
        if self.state and self.state not in STATES:
            raise FormRefused(f"unknown state {self.state!r}", status=422, where="state")
        if self.since and not _SINCE.fullmatch(self.since):
            raise FormRefused(
                "since is a date (YYYY-MM-DD) or a FORMATS time", status=422, where="since"
            )
        return CallQuery(
            entry=self.entry or None,
            principal=self.principal or None,
            verdict=self.verdict or None,
            state=self.state or None,
            since=self.since or None,
            before=self.before or None,
            limit=PAGE,
        )

    def without_cursor(self) -> dict[str, str]:
        return {k: v for k, v in self.__dict__.items() if v and k != "before"}


@dataclass(frozen=True)
class CallsPage:
    filters: CallFilters
    calls: tuple[CallRecord, ...]
    next_before: str | None
    entries: tuple[str, ...]
    own_only: bool


@dataclass(frozen=True)
class LifecycleStep:
    label: str
    at: str | None
    seq: int | None


@dataclass(frozen=True)
class CallPage:
    record: CallRecord
    lifecycle: tuple[LifecycleStep, ...]
    ledger_readable: bool
    entries: tuple[LedgerEntry, ...] = ()
    contract: dict[str, Any] | None = None
    finished: dict[str, Any] | None = None
    seqs: tuple[int, ...] = field(default=())


def may_read_ledger(runtime: Runtime, principal: Principal) -> bool:
    """Whether policy lets ``principal`` read the ledger (``read_ledger``)."""
    try:
        require_ledger_reader(runtime.policy, principal)
    except PolicyDenied:
        return False
    return True


def calls_page(runtime: Runtime, principal: Principal, filters: CallFilters) -> CallsPage:
    """Calls matching ``filters``, newest first; raises ``PolicyDenied`` as the API would."""
    records = reads.list_calls(runtime, principal, filters.query())
    return CallsPage(
        filters=filters,
        calls=tuple(records),
        next_before=records[-1].call_id if len(records) == PAGE else None,
        entries=tuple(e.id for e in runtime.sealed.catalog.entries),
        own_only=not may_read_ledger(runtime, principal),
    )


def call_page(runtime: Runtime, principal: Principal, call_id: str) -> CallPage:
    """One call for its caller or a ledger reader (``NotFound``, ``PolicyDenied`` otherwise)."""
    record = reads.call_record(runtime, principal, call_id)
    seqs = tuple(
        s for s in (record.started_seq, record.finished_seq, record.packet_seq) if s is not None
    )
    if not may_read_ledger(runtime, principal):
        return CallPage(record, _lifecycle(record, ()), ledger_readable=False, seqs=seqs)
    entries = _call_entries(runtime, principal, record, seqs)
    by_kind = {entry.kind.value: entry for entry in entries}
    started = by_kind.get("call.started")
    finished = by_kind.get("call.finished")
    return CallPage(
        record,
        _lifecycle(record, entries),
        ledger_readable=True,
        entries=entries,
        contract=_contract(started),
        finished=None if finished is None else dict(finished.body),
        seqs=seqs,
    )


def _contract(started: LedgerEntry | None) -> dict[str, Any] | None:
    """Private: the contract a ``call.started`` entry records."""
    contract = None if started is None else started.body.get("contract")
    return contract if isinstance(contract, dict) else None


def _call_entries(
    runtime: Runtime, principal: Principal, record: CallRecord, seqs: tuple[int, ...]
) -> tuple[LedgerEntry, ...]:
    """Private: the call's entries, read in one ledgered read when they lie close together."""
    if not seqs:
        return ()
    first, last = min(seqs), max(seqs)
    if last - first < reads.MAX_LEDGER_PAGE:
        _, page = reads.ledger_entries(runtime, principal, first, last - first + 1)
    else:  # far apart: one read each
        page = [e for seq in seqs for e in reads.ledger_entries(runtime, principal, seq, 1)[1]]
    return tuple(
        e for e in page if e.kind.value in _ENTRY_KINDS and e.body.get("call_id") == record.call_id
    )


def _lifecycle(record: CallRecord, entries: tuple[LedgerEntry, ...]) -> tuple[LifecycleStep, ...]:
    """Private: created, started, finished, packet issued, as far as the call got."""
    at: dict[str, tuple[str | None, int | None]] = {
        entry.kind.value: (entry.ts, entry.seq) for entry in entries
    }
    steps = [
        LifecycleStep(
            "accepted: call.started",
            *at.get("call.started", (record.created_at, record.started_seq)),
        ),
    ]
    if record.cancel_requested_at:
        steps.append(LifecycleStep("cancel requested", record.cancel_requested_at, None))
    if "call.cancelled" in at:
        steps.append(LifecycleStep("cancelled: call.cancelled", *at["call.cancelled"]))
    if record.finished_seq is not None or record.finished_at:
        steps.append(
            LifecycleStep(
                f"finished, {record.verdict or 'no verdict'}: call.finished",
                *at.get("call.finished", (record.finished_at, record.finished_seq)),
            )
        )
    if record.packet_seq is not None:
        steps.append(
            LifecycleStep(
                "packet issued: packet.issued",
                *at.get("packet.issued", (record.finished_at, record.packet_seq)),
            )
        )
    return tuple(steps)
