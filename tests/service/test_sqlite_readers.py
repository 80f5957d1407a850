"""SQLite source connections kept between calls: reused, yet each call as if on a fresh one."""

from __future__ import annotations

import sqlite3
import threading
from typing import TYPE_CHECKING

import pytest

from service.errors import QueryFailed, QueryTimedOut, SourceUnavailable
from service.run_sql import run_query
from service.sqlite_readers import SqliteReaders

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

ROWS = "SELECT id, name FROM t ORDER BY id"
SLOW = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000000) "
    "SELECT count(*) FROM c"
)


def _make_source(path: Path, names: list[str]) -> Path:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)")
        conn.executemany("INSERT INTO t (name) VALUES (?)", [(n,) for n in names])
    conn.close()
    return path


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return _make_source(tmp_path / "src.sqlite", ["a", "b"])


@pytest.fixture
def readers() -> Iterator[SqliteReaders]:
    kept = SqliteReaders()
    yield kept
    kept.close()


def _rows(readers: SqliteReaders, path: Path, sql: str = ROWS) -> list[tuple[object, ...]]:
    with run_query(path, sql, {}, 5000, readers=readers) as result:
        return list(result.rows)


def _connection(readers: SqliteReaders, path: Path) -> sqlite3.Connection:
    with readers.snapshot(path) as (conn, _):
        return conn


def test_a_thread_reuses_its_connection_and_each_call_reads_a_new_snapshot(
    readers: SqliteReaders, source: Path
) -> None:
    first = _connection(readers, source)
    assert _rows(readers, source) == [(1, "a"), (2, "b")]
    # The source changes between two calls: no lock is left held (timeout=0 would fail).
    with sqlite3.connect(source, timeout=0) as writer:
        writer.execute("INSERT INTO t (name) VALUES ('c')")
    writer.close()
    assert _rows(readers, source) == [(1, "a"), (2, "b"), (3, "c")]
    assert _connection(readers, source) is first
    assert not first.in_transaction  # given back with its read transaction ended


def test_a_file_replaced_under_its_path_is_read_afresh(
    readers: SqliteReaders, source: Path, tmp_path: Path
) -> None:
    first = _connection(readers, source)
    _make_source(tmp_path / "new.sqlite", ["x"]).replace(source)
    assert _rows(readers, source) == [(1, "x")]
    assert _connection(readers, source) is not first


@pytest.mark.parametrize(
    "statement",
    [
        pytest.param("INSERT INTO t VALUES (99, 'x')", id="insert"),
        pytest.param("CREATE TEMP TABLE scratch (x)", id="temp-table"),
        pytest.param("PRAGMA query_only = OFF", id="pragma-query-only-off"),
        pytest.param("ATTACH DATABASE ':memory:' AS other", id="attach"),
        pytest.param("BEGIN", id="begin"),
        pytest.param("ROLLBACK", id="rollback"),
    ],
)
def test_a_kept_connection_refuses_what_a_fresh_one_refuses(
    readers: SqliteReaders, source: Path, statement: str
) -> None:
    kept = _connection(readers, source)
    before = source.read_bytes()
    with (
        pytest.raises(QueryFailed, match="refused or failed"),
        run_query(source, statement, {}, 5000, readers=readers) as result,
    ):
        list(result.rows)
    assert source.read_bytes() == before
    assert _rows(readers, source) == [(1, "a"), (2, "b")]
    assert _connection(readers, source) is kept


def test_a_call_stopped_at_its_deadline_leaves_the_connection_usable(
    readers: SqliteReaders, source: Path
) -> None:
    kept = _connection(readers, source)
    with pytest.raises(QueryTimedOut), run_query(source, SLOW, {}, 100, readers=readers) as result:
        list(result.rows)
    with run_query(source, ROWS, {}, 5000, readers=readers) as result:
        assert next(result.rows) == (1, "a")  # abandoned half-read: the snapshot still ends
    assert _rows(readers, source) == [(1, "a"), (2, "b")]
    assert _connection(readers, source) is kept
    assert not kept.in_transaction


def test_threads_do_not_share_a_connection(readers: SqliteReaders, source: Path) -> None:
    mine = _connection(readers, source)
    theirs: list[sqlite3.Connection] = []
    thread = threading.Thread(target=lambda: theirs.append(_connection(readers, source)))
    thread.start()
    thread.join()
    assert theirs
    assert theirs[0] is not mine


def test_close_closes_the_kept_connections_and_keeps_no_more(
    readers: SqliteReaders, source: Path
) -> None:
    kept = _connection(readers, source)
    readers.close()
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        kept.execute("SELECT 1")
    assert _rows(readers, source) == [(1, "a"), (2, "b")]  # still answers, on fresh ones
    after = _connection(readers, source)
    assert after is not kept
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        after.execute("SELECT 1")


def test_a_source_removed_is_let_go_of(readers: SqliteReaders, source: Path) -> None:
    kept = _connection(readers, source)
    source.unlink()  # a kept connection would hold the removed file (and its space) open
    with pytest.raises(SourceUnavailable, match="does not exist"):
        _rows(readers, source)
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        kept.execute("SELECT 1")


def test_a_missing_source_is_unavailable(readers: SqliteReaders, tmp_path: Path) -> None:
    with pytest.raises(SourceUnavailable, match="does not exist"):
        _rows(readers, tmp_path / "nope.sqlite")
    (tmp_path / "folder.sqlite").mkdir()
    with pytest.raises(SourceUnavailable, match="does not exist"):
        _rows(readers, tmp_path / "folder.sqlite")
