"""The SQL store, on SQLite and on PostgreSQL: every test runs on both (``ledger_url``)."""

from __future__ import annotations

import itertools
import multiprocessing
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

import ledger.store as store_module
from ledger.canonical import jcs
from ledger.companion import Companion
from ledger.entry import ZERO_PREV, Kind, leaf_hash
from ledger.errors import (
    AppendRefused,
    CheckpointRefused,
    CorruptEntry,
    EntryNotFound,
    InvalidTimestamp,
    LedgerUnavailable,
    LedgerVerifyError,
    ProofError,
    SchemaNotCurrent,
)
from ledger.merkle import (
    EMPTY_ROOT,
    consistency_proof,
    inclusion_proof,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)
from ledger.migrate import LEDGER_SCHEMA, current_revision, head_revision
from ledger.migrations.append_only import APPEND_ONLY_MESSAGE
from ledger.store import LedgerStore, ledger_checkpoints, ledger_entries

if TYPE_CHECKING:
    from tests.ledger.conftest import Backdoor

WORKERS, PER_WORKER = 4, 50
REPO_ROOT = Path(__file__).resolve().parents[2]


def _append_many(url: str, worker: int, count: int) -> None:
    """Child process: open its own store on the shared database and append ``count`` entries."""
    with LedgerStore.open(url) as store:
        for i in range(count):
            store.append(
                "call.denied", {"call_id": f"w{worker}-{i}", "reason": "load"}, datetime.now(UTC)
            )


def _denied(store: LedgerStore, n: int, moment: datetime) -> None:
    for i in range(n):
        store.append("call.denied", {"call_id": f"c{i}", "reason": "policy deny"}, moment)


def _hashes(store: LedgerStore) -> list[bytes]:
    return [leaf_hash(data) for data in store.iter_leaf_inputs()]


def test_append_builds_the_chain(
    store: LedgerStore, moment: datetime, sample_bodies: dict[str, Any]
) -> None:
    entries = [store.append(kind, body, moment) for kind, body in sample_bodies.items()]
    count = len(Kind)  # one entry of each kind
    assert [e.seq for e in entries] == list(range(count))
    assert entries[0].prev == ZERO_PREV
    for before, after in itertools.pairwise(entries):
        assert after.prev == leaf_hash(store.get_leaf_input(before.seq)).hex()
    assert [e.kind for e in entries] == list(Kind)
    assert entries[0].ts == "2026-11-23T09:15:02.123456Z"
    assert store.size() == count
    assert store.get(3) == entries[3]
    assert store.list_entries(1, 2) == entries[1:3]
    assert store.list_entries(4, 10) == entries[4:]
    assert store.verify().size == count


def test_append_returns_what_get_reads(store: LedgerStore, moment: datetime) -> None:
    entry = store.append("call.denied", {"call_id": "c1", "reason": "x", "n": 2.0}, moment)
    assert store.get(0) == entry
    assert store.get_leaf_input(0).startswith(b'{"body":{"call_id":"c1","n":2,')  # JCS: 2.0 is 2


def test_stored_columns_hold_the_exact_bytes(store: LedgerStore, moment: datetime) -> None:
    entry = store.append("call.denied", {"call_id": "c1", "reason": "x"}, moment)
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(ledger_entries)).one()
    assert (row.seq, row.kind, row.ts) == (0, "call.denied", entry.ts)
    assert bytes(row.leaf_input) == store.get_leaf_input(0)
    assert bytes(row.leaf_hash) == leaf_hash(bytes(row.leaf_input))


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
        ("call.denied", {"call_id": "c1", "reason": "x", "big": 2**60}, "safe integer"),
    ],
)
def test_invalid_bodies_are_refused_naming_the_field(
    store: LedgerStore, moment: datetime, kind: str, body: dict[str, Any], named: str
) -> None:
    with pytest.raises(AppendRefused) as caught:
        store.append(kind, body, moment)
    assert caught.value.kind == kind
    assert named in str(caught.value).lower()
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


