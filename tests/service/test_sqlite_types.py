"""SQLite result column types from declared column types, through the read-only runner."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

import pytest

from service.packets.columns import ColumnType
from service.packets.tables import write_table
from service.run_sql import run_query
from service.sqlite_types import affinity_type

INTEGER, TEXT, REAL, BLOB = (
    ColumnType("integer", int),
    ColumnType("string", str),
    ColumnType("number", float),
    ColumnType("string", bytes),
)


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "typed.sqlite"
    with sqlite3.connect(path) as conn:
        conn.executescript(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, name VARCHAR(20), price DECIMAL(10, 2), "
            "ratio DOUBLE, raw BLOB, day DATE, loose);"
            "CREATE TABLE u (id INT, t_id BIGINT, label TEXT);"
            "INSERT INTO t VALUES (1, 'a', 1.5, 0.25, x'00ff', '2024-01-01', 'x');"
            "INSERT INTO t VALUES (2, 'b', 2, 0.5, NULL, NULL, 3);"
            "INSERT INTO u VALUES (10, 1, 'first');"
        )
    return path


@pytest.mark.parametrize(
    ("declared", "expected"),
    [
        pytest.param("INTEGER", INTEGER, id="integer"),
        pytest.param("unsigned big int", INTEGER, id="big-int"),
        pytest.param("VARCHAR(20)", TEXT, id="varchar"),
        pytest.param("NATIVE CHARACTER(70)", TEXT, id="character"),
        pytest.param("CLOB", TEXT, id="clob"),
        pytest.param("BLOB", BLOB, id="blob"),
        pytest.param("DOUBLE PRECISION", REAL, id="double"),
        pytest.param("FLOAT", REAL, id="float"),
        pytest.param("DECIMAL(10,5)", None, id="numeric-decimal"),
        pytest.param("BOOLEAN", None, id="numeric-boolean"),
        pytest.param("DATETIME", None, id="numeric-datetime"),
        pytest.param("", None, id="no-type"),
    ],
)
def test_declared_types_map_by_sqlites_affinity_rules(
    declared: str, expected: ColumnType | None
) -> None:
    assert affinity_type(declared) == expected


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        pytest.param("SELECT * FROM t", (INTEGER, TEXT, None, REAL, BLOB, None, None), id="star"),
        pytest.param("SELECT name AS n, id FROM t", (TEXT, INTEGER), id="named-and-aliased"),
        pytest.param(
            "SELECT t.id, u.id, label FROM t JOIN u ON u.t_id = t.id",
            (INTEGER, INTEGER, TEXT),
            id="qualified-and-joined",
        ),
        pytest.param(
            "SELECT label, name FROM t JOIN u ON u.t_id = t.id", (TEXT, TEXT), id="unqualified"
        ),
        pytest.param("SELECT u.*, 1 AS one FROM u", (INTEGER, INTEGER, TEXT, None), id="t-star"),
        pytest.param(
            "SELECT CAST(loose AS TEXT) AS s, count(*) AS n FROM t", (TEXT, INTEGER), id="cast"
        ),
        pytest.param("SELECT id + 1 AS next FROM t", (None,), id="expression"),
        pytest.param("SELECT id FROM (SELECT id FROM t)", (None,), id="subquery"),
        pytest.param("WITH c AS (SELECT id FROM t) SELECT id FROM c", (None,), id="cte"),
        pytest.param("SELECT id FROM t UNION SELECT id FROM u", (None,), id="compound"),
    ],
)
def test_the_runner_states_the_types_of_the_columns_it_reads(
    database: Path, sql: str, expected: tuple[ColumnType | None, ...]
) -> None:
    with run_query(database, sql, {}, 5000) as result:
        assert result.column_types == expected
        list(result.rows)


def test_a_declared_type_the_values_contradict_gives_way_to_the_values(database: Path) -> None:
    # `loose` has no type; `price` is NUMERIC (1.5 and 2); `raw` BLOB holds bytes and NULL.
    with run_query(database, "SELECT id, name, price, raw, day, loose FROM t", {}, 5000) as result:
        written = write_table(
            io.BytesIO(),
            path="data/t.csv",
            fmt="csv",
            columns=result.columns,
            rows=result.rows,
            max_bytes=None,
            column_types=result.column_types,
        )
    assert written.column_types == ("integer", "string", "number", "string", "string", "any")
    assert written.binary_columns == frozenset({"raw"})
    with sqlite3.connect(database) as conn:
        conn.execute("INSERT INTO t (id, name) VALUES (3, x'01')")  # TEXT affinity keeps a blob
    with run_query(database, "SELECT name FROM t", {}, 5000) as result:
        written = write_table(
            io.BytesIO(),
            path="data/t.csv",
            fmt="csv",
            columns=result.columns,
            rows=result.rows,
            max_bytes=None,
            column_types=result.column_types,
        )
    assert written.column_types == ("any",)


def _types(path: Path, sql: str) -> tuple[ColumnType | None, ...]:
    with run_query(path, sql, {}, 5_000) as result:
        return result.column_types


@pytest.mark.parametrize("journal", ["delete", "wal"])
def test_types_follow_a_schema_change_between_two_runs_of_one_statement(
    database: Path, journal: str
) -> None:
    with sqlite3.connect(database) as conn:
        conn.execute(f"PRAGMA journal_mode = {journal}")
    sql = "SELECT id, label FROM u"
    assert _types(database, sql) == (INTEGER, TEXT)
    assert _types(database, sql) == (INTEGER, TEXT)  # the same answer, from the cache
    with sqlite3.connect(database) as conn:  # same file, same inode: a new schema version
        conn.executescript(
            "ALTER TABLE u RENAME TO u_old; CREATE TABLE u (id TEXT, label BLOB);"
            "INSERT INTO u VALUES ('10', x'00');"
        )
    assert _types(database, sql) == (TEXT, BLOB)
