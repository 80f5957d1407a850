"""Which recorded calls a replay covers: the ``call.started`` entries in range, and how each ended.

A recorded call is a ``call.started`` entry of mode ``run`` whose seq is in
``[from_seq, to_seq]`` (and, when given, whose contract names the entry id and the
caller's principal id). Its ``call.finished`` may come after ``to_seq``: the scan
goes on to the end of the ledger as it stands. A call with none is still in the
plan (``finished_seq`` None): it is reported ``interrupted``, never skipped.

Only the ledger is read (never the call index, which is rebuildable): one pass from
``from_seq``, parsing only the ``call.started`` and ``call.finished`` entries. The
plan keeps ids and seqs; the contracts are read again one call at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ledger.entry import Kind, entry_from_leaf_input

if TYPE_CHECKING:
    from ledger.store import LedgerStore

# The top-level kind is the last `,"kind":"` of an entry's JCS bytes (``kind`` follows
# ``body``); the parse that follows confirms it.
_KIND_AT = b',"kind":"'
_STARTED = _KIND_AT + Kind.call_started.value.encode() + b'"'
_FINISHED = _KIND_AT + Kind.call_finished.value.encode() + b'"'


@dataclass(frozen=True)
class ReplayFilters:
    """What to replay: ``call.started`` seqs from ``from_seq`` to ``to_seq`` (inclusive).

    ``to_seq`` None: up to the last entry when the replay starts. ``entry`` and
    ``principal`` keep only the calls of that catalog entry id and that caller.
    """

    from_seq: int = 0
    to_seq: int | None = None
    entry: str | None = None
    principal: str | None = None

    def record(self) -> dict[str, Any]:
        """The filters as ``replay.started`` records them."""
        return {
            "from_seq": self.from_seq,
            "to_seq": self.to_seq,
            "entry": self.entry,
            "principal": self.principal,
        }


@dataclass(frozen=True)
class RecordedCall:
    """A call as the ledger recorded it: where it started, and where it finished (if it did)."""

    call_id: str
    started_seq: int
    entry_id: str
    caller: str
    finished_seq: int | None


def _kind_tail(data: bytes) -> bytes:
    """Private: the bytes from the entry's top-level ``,"kind":"``."""
    return data[data.rfind(_KIND_AT) :]


def _wanted(contract: Any, filters: ReplayFilters) -> tuple[str, str] | None:  # noqa: ANN401 - JSON
    """Private: (entry id, caller id) of a recorded run that the filters keep, else None."""
    if not isinstance(contract, dict) or contract.get("mode") != "run":
        return None
    entry = contract.get("entry")
    identity = contract.get("identity")
    entry_id = entry.get("id") if isinstance(entry, dict) else None
    caller = identity.get("id") if isinstance(identity, dict) else None
    if not isinstance(entry_id, str) or not isinstance(caller, str):
        return None
    if filters.entry is not None and entry_id != filters.entry:
        return None
    if filters.principal is not None and caller != filters.principal:
        return None
    return entry_id, caller


def recorded_calls(store: LedgerStore, filters: ReplayFilters, to_seq: int) -> list[RecordedCall]:
    """The recorded calls ``filters`` keep whose ``call.started`` seq is at most ``to_seq``.

    In ``call.started`` order. Raises the store's errors (``CorruptEntry`` for stored
    bytes that do not parse).
    """
    started: dict[str, tuple[int, str, str]] = {}
    finished: dict[str, int] = {}
    for data in store.iter_leaf_inputs(filters.from_seq):
        tail = _kind_tail(data)
        if tail.startswith(_STARTED):
            entry = entry_from_leaf_input(data)
            if entry.seq > to_seq or entry.kind is not Kind.call_started:
                continue
            kept = _wanted(entry.body.get("contract"), filters)
            call_id = entry.body.get("call_id")
            if kept is not None and isinstance(call_id, str) and call_id not in started:
                started[call_id] = (entry.seq, *kept)
        elif tail.startswith(_FINISHED):
            entry = entry_from_leaf_input(data)
            call_id = entry.body.get("call_id")
            if isinstance(call_id, str) and call_id in started and call_id not in finished:
                finished[call_id] = entry.seq
    return [
        RecordedCall(call_id, seq, entry_id, caller, finished.get(call_id))
        for call_id, (seq, entry_id, caller) in started.items()
    ]