@pytest.mark.parametrize("table", [ledger_entries, ledger_checkpoints], ids=lambda t: t.name)
def test_update_and_delete_are_refused_by_the_database(
    store: LedgerStore, moment: datetime, table: sa.Table
) -> None:
    _denied(store, 2, moment)
    size, root = store.tree_head()
    store.add_checkpoint(size, root, "note\n", moment)
    key = table.c.seq == 1 if table is ledger_entries else table.c.size == size
    statements: list[sa.Executable] = [
        sa.update(table).where(key).values(created_at="x")
        if table is ledger_checkpoints
        else sa.update(table).where(key).values(kind="call.started"),
        sa.delete(table).where(key),
        sa.delete(table),
    ]
    if store.engine.dialect.name == "postgresql":
        statements.append(sa.text(f"TRUNCATE {table.name}"))
    for statement in statements:
        with pytest.raises(DBAPIError, match=APPEND_ONLY_MESSAGE), store.engine.begin() as conn:
            conn.execute(statement)
    assert store.verify().size == 2
    assert store.latest_checkpoint() is not None


def test_open_migrates_once_and_keeps_entries(ledger_url: str, moment: datetime) -> None:
    with LedgerStore.open(ledger_url) as first:
        _denied(first, 3, moment)
        root = first.verify().root
        assert current_revision(first.engine, LEDGER_SCHEMA) == head_revision(LEDGER_SCHEMA)
    with LedgerStore.open(ledger_url) as second, LedgerStore.open(ledger_url, migrate=False):
        assert second.verify().root == root


def test_opening_an_unmigrated_database_without_migrating_is_refused(ledger_url: str) -> None:
    with pytest.raises(SchemaNotCurrent, match="govex db upgrade") as caught:
        LedgerStore.open(ledger_url, migrate=False)
    assert caught.value.where == "schema ledger"


def test_a_ledger_made_before_migrations_is_adopted(tmp_path: Path, moment: datetime) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # what issue 2's store created: the table, no version table
        conn.exec_driver_sql(
            "CREATE TABLE ledger_entries (seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, "
            "ts TEXT NOT NULL, leaf_input BLOB NOT NULL, leaf_hash BLOB NOT NULL)"
        )
    engine.dispose()
    with LedgerStore.open(url) as store:
        _denied(store, 2, moment)
        assert store.verify().size == 2
        with pytest.raises(DBAPIError, match=APPEND_ONLY_MESSAGE), store.engine.begin() as conn:
            conn.execute(sa.delete(ledger_entries))


def test_sqlite_connections_use_wal_and_full_sync(tmp_path: Path) -> None:
    with (
        LedgerStore.open(f"sqlite:///{tmp_path / 'ledger.db'}") as store,
        store.engine.connect() as conn,
    ):
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_postgresql_commits_are_durable_by_configuration(pg_url: str) -> None:
    with LedgerStore.open(pg_url) as store, store.engine.connect() as conn:
        assert conn.exec_driver_sql("SHOW fsync").scalar() == "on"
        assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() == "on"


def test_an_appended_entry_is_committed_when_append_returns(
    store: LedgerStore, ledger_url: str, moment: datetime
) -> None:
    _denied(store, 1, moment)
    other = sa.create_engine(ledger_url)  # another connection pool: sees only committed rows
    try:
        with other.connect() as conn:
            assert (
                conn.execute(sa.select(sa.func.count()).select_from(ledger_entries)).scalar() == 1
            )
    finally:
        other.dispose()


def test_reads_do_not_wait_for_a_writer(
    store: LedgerStore, ledger_url: str, moment: datetime
) -> None:
    _denied(store, 2, moment)
    other = sa.create_engine(ledger_url)
    try:
        with other.connect() as conn:
            if other.dialect.name == "sqlite":
                conn.exec_driver_sql("BEGIN IMMEDIATE")  # another writer holds the write lock
            else:
                conn.exec_driver_sql("BEGIN")
                conn.exec_driver_sql("SELECT * FROM govex_ledger_lock_head()")  # the append lock
            assert store.size() == 2
            assert len(list(store.iter_leaf_inputs())) == 2
            assert store.tree_head()[0] == 2
            conn.exec_driver_sql("ROLLBACK")
    finally:
        other.dispose()


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
    store: LedgerStore, backdoor: Backdoor, moment: datetime
) -> None:
    _denied(store, 6, moment)
    forged = store.get_leaf_input(3).replace(b"policy deny", b"policy allow")
    backdoor.execute("UPDATE ledger_entries SET leaf_input = :data WHERE seq = 3", data=forged)
    with pytest.raises(LedgerVerifyError) as caught:
        store.verify()
    assert (caught.value.seq, caught.value.check) == (3, "leaf_hash")
    assert store.get(3).body["reason"] == "policy allow"  # the store reads it; verify refuses it


