"""Named crash points: where the crash sweep kills the process; inert in a normal run.

Each step of the append, packet, retention and checkpoint protocols that leaves the disk in a new
state calls :func:`crash_point` with its name. In a normal process that call only tests a
module flag. The crash sweep (``tests/hardening/test_crash_sweep.py``) starts processes
with ``GOVEX_TEST_CRASH_AT=<point>[:<nth>]``: the ``nth`` time (default the first) that
process reaches ``<point>``, it sends itself ``SIGKILL``, so no ``finally`` block, ``atexit``
hook or buffered write runs, exactly as when the kernel or an operator kills it. After a
restart the sweep checks what the ledger, the call index and the packet root say.
``GOVEX_TEST_CRASH_TRACE=<file>`` appends the name of every point reached to ``<file>``
instead (a test proves that a normal call reaches every point, so the sweep misses none).

The variables are read once, at import: a process armed at start stays armed, an unarmed
one never looks again. Every point is declared in :data:`CRASH_POINTS`, the one list the
sweep walks; arming an undeclared name is refused (:class:`ValueError`), so a typo cannot
make a sweep case that never fires. This module lives in ``ledger`` because the ledger
store has points of its own and must not import ``service``.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Mapping
from types import MappingProxyType

CRASH_AT_ENV = "GOVEX_TEST_CRASH_AT"
TRACE_ENV = "GOVEX_TEST_CRASH_TRACE"

CRASH_POINTS: Mapping[str, str] = MappingProxyType(
    {
        # The append transaction (ledger.appender), for every entry a process appends.
        "ledger.append.begin": "append: a batch to commit, nothing sent to the database yet",
        "ledger.append.insert": "append: rows inserted, transaction not committed",
        "ledger.append.commit": "append: committed (durable), caller not yet told",
        # The call path (service.calls).
        "call.accepted": "call: call.started durable and indexed as created; nothing ran",
        # Packet build and publish (service.packets.build).
        "packet.bag.written": "packet: payload written under .staging/<id>/, no zip yet",
        "packet.zip.entry": "packet: one more zip entry written (the zip is partial)",
        "packet.zip.written": "packet: staged zip written, not fsynced",
        "packet.zip.synced": "packet: staged zip fsynced, its folder not yet",
        "packet.staged": "packet: staged zip and folder durable, bag removed; not issued",
        "call.indexed": "call: call.finished, packet.issued and the index durable; not renamed",
        "packet.renamed": "packet: renamed into the packet root (never fsynced), lock held",
        "packet.published": "packet: published, its staging lock released",
        "call.respond": "call: everything durable and published; the caller not yet answered",
        # A retention sweep's removal of one packet (service.retention), after its
        # packet.removed commits (the ledger.append.* points above).
        "retention.ledgered": "retention: packet.removed durable; no record, zip still there",
        "retention.record.written": "retention: record written to its temporary file, not renamed",
        "retention.recorded": "retention: .removed/<id>.json durable; zip still there",
        "retention.unlinked": "retention: zip unlinked and its folder fsynced",
        # Checkpoints (ledger.store.add_checkpoint).
        "checkpoint.insert": "checkpoint: signed row inserted, not committed",
        "checkpoint.commit": "checkpoint: committed, caller not yet told",
    }
)
"""Every crash point, in protocol order, with the state the disk is in when it fires."""


class _Armed:
    """Private: the point to crash at (or trace), and how often it was reached."""

    def __init__(self, point: str | None, nth: int, trace: str | None) -> None:
        self.point = point
        self.nth = nth
        self.trace = trace
        self.reached = 0
        self.lock = threading.Lock()  # points are reached from several threads


_armed: _Armed | None = None


def parse_crash_at(spec: str) -> tuple[str, int]:
    """``<point>[:<nth>]`` as ``(point, nth)``; :class:`ValueError` for an undeclared point."""
    point, sep, count = spec.partition(":")
    if point not in CRASH_POINTS:
        raise ValueError(f"{CRASH_AT_ENV}: {point!r} is not a declared crash point")
    nth = int(count) if sep else 1
    if nth < 1:
        raise ValueError(f"{CRASH_AT_ENV}: the count in {spec!r} must be at least 1")
    return point, nth


def arm(crash_at: str | None, trace: str | None = None) -> None:
    """Arm this process: crash at ``crash_at`` (``<point>[:<nth>]``), trace to ``trace``.

    Called once at import with the environment's values; the sweep's forked children call
    it again after the fork (their "process start"). ``None`` for both disarms.
    """
    global _armed  # noqa: PLW0603 - the one process-wide switch, set at start
    if not crash_at and not trace:
        _armed = None
        return
    point, nth = parse_crash_at(crash_at) if crash_at else (None, 1)
    _armed = _Armed(point, nth, trace or None)


def crash_point(name: str) -> None:
    """Reached step ``name`` of a protocol: die here when armed for it; otherwise nothing."""
    if _armed is not None:
        _reach(_armed, name)


def _reach(armed: _Armed, name: str) -> None:
    """Private: trace ``name``, and send this process SIGKILL when it is the armed reach."""
    if name not in CRASH_POINTS:
        raise ValueError(f"crash point {name!r} is not declared in ledger.faults.CRASH_POINTS")
    if armed.trace is not None:
        with open(armed.trace, "a", encoding="utf-8") as out:  # noqa: PTH123 - one short line
            out.write(f"{name}\n")
    if name != armed.point:
        return
    with armed.lock:
        armed.reached += 1
        now = armed.reached == armed.nth
    if now:
        os.kill(os.getpid(), signal.SIGKILL)


arm(os.environ.get(CRASH_AT_ENV), os.environ.get(TRACE_ENV))
