"""What must hold after a crash and a restart, checked on the real ledger, index and packet root.

:func:`check_after_restart` reads the state a restarted service left (its start-up recovery
ran) and returns every broken invariant as a line naming the call, packet or file, so a
test can assert the list is empty and show all of them at once:

- ``chain``: the store verifies as ``govex ledger verify`` does (chain, stored leaf hashes,
  the roots of stored checkpoints);
- ``once``: no call has two ``call.finished`` or two ``packet.issued``, and none is finished
  or issued without its ``call.started`` before it;
- ``acknowledged``: every call a caller was told about (its packet id and manifest hash) is
  finished in the ledger, which issued that packet with that hash, and the packet is in
  the packet root and verifies against it;
- ``visible``: every zip in the packet root was issued by the ledger (with the hash it
  holds) and not removed: nothing unissued, so nothing unacknowledged-and-unledgered, shows;
- ``issued``: every packet the ledger issued (and did not remove) is in the packet root, so
  the ledger says nothing false;
- ``staging``: nothing is left under ``.staging`` (no builder is alive after a restart);
- ``index``: every ``call.started`` has an index row, which agrees with the ledger (done
  with the ledger's seqs and packet when finished there, else still open);
- ``closed`` (when asked, after a restart past every deadline): every call is finished
  exactly once, and no index row is open.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from catalog.authority import AuthorityStatus
from ledger.errors import LedgerError
from ledger.store import LedgerStore
from service.call_index import calls_table
from service.packets.build import STAGING
from service.packets.recovery import QUARANTINE
from service.packets.verify import verify_packet_file

if TYPE_CHECKING:
    from pathlib import Path

    from ledger.entry import Entry
    from service.settings import Settings


@dataclass(frozen=True)
class Acknowledged:
    """A call whose caller was told it ended, with its packet."""

    call_id: str
    packet_id: str
    manifest_sha256: str

    @classmethod
    def of(cls, response: dict[str, Any]) -> Acknowledged:
        """From a ``CallResponse`` (``govex call``'s output, ``POST /v1/calls``'s 201 body)."""
        return cls(response["call_id"], response["packet_id"], response["manifest_hash"]["sha256"])


@dataclass
class LedgerView:
    """The ledger's calls and packets, by call id and packet id."""

    size: int = 0
    started: dict[str, Entry] = field(default_factory=dict)
    finished: dict[str, list[Entry]] = field(default_factory=lambda: defaultdict(list))
    issued: dict[str, list[Entry]] = field(default_factory=lambda: defaultdict(list))
    packets: dict[str, Entry] = field(default_factory=dict)  # packet id -> packet.issued
    removed: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)

    @classmethod
    def read(cls, store: LedgerStore) -> LedgerView:
        view = cls()
        for entry in store.list_entries(0, store.size()):
            view.size += 1
            body = entry.body
            call_id = str(body.get("call_id"))
            if entry.kind == "call.started":
                view.started[call_id] = entry
            elif entry.kind in {"call.finished", "packet.issued"}:
                if call_id not in view.started:
                    view.problems.append(f"once: {entry.kind} of {call_id} before call.started")
                (view.finished if entry.kind == "call.finished" else view.issued)[call_id].append(
                    entry
                )
                if entry.kind == "packet.issued":
                    view.packets[str(body["packet_id"])] = entry
            elif entry.kind == "packet.removed":
                view.removed.add(str(body["packet_id"]))
        return view

    def stage(self, call_id: str) -> str:
        """How far the ledger got with ``call_id``: none, started, finished or issued."""
        if self.issued.get(call_id):
            return "issued"
        if self.finished.get(call_id):
            return "finished"
        return "started" if call_id in self.started else "none"


@dataclass(frozen=True)
class Checked:
    """Figures of one check: ledger entries, calls, acknowledged calls and packets checked."""

    entries: int
    calls: int
    acknowledged: int
    packets: int
    problems: tuple[str, ...]
    view: LedgerView

    def quarantined(self, packet_root: Path) -> list[str]:
        folder = packet_root / QUARANTINE
        return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def check_after_restart(
    settings: Settings, acknowledged: list[Acknowledged], *, closed: bool = False
) -> Checked:
    """Every invariant of the module docstring, on ``settings``' ledger and packet root."""
    problems: list[str] = []
    with LedgerStore.open(settings.ledger_url) as store:
        try:
            store.verify()
        except LedgerError as exc:
            problems.append(f"chain: {type(exc).__name__}: {exc}")
        view = LedgerView.read(store)
        rows = _index_rows(store)
    problems += view.problems
    problems += _once(view)
    problems += _acknowledged(settings.packet_root, view, acknowledged)
    visible = sorted(p.name.removesuffix(".zip") for p in settings.packet_root.glob("*.zip"))
    problems += _visible(settings.packet_root, view, visible)
    problems += [
        f"issued: packet {packet_id} is issued in the ledger but not in the packet root"
        for packet_id in sorted(set(view.packets) - view.removed - set(visible))
    ]
    staging = settings.packet_root / STAGING
    left = sorted(p.name for p in staging.iterdir()) if staging.is_dir() else []
    if left:
        problems.append(f"staging: left under .staging after restart: {left}")
    problems += _index(view, rows, closed=closed)
    return Checked(
        entries=view.size,
        calls=len(view.started),
        acknowledged=len(acknowledged),
        packets=len(visible),
        problems=tuple(problems),
        view=view,
    )


