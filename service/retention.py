"""Packet retention: remove packet files past ``packet_retention_days``; ledger each removal.

A packet's age is the time of its ``packet.issued`` entry in the ledger (not the file's
mtime, which a copy or a restore changes). A sweep walks the ``packet.issued`` entries in
seq order and, for each one older than the retention whose file is still in the packet
root, in this order:

1. appends ``packet.removed`` (``packet_id``, ``manifest_hash``, ``reason: retention``,
   ``issued_seq``) and waits until it is durable;
2. records the removal in ``<packet root>/.removed/<packet_id>.json`` (its seq; what
   ``GET /v1/packets/{id}`` answers ``410`` from), replaced atomically;
3. unlinks ``<packet root>/<packet_id>.zip`` and fsyncs the folder.

Each step is a crash point (``retention.*`` in :mod:`ledger.faults`); the crash sweep
kills a ``govex packets prune`` at each and restarts (tests/hardening/test_crash_retention.py).

The ledger entries stay: ``packet.issued`` and its manifest hash still prove what the
packet held. A crash after step 1 leaves a ledgered removal whose file exists: at start-up
:meth:`RetentionSweeper.reconcile` finishes every ``packet.removed`` it finds (steps 2
and 3). One sweep runs at a time across every process that shares the ledger (a lease of
scope :data:`LEASE_SCOPE`); the server sweeps every ``packet_sweep_interval_s`` seconds
(:class:`PeriodicSweeps`), ``govex packets prune`` on demand.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import select

from catalog.ids import is_opaque_id
from ledger.entry import Entry, entry_from_leaf_input, parse_ts
from ledger.errors import LedgerError
from ledger.faults import crash_point
from ledger.store import ledger_entries
from service.errors import LeaseUnavailable
from service.ids import new_ulid
from service.packets.build import fsync_dir

if TYPE_CHECKING:
    from pathlib import Path

    from service.leases import Lease
    from service.runtime import Runtime

_log = structlog.get_logger("govex.retention")
REMOVED_DIR = ".removed"
LEASE_SCOPE = "govex:packet-retention"  # ':' is in no entry id: never a call's lease
LEASE_TTL = timedelta(minutes=10)  # renewed after every batch
_BATCH = 500
_STOP_TIMEOUT_S = 30.0
_TEMPORARY = ".tmp"  # a record being written: .<packet_id>.<pid>.tmp, then renamed


def _remove_orphan_records(folder: Path) -> None:
    """Private: remove ``.<id>.<pid>.tmp`` records whose writing process no longer exists.

    One host shares a packet root (service.packets.staging_lock), so a pid names a process
    here. A pid reused since only keeps its file until that process ends too.
    """
    if not folder.is_dir():
        return
    for temporary in folder.glob(f".*{_TEMPORARY}"):
        pid = temporary.name.removesuffix(_TEMPORARY).rpartition(".")[2]
        if pid.isdigit() and not _alive(int(pid)):
            temporary.unlink(missing_ok=True)
            _log.warning("retention.orphan_record_removed", file=temporary.name)


def _alive(pid: int) -> bool:
    """Private: whether process ``pid`` exists (signal 0 checks without sending anything)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return True


@dataclass(frozen=True)
class Removal:
    """A packet a sweep removed (or, in a dry run, would remove)."""

    packet_id: str
    issued_seq: int
    issued_at: str
    removed_seq: int | None  # its packet.removed entry; None in a dry run


def removed_seq(packet_root: Path, packet_id: str) -> int | None:
    """The ``packet.removed`` seq recorded for ``packet_id``; None when it was not removed."""
    if not is_opaque_id(packet_id):
        return None
    try:
        record = json.loads((packet_root / REMOVED_DIR / f"{packet_id}.json").read_bytes())
    except (OSError, ValueError):
        return None
    seq = record.get("removed_seq") if isinstance(record, dict) else None
    return seq if isinstance(seq, int) else None