def test_row_and_its_hash_edited_is_named_at_its_seq_by_the_chain(
    store: LedgerStore, backdoor: Backdoor, moment: datetime
) -> None:
    _denied(store, 6, moment)
    forged = store.get_leaf_input(3).replace(b"policy deny", b"policy allow")
    backdoor.execute(
        "UPDATE ledger_entries SET leaf_input = :data, leaf_hash = :hash WHERE seq = 3",
        data=forged,
        hash=leaf_hash(forged),
    )
    with pytest.raises(LedgerVerifyError) as caught:
        store.verify()
    assert (caught.value.seq, caught.value.check) == (3, "prev")


def test_deleted_row_is_a_seq_gap(store: LedgerStore, backdoor: Backdoor, moment: datetime) -> None:
    _denied(store, 5, moment)
    backdoor.execute("DELETE FROM ledger_entries WHERE seq = 2")
    with pytest.raises(LedgerVerifyError) as caught:
        store.verify()
    assert (caught.value.seq, caught.value.check) == (2, "seq")


def test_unparseable_row_is_corrupt_on_get(
    store: LedgerStore, backdoor: Backdoor, moment: datetime
) -> None:
    _denied(store, 2, moment)
    backdoor.execute("UPDATE ledger_entries SET leaf_input = :data WHERE seq = 1", data=b"{")
    with pytest.raises(CorruptEntry) as caught:
        store.get(1)
    assert caught.value.seq == 1
    with pytest.raises(LedgerVerifyError) as verify_caught:
        store.verify()
    assert (verify_caught.value.seq, verify_caught.value.check) == (1, "leaf_hash")


def test_the_tree_head_and_proofs_match_the_stored_entries(
    store: LedgerStore, moment: datetime
) -> None:
    assert store.tree_head() == (0, EMPTY_ROOT)
    _denied(store, 13, moment)
    hashes = _hashes(store)
    assert store.tree_head() == (13, root_from_leaf_hashes(hashes))
    for size in (1, 5, 8, 13):
        root = store.root(size)
        assert root == root_from_leaf_hashes(hashes[:size])
        for seq in range(size):
            proof = store.inclusion_proof(seq, size)
            assert proof == inclusion_proof(seq, hashes[:size])
            verify_inclusion(seq, size, hashes[seq], proof, root)
    for old, new in [(1, 13), (5, 8), (7, 13), (13, 13)]:
        proof = store.consistency_proof(old, new)
        assert proof == consistency_proof(old, hashes[:new])
        verify_consistency(old, new, store.root(old), store.root(new), proof)
    with pytest.raises(ProofError):
        store.root(14)
    with pytest.raises(ProofError):
        store.inclusion_proof(3, 14)


def test_proofs_include_entries_appended_by_another_store(
    store: LedgerStore, ledger_url: str, moment: datetime
) -> None:
    _denied(store, 3, moment)
    assert store.tree_head()[0] == 3
    with LedgerStore.open(ledger_url) as other:
        _denied(other, 4, moment)
    size, root = store.tree_head()
    assert (size, root) == (7, root_from_leaf_hashes(_hashes(store)))


def test_checkpoints_are_stored_and_a_second_root_for_one_size_is_refused(
    store: LedgerStore, moment: datetime
) -> None:
    assert store.latest_checkpoint() is None
    _denied(store, 4, moment)
    first = store.add_checkpoint(2, store.root(2), "two\n", moment)
    latest = store.add_checkpoint(4, store.root(4), "four\n", moment)
    assert store.latest_checkpoint() == latest
    assert store.checkpoint_at(2) == first
    assert store.checkpoint_at(3) is None
    assert [c.size for c in store.checkpoints()] == [2, 4]
    assert store.add_checkpoint(4, store.root(4), "four\n", moment) == latest  # a racing twin
    with pytest.raises(CheckpointRefused) as caught:
        store.add_checkpoint(4, store.root(3), "forked\n", moment)
    assert caught.value.size == 4


def test_the_recent_checkpoints_are_the_largest_trees_read_without_the_rest(
    store: LedgerStore, moment: datetime
) -> None:
    assert (store.recent_checkpoints(3), store.checkpoint_count()) == ([], 0)
    _denied(store, 6, moment)
    for size in (5, 1, 6, 3, 2):  # stored out of order
        store.add_checkpoint(size, store.root(size), f"{size}\n", moment)
    assert [c.size for c in store.recent_checkpoints(3)] == [3, 5, 6]
    assert [c.size for c in store.recent_checkpoints(10)] == [1, 2, 3, 5, 6]
    assert store.checkpoint_count() == 5