def _once(view: LedgerView) -> list[str]:
    return [
        f"once: {kind} of {call_id} appears {len(entries)} times"
        for kind, by_call in (("call.finished", view.finished), ("packet.issued", view.issued))
        for call_id, entries in sorted(by_call.items())
        if len(entries) > 1
    ]


def _acknowledged(root: Path, view: LedgerView, acknowledged: list[Acknowledged]) -> list[str]:
    problems = []
    for ack in acknowledged:
        issued = view.packets.get(ack.packet_id)
        if not view.finished.get(ack.call_id):
            problems.append(f"acknowledged: call {ack.call_id} has no call.finished")
        if issued is None or issued.body["call_id"] != ack.call_id:
            problems.append(f"acknowledged: packet {ack.packet_id} not issued for {ack.call_id}")
            continue
        ledger_hash = issued.body["manifest_hash"]
        if not isinstance(ledger_hash, dict) or ledger_hash["sha256"] != ack.manifest_sha256:
            problems.append(f"acknowledged: packet {ack.packet_id} issued with another hash")
        path = root / f"{ack.packet_id}.zip"
        if not path.is_file():
            problems.append(f"acknowledged: packet {ack.packet_id} is not in the packet root")
        elif not _verifies(path, ack.manifest_sha256):
            problems.append(f"acknowledged: packet {ack.packet_id} does not verify")
    return problems


def _visible(root: Path, view: LedgerView, visible: list[str]) -> list[str]:
    problems = []
    for packet_id in visible:
        issued = view.packets.get(packet_id)
        if issued is None:
            problems.append(f"visible: packet {packet_id} is in the packet root, never issued")
        elif packet_id in view.removed:
            problems.append(f"visible: packet {packet_id} was removed but is in the packet root")
        else:
            ledger_hash = issued.body["manifest_hash"]
            assert isinstance(ledger_hash, dict)
            if not _verifies(root / f"{packet_id}.zip", str(ledger_hash["sha256"])):
                problems.append(f"visible: packet {packet_id} does not verify as issued")
    return problems


def _verifies(path: Path, sha256: str) -> bool:
    report = verify_packet_file(
        path, expect_manifest_hash=sha256, require_authority=AuthorityStatus.provisional
    )
    return report.ok


def _index_rows(store: LedgerStore) -> dict[str, dict[str, Any]]:
    with store.engine.connect() as conn:
        return {row["call_id"]: dict(row) for row in conn.execute(select(calls_table)).mappings()}


def _index(view: LedgerView, rows: dict[str, dict[str, Any]], *, closed: bool) -> list[str]:
    problems = []
    for call_id, started in sorted(view.started.items()):
        row = rows.get(call_id)
        finished = view.finished.get(call_id, [])
        issued = view.issued.get(call_id, [])
        if row is None:
            problems.append(f"index: call {call_id} (call.started {started.seq}) has no row")
            continue
        if row["started_seq"] != started.seq:
            problems.append(f"index: call {call_id} names started_seq {row['started_seq']}")
        if finished:
            want = {
                "state": "completed" if issued else "failed",
                "finished_seq": finished[0].seq,
                "packet_id": issued[0].body["packet_id"] if issued else None,
            }
            got = {name: row[name] for name in want}
            if got != want:
                problems.append(f"index: call {call_id} is {got}, the ledger says {want}")
        elif row["state"] not in {"created", "running"}:
            problems.append(f"index: call {call_id} is {row['state']} but not finished in ledger")
        if closed and len(finished) != 1:
            problems.append(f"closed: call {call_id} finished {len(finished)} times")
    return problems


def acknowledged_in(output: str) -> Acknowledged | None:
    """The call ``govex call`` printed (its JSON response) in ``output``; None when none."""
    start = output.find("{\n")
    if start < 0:
        return None
    response, _ = json.JSONDecoder().raw_decode(output[start:])
    return Acknowledged.of(response) if response.get("packet_id") else None