class RetentionSweeper:
    """Sweeps of one runtime's packet root; remembers how far it walked the ledger."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._root = runtime.settings.packet_root
        self._issued_after = -1  # every packet.issued up to this seq is decided
        self._removed_after = -1  # every packet.removed up to this seq is carried out
        self._lock = threading.Lock()

    @property
    def retention(self) -> timedelta | None:
        days = self._runtime.settings.packet_retention_days
        return timedelta(days=days) if days > 0 else None

    def reconcile(self) -> list[str]:
        """Carry out every ledgered removal whose file remains; the ids whose file it removed.

        Also removes the temporary records of writers that died (``.<id>.<pid>.tmp`` whose
        process is gone): a record is written to one, then renamed into place.
        """
        finished = []
        _remove_orphan_records(self._root / REMOVED_DIR)
        with self._lock:
            for entry in self._entries("packet.removed", self._removed_after):
                packet_id = str(entry.body["packet_id"])
                if is_opaque_id(packet_id):
                    issued_seq = entry.body.get("issued_seq")
                    self._record(
                        packet_id, entry.seq, issued_seq if isinstance(issued_seq, int) else -1
                    )
                    if self._unlink(packet_id):
                        finished.append(packet_id)
                self._removed_after = entry.seq
        if finished:
            _log.warning("retention.reconciled", packets=finished)
        return finished

    def sweep(self, *, dry_run: bool = False) -> list[Removal]:
        """Remove the packets older than the retention (none without one); return them.

        Raises :class:`LeaseUnavailable` while another sweep runs, and a ledger error when
        a removal cannot be ledgered (that packet's file is then kept).
        """
        retention = self.retention
        if retention is None:
            return []
        runtime = self._runtime
        cutoff = runtime.clock() - retention
        holder = new_ulid(runtime.clock())
        lease = runtime.leases.acquire(
            LEASE_SCOPE, holder, max_concurrent=1, ttl=LEASE_TTL, now=runtime.clock()
        )
        removals: list[Removal] = []
        try:
            with self._lock:
                after = self._issued_after
                while True:
                    batch = self._batch("packet.issued", after)
                    for entry in batch:
                        if parse_ts(entry.ts) > cutoff:  # later entries are newer: done
                            return removals
                        removal = self._consider(entry, dry_run=dry_run)
                        if removal is not None:
                            removals.append(removal)
                        after = entry.seq
                        if not dry_run:
                            self._issued_after = after
                    if len(batch) < _BATCH:
                        return removals
                    lease = self._renew(lease)
        finally:
            runtime.leases.release(lease)
            if removals and not dry_run:
                _log.info("retention.swept", removed=len(removals))

    def _consider(self, issued: Entry, *, dry_run: bool) -> Removal | None:
        """Private: remove one expired packet when its file is still there."""
        packet_id = str(issued.body["packet_id"])
        if not is_opaque_id(packet_id) or not (self._root / f"{packet_id}.zip").is_file():
            return None  # never published, or gone already
        if removed_seq(self._root, packet_id) is not None:
            if not dry_run:
                self._unlink(packet_id)  # a removal already ledgered: finish it
            return None
        if dry_run:
            return Removal(packet_id, issued.seq, issued.ts, None)
        removed = self._runtime.ledger.append(
            "packet.removed",
            {
                "packet_id": packet_id,
                "manifest_hash": issued.body["manifest_hash"],
                "reason": "retention",
                "issued_seq": issued.seq,
            },
            self._runtime.clock(),
        )
        crash_point("retention.ledgered")
        self._record(packet_id, removed.seq, issued.seq)
        crash_point("retention.recorded")
        self._unlink(packet_id)
        crash_point("retention.unlinked")
        return Removal(packet_id, issued.seq, issued.ts, removed.seq)

    def _record(self, packet_id: str, seq: int, issued_seq: int) -> None:
        """Private: write ``.removed/<packet_id>.json`` atomically (idempotent)."""
        folder = self._root / REMOVED_DIR
        folder.mkdir(exist_ok=True)
        target = folder / f"{packet_id}.json"
        if removed_seq(self._root, packet_id) == seq:
            return
        text = json.dumps({"packet_id": packet_id, "removed_seq": seq, "issued_seq": issued_seq})
        temporary = folder / f".{packet_id}.{os.getpid()}{_TEMPORARY}"
        with temporary.open("w", encoding="utf-8") as out:
            out.write(text + "\n")
            out.flush()
            os.fsync(out.fileno())
        crash_point("retention.record.written")
        temporary.replace(target)
        fsync_dir(folder)

    def _unlink(self, packet_id: str) -> bool:
        """Private: remove the packet's zip; whether there was one."""
        path = self._root / f"{packet_id}.zip"
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        fsync_dir(self._root)
        return True

    def _renew(self, lease: Lease) -> Lease:
        renewed = self._runtime.leases.renew(lease, ttl=LEASE_TTL, now=self._runtime.clock())
        if renewed is None:  # reclaimed by another sweeper: stop rather than sweep twice
            raise LeaseUnavailable(LEASE_SCOPE, 1, int(LEASE_TTL.total_seconds()))
        return renewed

    def _entries(self, kind: str, after: int) -> list[Entry]:
        """Private: every entry of ``kind`` after seq ``after``, in seq order."""
        found: list[Entry] = []
        while batch := self._batch(kind, after):
            found += batch
            after = batch[-1].seq
        return found

    def _batch(self, kind: str, after: int) -> list[Entry]:
        """Private: up to one batch of ``kind`` entries after seq ``after``, in seq order."""
        table = ledger_entries
        query = (
            select(table.c.leaf_input)
            .where(table.c.kind == kind, table.c.seq > after)
            .order_by(table.c.seq)
            .limit(_BATCH)
        )
        with self._runtime.ledger.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [entry_from_leaf_input(bytes(row.leaf_input)) for row in rows]


class PeriodicSweeps:
    """The server's sweeper thread: reconcile once at start, then sweep every ``interval_s``.

    Without a retention it only reconciles. A failed sweep is logged and retried at the
    next tick; it never stops the service.
    """

    def __init__(self, sweeper: RetentionSweeper, interval_s: float) -> None:
        self._sweeper = sweeper
        self._interval_s = interval_s
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name="govex-retention", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stopping.set()
        thread.join(_STOP_TIMEOUT_S)

    def run_once(self) -> list[Removal]:
        """One sweep now; an empty list (after logging why) when it failed or was busy."""
        try:
            return self._sweeper.sweep()
        except LeaseUnavailable:
            _log.info("retention.busy", detail="another process is sweeping")
        except LedgerError as exc:
            _log.warning("retention.failed", error=type(exc).__name__, detail=exc.message)
        except Exception as exc:  # noqa: BLE001 - logged with its traceback; the next tick retries
            _log.error("retention.failed", error=type(exc).__name__, exc_info=exc)
        return []

    def _loop(self) -> None:
        try:
            self._sweeper.reconcile()
        except Exception as exc:  # noqa: BLE001 - logged; the sweeps still run
            _log.error("retention.reconcile_failed", error=type(exc).__name__, exc_info=exc)
        if self._sweeper.retention is None:
            return
        self.run_once()
        while not self._stopping.wait(self._interval_s):
            self.run_once()
