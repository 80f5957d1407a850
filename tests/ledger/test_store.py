from __future__ import annotations

import itertools
import multiprocessing
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

import ledger.store as store_module
from ledger.entry import ZERO_PREV, Kind, leaf_hash
from ledger.errors import (
    AppendRefused,
    CorruptEntry,
    EntryNotFound,
    InvalidTimestamp,
    LedgerVerifyError,
)
from ledger.store import APPEND_ONLY_MESSAGE, LedgerStore, ledger_entries

WORKERS, PER_WORKER = 4, 50
REPO_ROOT = Path(__file__).resolve().parents[2]


def _append_many(url: str, worker: int, count: int) -> None:
    """Child process: open its own store on the shared file and append ``count`` entries."""
    with LedgerStore.open(url) as store:
        for i in range(count):
            store.append(
                "call.denied", {"call_id": f"w{worker}-{i}", "reason": "load"}, datetime.now(UTC)
            )


def _denied(store: LedgerStore, n: int, moment: datetime) -> None:
    for i in range(n):
        store.append("call.denied", {"call_id": f"c{i}", "reason": "policy deny"}, moment)


def _raw(store: LedgerStore) -> sqlite3.Connection:
    """A plain sqlite3 connection to the store's file, outside SQLAlchemy and its hooks."""
    database = store.engine.url.database
    assert database is not None
    return sqlite3.connect(database, isolation_level=None)


def test_append_builds_the_chain(
    store: LedgerStore, moment: datetime, sample_bodies: dict[str, Any]
) -> None:
    entries = [store.append(kind, body, moment) for kind, body in sample_bodies.items()]
    assert [e.seq for e in entries] == list(range(5))
    assert entries[0].prev == ZERO_PREV
    for before, after in itertools.pairwise(entries):
        assert (
            after.prev
            == leaf_hash(b"".join(store.iter_leaf_inputs(before.seq, before.seq + 1))).hex()
        )
    assert [e.kind for e in entries] == list(Kind)
    assert entries[0].ts == "2026-11-23T09:15:02.123456Z"
    assert store.size() == 5
    assert store.get(3) == entries[3]
    assert store.list_entries(1, 2) == entries[1:3]
    assert store.list_entries(4, 10) == entries[4:]
    assert store.verify().size == 5


def test_append_returns_what_get_reads(store: LedgerStore, moment: datetime) -> None:
    entry = store.append("call.denied", {"call_id": "c1", "reason": "x", "n": 2.0}, moment)
    assert entry.body["n"] == 2  # JCS writes 2.0 as 2; the entry returned is the stored one
    assert store.get(0) == entry


def test_stored_columns_hold_the_exact_bytes(store: LedgerStore, moment: datetime) -> None:
    entry = store.append("call.denied", {"call_id": "c1", "reason": "x"}, moment)
    with _raw(store) as raw:
        seq, kind, ts, data, stored_hash = raw.execute(
            "SELECT seq, kind, ts, leaf_input, leaf_hash FROM ledger_entries"
        ).fetchone()
    assert (seq, kind, ts) == (0, "call.denied", entry.ts)
    assert data == next(store.iter_leaf_inputs())
    assert stored_hash == leaf_hash(data)


def test_unknown_kind_is_refused_and_nothing_written(store: LedgerStore, moment: datetime) -> None:
    with pytest.raises(AppendRefused) as caught:
        store.append("call.exploded", {"call_id": "c1"}, moment)
    assert caught.value.kind == "call.exploded"
    assert store.size() == 0


