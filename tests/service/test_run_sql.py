"""The SQLite read-only boundary: every layer refuses writes on its own, and the deadline holds."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from service.errors import QueryFailed, QueryTimedOut, SourceUnavailable
from service.run_sql import _authorize_read_only, run_query


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "src.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)")
        conn.executemany("INSERT INTO t VALUES (?, ?)", [(i, f"n{i}") for i in range(5000)])
    return path


def _fingerprint(path: Path) -> bytes:
    return path.read_bytes()


def test_rows_stream_in_order_with_bound_parameters(source: Path) -> None:
    with run_query(
        source, "SELECT id, name FROM t WHERE id < :n ORDER BY id", {"n": 3}, 5000
    ) as result:
        assert result.columns == ("id", "name")
        assert list(result.rows) == [(0, "n0"), (1, "n1"), (2, "n2")]


@pytest.mark.parametrize(
    "statement",
    [
        pytest.param("INSERT INTO t VALUES (99999, 'x')", id="insert"),
        pytest.param("UPDATE t SET name = 'x'", id="update"),
        pytest.param("DELETE FROM t", id="delete"),
        pytest.param("CREATE TABLE u (x)", id="create"),
        pytest.param("DROP TABLE t", id="drop"),
        pytest.param("PRAGMA user_version = 7", id="pragma-write"),
        pytest.param("PRAGMA query_only = OFF", id="pragma-query-only-off"),
        pytest.param("ATTACH DATABASE ':memory:' AS other", id="attach"),
        pytest.param("SELECT load_extension('x')", id="load-extension"),
    ],
)
def test_writes_and_escapes_are_refused(source: Path, statement: str) -> None:
    before = _fingerprint(source)
    with (
        pytest.raises(QueryFailed, match="refused or failed"),
        run_query(source, statement, {}, 5000) as result,
    ):
        list(result.rows)
    assert _fingerprint(source) == before


def test_vacuum_into_cannot_write_a_file(source: Path, tmp_path: Path) -> None:
    target = tmp_path / "copy.sqlite"
    with (
        pytest.raises(QueryFailed),
        run_query(source, f"VACUUM INTO '{target}'", {}, 5000) as result,
    ):
        list(result.rows)
    assert not target.exists()


def test_mode_ro_alone_lets_vacuum_into_write_but_the_authorizer_refuses(
    source: Path, tmp_path: Path
) -> None:
    # Why the authorizer exists: a mode=ro handle still writes a new file with VACUUM INTO.
    uri = f"file:{source}?mode=ro"
    plain = sqlite3.connect(uri, uri=True)
    plain.execute(f"VACUUM INTO '{tmp_path / 'leak.sqlite'}'")
    plain.close()
    assert (tmp_path / "leak.sqlite").exists()

    guarded = sqlite3.connect(uri, uri=True)
    guarded.set_authorizer(_authorize_read_only)
    with pytest.raises(sqlite3.DatabaseError, match="authoriz"):
        guarded.execute(f"VACUUM INTO '{tmp_path / 'copy.sqlite'}'")
    guarded.close()
    assert not (tmp_path / "copy.sqlite").exists()


def test_deadline_stops_a_long_query(source: Path) -> None:
    slow = (
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000000) "
        "SELECT count(*) FROM c"
    )
    with (
        pytest.raises(QueryTimedOut, match="200 ms deadline") as caught,
        run_query(source, slow, {}, 200) as result,
    ):
        list(result.rows)
    assert caught.value.timeout_ms == 200


def test_missing_source_is_unavailable(tmp_path: Path) -> None:
    with (
        pytest.raises(SourceUnavailable, match="does not exist"),
        run_query(tmp_path / "nope.sqlite", "SELECT 1", {}, 100),
    ):
        pass