def test_verify_checks_stored_checkpoints_against_a_recomputed_chain(
    store: LedgerStore, backdoor: Backdoor, moment: datetime
) -> None:
    _denied(store, 6, moment)
    store.add_checkpoint(4, store.root(4), "four\n", moment)
    # Rewrite entry 2 and recompute every later prev and hash: the chain alone looks fine.
    entries = [dict(e.to_json_dict()) for e in store.list_entries(0, 6)]
    entries[2]["body"] = {**entries[2]["body"], "reason": "forged"}
    prev = leaf_hash(store.get_leaf_input(1)).hex()
    for seq in range(2, 6):
        entries[seq]["prev"] = prev
        data = jcs(entries[seq])
        backdoor.execute(
            "UPDATE ledger_entries SET leaf_input = :data, leaf_hash = :hash WHERE seq = :seq",
            data=data,
            hash=leaf_hash(data),
            seq=seq,
        )
        prev = leaf_hash(data).hex()
    with pytest.raises(LedgerVerifyError) as caught:
        store.verify()
    assert (caught.value.seq, caught.value.check) == (3, "checkpoint")
    assert "size 4" in caught.value.detail


def test_verify_names_entries_removed_below_a_stored_checkpoint(
    store: LedgerStore, backdoor: Backdoor, moment: datetime
) -> None:
    _denied(store, 6, moment)
    store.add_checkpoint(6, store.root(6), "six\n", moment)
    backdoor.execute("DELETE FROM ledger_entries WHERE seq >= 4")
    with pytest.raises(LedgerVerifyError) as caught:
        store.verify()
    assert (caught.value.seq, caught.value.check) == (4, "checkpoint")


def test_a_failed_commit_fails_every_append_of_its_batch_and_acknowledges_none(
    store: LedgerStore, backdoor: Backdoor, moment: datetime
) -> None:
    _denied(store, 2, moment)
    if backdoor.dialect == "sqlite":
        backdoor.execute(
            "CREATE TRIGGER refuse_insert BEFORE INSERT ON ledger_entries "
            "BEGIN SELECT RAISE(ABORT, 'simulated storage failure'); END"
        )
        undo = "DROP TRIGGER refuse_insert"
    else:
        backdoor.execute(
            "CREATE FUNCTION refuse_insert() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'simulated storage failure'; END $$; "
            "CREATE TRIGGER refuse_insert BEFORE INSERT ON ledger_entries "
            "FOR EACH ROW EXECUTE FUNCTION refuse_insert()"
        )
        undo = "DROP TRIGGER refuse_insert ON ledger_entries"
    outcomes: list[BaseException | None] = []

    def attempt(i: int) -> None:
        try:
            store.append("call.denied", {"call_id": f"x{i}", "reason": "r"}, moment)
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            outcomes.append(exc)
        else:
            outcomes.append(None)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(outcomes) == 8
    assert all(isinstance(o, LedgerUnavailable) for o in outcomes)
    assert "simulated storage failure" in str(outcomes[0])
    assert "INSERT" not in str(outcomes[0])  # no SQL text or parameters in the message
    assert store.size() == 2
    backdoor.execute(undo)
    _denied(store, 1, moment)
    assert store.verify().size == 3


def test_concurrent_threads_give_one_gap_free_chain_in_few_commits(store: LedgerStore) -> None:
    threads, per_thread = 16, 25
    failures: list[BaseException] = []
    start = threading.Barrier(threads)

    def work(worker: int) -> None:
        try:
            start.wait()
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
    total = threads * per_thread
    assert store.verify().size == total
    ids = sorted(str(e.body["call_id"]) for e in store.list_entries(0, total))
    assert ids == sorted(f"t{w}-{i}" for w in range(threads) for i in range(per_thread))
    assert store.group_commits < total  # concurrent appends shared transactions


def test_concurrent_processes_give_one_gap_free_chain(
    ledger_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Spawned children unpickle _append_many by module name (tests.ledger.test_store), so they
    # need the repository root on their sys.path, which spawn copies from ours.
    monkeypatch.syspath_prepend(str(REPO_ROOT))
    # No store is opened first: the children race to create the schema too.
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_append_many, args=(ledger_url, w, PER_WORKER))
        for w in range(WORKERS)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [p.exitcode for p in processes] == [0] * WORKERS
    with LedgerStore.open(ledger_url) as store:
        assert store.verify().size == WORKERS * PER_WORKER
        ids = sorted(str(e.body["call_id"]) for e in store.list_entries(0, WORKERS * PER_WORKER))
    assert ids == sorted(f"w{w}-{i}" for w in range(WORKERS) for i in range(PER_WORKER))