@pytest.mark.parametrize(
    ("kind", "body", "named"),
    [
        ("call.denied", {"call_id": "c1"}, "reason"),
        ("call.finished", {"call_id": "c1", "verdict": "fine"}, "verdict"),
        (
            "packet.issued",
            {"call_id": "c1", "packet_id": "p1", "manifest_hash": {"sha256": "x"}},
            "manifest_hash",
        ),
        (
            "call.denied",
            {"call_id": "c1", "reason": "x", "when": datetime(2026, 1, 1, tzinfo=UTC)},
            "when",
        ),
        ("call.denied", {"call_id": "c1", "reason": "x", "f": float("nan")}, "nan"),
    ],
)
def test_invalid_bodies_are_refused_naming_the_field(
    store: LedgerStore, moment: datetime, kind: str, body: dict[str, Any], named: str
) -> None:
    with pytest.raises(AppendRefused) as caught:
        store.append(kind, body, moment)
    assert caught.value.kind == kind
    assert named in str(caught.value)
    assert store.size() == 0


def test_naive_timestamp_is_refused(store: LedgerStore) -> None:
    with pytest.raises(InvalidTimestamp):
        store.append("call.denied", {"call_id": "c1", "reason": "x"}, datetime(2026, 1, 1))  # noqa: DTZ001
    assert store.size() == 0


def test_get_beyond_the_head_is_not_found(store: LedgerStore, moment: datetime) -> None:
    _denied(store, 1, moment)
    with pytest.raises(EntryNotFound) as caught:
        store.get(1)
    assert caught.value.seq == 1


def test_update_and_delete_through_sqlalchemy_are_refused(
    store: LedgerStore, moment: datetime
) -> None:
    _denied(store, 2, moment)
    statements = [
        sa.update(ledger_entries).where(ledger_entries.c.seq == 1).values(kind="call.started"),
        sa.delete(ledger_entries).where(ledger_entries.c.seq == 1),
        sa.delete(ledger_entries),
    ]
    for statement in statements:
        with pytest.raises(DBAPIError, match=APPEND_ONLY_MESSAGE), store.engine.begin() as conn:
            conn.execute(statement)
    store.verify()
    assert store.size() == 2


def test_open_is_idempotent_and_keeps_entries(tmp_path: Path, moment: datetime) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with LedgerStore.open(url) as first:
        _denied(first, 3, moment)
        root = first.verify().root
    with LedgerStore.open(url) as second:
        assert second.verify().root == root
        with second.engine.connect() as conn:
            triggers = conn.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' ORDER BY name"
            ).scalars()
            assert list(triggers) == ["ledger_entries_no_delete", "ledger_entries_no_update"]


def test_sqlite_connections_use_wal_and_full_sync(store: LedgerStore) -> None:
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_an_appended_entry_is_committed_when_append_returns(
    store: LedgerStore, moment: datetime
) -> None:
    _denied(store, 1, moment)
    with _raw(store) as raw:
        assert raw.execute("SELECT count(*) FROM ledger_entries").fetchone() == (1,)


def test_reads_do_not_wait_for_a_writer(store: LedgerStore, moment: datetime) -> None:
    _denied(store, 2, moment)
    with _raw(store) as raw:
        raw.execute("BEGIN IMMEDIATE")  # another writer holds the write lock
        try:
            assert store.size() == 2
            assert len(list(store.iter_leaf_inputs())) == 2
        finally:
            raw.execute("ROLLBACK")


def test_streaming_reads_cross_batch_boundaries(
    store: LedgerStore, moment: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    _denied(store, 10, moment)
    everything = list(store.iter_leaf_inputs())
    monkeypatch.setattr(store_module, "_BATCH", 3)
    assert list(store.iter_leaf_inputs()) == everything
    assert list(store.iter_leaf_inputs(2, 9)) == everything[2:9]
    assert [e.seq for e in store.list_entries(4, 5)] == [4, 5, 6, 7, 8]
    assert store.verify().size == 10


def test_row_edited_behind_the_triggers_back_is_named_at_its_seq(
    store: LedgerStore, moment: datetime
) -> None:
    _denied(store, 6, moment)
    forged = next(store.iter_leaf_inputs(3, 4)).replace(b"policy deny", b"policy allow")
    with _raw(store) as raw:
        raw.execute("DROP TRIGGER ledger_entries_no_update")
        raw.execute("UPDATE ledger_entries SET leaf_input = ? WHERE seq = 3", (forged,))
        raw.execute(store_module._sqlite_triggers()[0])
    with pytest.raises(LedgerVerifyError) as caught:
        store.verify()
    assert (caught.value.seq, caught.value.check) == (3, "leaf_hash")
    assert store.get(3).body["reason"] == "policy allow"  # the store reads it; verify refuses it


def test_row_and_its_hash_edited_is_named_at_its_seq_by_the_chain(
    store: LedgerStore, moment: datetime
) -> None:
    _denied(store, 6, moment)
    forged = next(store.iter_leaf_inputs(3, 4)).replace(b"policy deny", b"policy allow")
    with _raw(store) as raw:
        raw.execute("DROP TRIGGER ledger_entries_no_update")
        raw.execute(
            "UPDATE ledger_entries SET leaf_input = ?, leaf_hash = ? WHERE seq = 3",
            (forged, leaf_hash(forged)),
        )
        raw.execute(store_module._sqlite_triggers()[0])
    with pytest.raises(LedgerVerifyError) as caught:
        store.verify()
    assert (caught.value.seq, caught.value.check) == (3, "prev")


def test_deleted_row_is_a_seq_gap(store: LedgerStore, moment: datetime) -> None:
    _denied(store, 5, moment)
    with _raw(store) as raw:
        raw.execute("DROP TRIGGER ledger_entries_no_delete")
        raw.execute("DELETE FROM ledger_entries WHERE seq = 2")
        raw.execute(store_module._sqlite_triggers()[1])
    with pytest.raises(LedgerVerifyError) as caught:
        store.verify()
    assert (caught.value.seq, caught.value.check) == (2, "seq")


def test_unparseable_row_is_corrupt_on_get(store: LedgerStore, moment: datetime) -> None:
    _denied(store, 2, moment)
    with _raw(store) as raw:
        raw.execute("DROP TRIGGER ledger_entries_no_update")
        raw.execute("UPDATE ledger_entries SET leaf_input = x'7b' WHERE seq = 1")
        raw.execute(store_module._sqlite_triggers()[0])
    with pytest.raises(CorruptEntry) as caught:
        store.get(1)
    assert caught.value.seq == 1
    with pytest.raises(LedgerVerifyError) as verify_caught:
        store.verify()
    assert (verify_caught.value.seq, verify_caught.value.check) == (1, "leaf_hash")


def test_concurrent_threads_give_one_gap_free_chain(store: LedgerStore) -> None:
    threads, per_thread = 8, 25
    failures: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for i in range(per_thread):
                store.append(
                    "call.denied",
                    {"call_id": f"t{worker}-{i}", "reason": "load"},
                    datetime.now(UTC),
                )
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            failures.append(exc)

    running = [threading.Thread(target=work, args=(w,)) for w in range(threads)]
    for thread in running:
        thread.start()
    for thread in running:
        thread.join()
    assert failures == []
    assert store.verify().size == threads * per_thread
    ids = sorted(str(e.body["call_id"]) for e in store.list_entries(0, threads * per_thread))
    assert ids == sorted(f"t{w}-{i}" for w in range(threads) for i in range(per_thread))


def test_concurrent_processes_give_one_gap_free_chain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Spawned children unpickle _append_many by module name (tests.ledger.test_store), so they
    # need the repository root on their sys.path, which spawn copies from ours.
    monkeypatch.syspath_prepend(str(REPO_ROOT))
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    # No store is opened first: the children race to create the schema too.
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_append_many, args=(url, w, PER_WORKER)) for w in range(WORKERS)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [p.exitcode for p in processes] == [0] * WORKERS
    with LedgerStore.open(url) as store:
        assert store.verify().size == WORKERS * PER_WORKER
        ids = sorted(str(e.body["call_id"]) for e in store.list_entries(0, WORKERS * PER_WORKER))
    assert ids == sorted(f"w{w}-{i}" for w in range(WORKERS) for i in range(PER_WORKER))