def test_append_many_appends_in_order_in_one_commit(store: LedgerStore, moment: datetime) -> None:
    store.append("call.denied", {"call_id": "c0", "reason": "x"}, moment)
    commits = store.group_commits
    entries = store.append_many(
        [("call.denied", {"call_id": f"c{i}", "reason": "x"}, moment) for i in (1, 2, 3)]
    )
    assert [(e.seq, e.body["call_id"]) for e in entries] == [(1, "c1"), (2, "c2"), (3, "c3")]
    assert store.group_commits == commits + 1
    assert [store.get(seq) for seq in (1, 2, 3)] == entries
    assert store.verify().size == 4


def test_append_many_refuses_a_bad_body_before_anything_is_appended(
    store: LedgerStore, moment: datetime
) -> None:
    with pytest.raises(AppendRefused):
        store.append_many(
            [
                ("call.denied", {"call_id": "c1", "reason": "x"}, moment),
                ("no.such.kind", {}, moment),
            ]
        )
    assert store.size() == 0


def _companion_table(store: LedgerStore) -> None:
    with store.engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE follows (name VARCHAR(20) PRIMARY KEY, first_seq BIGINT, n BIGINT)"
            )
        )


def _follows(store: LedgerStore) -> list[tuple[str, int, int]]:
    with store.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT name, first_seq, n FROM follows ORDER BY name"))
        return [tuple(row) for row in rows]


def test_a_companion_write_commits_with_its_entries_and_sees_their_seqs(
    store: LedgerStore, moment: datetime
) -> None:
    _companion_table(store)
    insert = "INSERT INTO follows (name, first_seq, n) VALUES (:name, :first, :n)"
    store.append("call.denied", {"call_id": "c0", "reason": "x"}, moment)
    one = store.append(
        "call.denied",
        {"call_id": "c1", "reason": "x"},
        moment,
        companion=Companion(insert, lambda es: {"name": "one", "first": es[0].seq, "n": len(es)}),
    )
    many = store.append_many(
        [("call.denied", {"call_id": f"c{i}", "reason": "x"}, moment) for i in (2, 3)],
        companion=Companion(insert, lambda es: {"name": "two", "first": es[0].seq, "n": len(es)}),
    )
    assert (one.seq, [e.seq for e in many]) == (1, [2, 3])
    assert _follows(store) == [("one", 1, 1), ("two", 2, 2)]
    assert store.verify().size == 4


def test_a_companion_write_that_fails_fails_its_append_and_nothing_is_appended(
    store: LedgerStore, moment: datetime
) -> None:
    _companion_table(store)
    insert = "INSERT INTO follows (name, first_seq, n) VALUES (:name, :first, 1)"
    taken = Companion(insert, lambda es: {"name": "taken", "first": es[0].seq})
    store.append("call.denied", {"call_id": "c0", "reason": "x"}, moment, companion=taken)
    with pytest.raises(LedgerUnavailable, match="nothing was appended"):
        store.append_many(  # the same primary key again: the database refuses the write
            [("call.denied", {"call_id": f"c{i}", "reason": "x"}, moment) for i in (1, 2)],
            companion=taken,
        )
    assert store.size() == 1
    assert _follows(store) == [("taken", 0, 1)]
    again = store.append("call.denied", {"call_id": "c3", "reason": "x"}, moment)
    assert again.seq == 1  # the head was not moved by the failed batch
    assert store.verify().size == 2


def test_a_companion_write_follows_its_entry_when_another_store_moved_the_head(
    store: LedgerStore, ledger_url: str, moment: datetime
) -> None:
    # On PostgreSQL this store's first try is built on the head it last wrote, which the
    # other store moved: the function appends nothing, the writes sent with it are rolled
    # back, and the retry's writes carry the seq the entry really got.
    _companion_table(store)
    insert = "INSERT INTO follows (name, first_seq, n) VALUES (:name, :first, 1)"
    store.append("call.denied", {"call_id": "mine-0", "reason": "x"}, moment)
    with LedgerStore.open(ledger_url) as other:
        other.append("call.denied", {"call_id": "theirs", "reason": "x"}, moment)
    entry = store.append(
        "call.denied",
        {"call_id": "mine-1", "reason": "x"},
        moment,
        companion=Companion(insert, lambda es: {"name": "mine", "first": es[0].seq}),
    )
    assert entry.seq == 2
    assert _follows(store) == [("mine", 2, 1)]
    assert store.verify().size == 3
