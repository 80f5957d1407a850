"""PostgreSQL's COPY writes exactly govex's table bytes, inside the same read-only boundary.

Every comparison runs the statement twice on a real server: once asking the runner to
``encode`` (COPY, when it plans one) and once through the cursor, each written by
:func:`write_table`; the files, their records (digests, chunks) and column types must be
identical. The static SQL check is bypassed: statements go to the runner directly.
"""

from __future__ import annotations

import io
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest

from catalog.binds import NumberedSql
from catalog.model import JsonScalar
from service.errors import QueryFailed, QueryTimedOut
from service.packets.errors import UnsupportedValueError
from service.packets.tables import TableFormat, TableWritten, write_table
from service.pg_copy_sql import bind_sites, copy_statement, probe_text
from service.run_postgres import run_postgres_query
from service.run_postgres_copy import plan_copy
from service.sources import PostgresSource, parse_source
from tests.pg_harness import PostgresServer

PASSWORD = "copy-Pass-51d0"
TIMEOUT_MS = 10_000
CHUNK = 128  # small chunks, so a few rows already span several

# One table with every common type, and rows that stress each encoder.
KINDS = r"""
CREATE TABLE kinds (
  id int PRIMARY KEY, i2 int2, i8 int8, num numeric, ok bool, txt text, vc varchar(20),
  fixed char(5), day date, ts timestamp, tstz timestamptz, tm time, tmz timetz,
  span interval, doc json, docb jsonb, uid uuid, raw bytea, ip inet, net cidr, mac macaddr,
  ints int[], texts text[], flags bool[], floats float8[]
);
INSERT INTO kinds VALUES
  (1, 1, 9223372036854775807, 12.50, true, 'plain', 'v', 'ab', '2024-02-29',
   '2024-02-29 23:30:00.123456', '2024-03-01 01:30:00+02', '13:45:00', '13:45:00+02',
   '1 day 2 hours', '{"a": [1, 2]}', '{"b": "x", "a": 1}', '00000000-0000-0000-0000-00000000002a',
   '\x00ff', '192.168.1.5', '10.0.0.0/8', '08:00:2b:01:02:03', '{1,2}', '{"a b","c,d",NULL}',
   '{t,f}', '{1.5,100,1e16}'),
  (2, -32768, -1, 'NaN', false, 'say "hi", ok', 'a,b', '', 'infinity',
   '-infinity', '2024-02-29 23:30:00Z', '00:00:00', '00:00:00Z', '-1 mon 3 days', '"text"',
   '[]', '00000000-0000-0000-0000-000000000000', '', '::1', '::/0', '00:00:00:00:00:00',
   '{}', '{}', '{}', '{NaN,Infinity}'),
  (3, 0, 0, 'Infinity', NULL, E'line\nbreak\r\ncrlf', E'bare\rcr', 'x', '0044-03-15 BC',
   '2000-01-01', '1999-12-31 23:59:59.999999-08', '23:59:59.999999', NULL, '0', 'null',
   'null', NULL, decode(repeat('ab', 100), 'hex'), NULL, NULL, NULL, NULL,
   E'{"q\\"uote","back\\\\slash"}', NULL, NULL),
  (4, NULL, NULL, '-0.000001', NULL, '', '', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
   NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (5, NULL, NULL, '123456789012345678901234567890.123456789', true,
   E'unicode é ☃ 𝄞 \u2028 tab\there', E'\\.', '\.', '2024-01-01', NULL, NULL, NULL, NULL,
   'P1Y2M3DT4H5M6.5S', '{"k": "\u0001"}', '{"k": "é\n"}', NULL, '\x', NULL, NULL, NULL,
   '{-1}', E'{"\\\\."}', '{NULL}', '{}'),
  (6, 7, 8, '1e-30', false, E'\\.', 'quote"', 'q"', '1970-01-01', '1970-01-01', '1970-01-01',
   '12:00', '12:00-11', '1 sec', '{}', '{}', NULL, '\x22', NULL, NULL, NULL, NULL, NULL,
   NULL, NULL);
CREATE TABLE floats (id int PRIMARY KEY, f8 float8, f4 float4);
INSERT INTO floats VALUES (1, 0.1, 0.5), (2, 100, 1e10), (3, 1e16, -0), (4, 1e-7, NULL);
CREATE TABLE t (id int PRIMARY KEY, name text);
INSERT INTO t SELECT g, 'n' || g FROM generate_series(0, 49999) g;
"""


@dataclass(frozen=True)
class Database:
    server: PostgresServer
    name: str

    def scalar(self, sql: str) -> object:
        with psycopg.connect(self.server.dsn(self.name), autocommit=True) as conn:
            row = conn.execute(sql.encode()).fetchone()
        assert row is not None
        return row[0]

    def role(self, grants: str) -> PostgresSource:
        role = f"r_{uuid.uuid4().hex[:12]}"
        self.server.execute(
            f"CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}'; " + grants.format(role=role),
            self.name,
        )
        source = parse_source("sales", self.server.url(self.name, role, PASSWORD))
        assert isinstance(source, PostgresSource)
        return source


@pytest.fixture(scope="module")
def db(postgres: PostgresServer) -> Database:
    name = f"t_{uuid.uuid4().hex[:16]}"
    postgres.create_database(name)
    postgres.execute(KINDS, name)
    return Database(postgres, name)


@pytest.fixture(scope="module")
def reader(db: Database) -> PostgresSource:
    return db.role("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")


@pytest.fixture
def writer(db: Database) -> PostgresSource:
    return db.role("GRANT SELECT, INSERT ON t TO {role}")


@dataclass(frozen=True)
class Written:
    copied: bool  # the server encoded the rows (COPY), or the cursor's rows were encoded here
    data: bytes
    table: TableWritten


def _write(
    source: PostgresSource,
    sql: str,
    fmt: TableFormat,
    params: dict[str, JsonScalar] | None = None,
    *,
    encode: bool,
    max_rows: int | None = None,
    max_bytes: int | None = None,
    exhaustive: bool = False,
    timeout: int = TIMEOUT_MS,
) -> Written:
    out = io.BytesIO()
    with run_postgres_query(
        source,
        sql,
        params or {},
        timeout,
        exhaustive=exhaustive,
        encode=fmt if encode else None,
    ) as result:
        table = write_table(
            out,
            path=f"data/result.{fmt}",
            fmt=fmt,
            columns=result.columns,
            rows=result.encoded or result.rows,
            max_bytes=max_bytes,
            max_rows=max_rows,
            chunk_bytes=CHUNK,
            column_types=result.column_types,
        )
        copied = result.encoded is not None
    return Written(copied, out.getvalue(), table)


def _both(
    source: PostgresSource,
    sql: str,
    fmt: TableFormat,
    params: dict[str, JsonScalar] | None = None,
) -> tuple[Written, Written]:
    return (
        _write(source, sql, fmt, params, encode=True),
        _write(source, sql, fmt, params, encode=False),
    )


def _same(copied: Written, cursor: Written) -> None:
    assert not cursor.copied
    assert copied.data.decode() == cursor.data.decode()
    assert copied.data == cursor.data
    assert copied.table == cursor.table


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_copy_writes_the_cursor_paths_bytes_for_every_common_type(
    reader: PostgresSource, fmt: TableFormat
) -> None:
    copied, cursor = _both(reader, "SELECT * FROM kinds ORDER BY id", fmt)
    assert copied.copied, "COPY was not planned for these types"
    _same(copied, cursor)
    assert copied.table.record.rows == 6
    assert len(copied.table.record.chunks) > 3
    assert copied.table.column_types == (
        "integer", "integer", "integer", "number", "boolean", "string", "string", "string",
        "string", "string", "string", "time", "string", "string", "any", "any", "string",
        "string", "string", "string", "string", "string", "string", "string", "string",
    )  # fmt: skip
    assert copied.table.binary_columns == frozenset({"raw"})


def test_the_same_rows_read_back_from_both_formats(reader: PostgresSource) -> None:
    csv_file = _write(reader, "SELECT id, txt, raw FROM kinds ORDER BY id", "csv", encode=True)
    jsonl_file = _write(reader, "SELECT id, txt, raw FROM kinds ORDER BY id", "jsonl", encode=True)
    assert csv_file.copied
    assert jsonl_file.copied
    rows = _objects(jsonl_file.data)
    assert rows[0] == {"id": 1, "txt": "plain", "raw": "AP8="}
    assert rows[2]["txt"] == "line\nbreak\r\ncrlf"
    assert rows[3] == {"id": 4, "txt": "", "raw": None}
    assert rows[4]["txt"] == "unicode é ☃ 𝄞 \u2028 tab\there"
    assert len(str(rows[2]["raw"])) > 76  # base64 of 100 bytes, not wrapped as encode() wraps it


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_floats_fall_back_to_the_cursor(reader: PostgresSource, fmt: TableFormat) -> None:
    # Python writes 100.0 and 1e+16, PostgreSQL 100 and 1e+16: COPY is not planned.
    copied, cursor = _both(reader, "SELECT id, f8, f4 FROM floats ORDER BY id", fmt)
    assert not copied.copied
    _same(copied, cursor)
    assert copied.table.column_types == ("integer", "number", "number")
    for encode in (True, False):
        with pytest.raises(UnsupportedValueError, match="non-finite number"):
            _write(reader, "SELECT 'NaN'::float8 AS f", fmt, encode=encode)


@pytest.mark.parametrize(
    ("sql", "planned"),
    [
        pytest.param("SELECT i8 FROM kinds ORDER BY id", True, id="integers"),
        pytest.param("SELECT ok FROM kinds ORDER BY id", True, id="booleans"),
        pytest.param("SELECT raw FROM kinds ORDER BY id", True, id="bytea"),
        pytest.param("SELECT num FROM kinds ORDER BY id", True, id="numeric"),
        pytest.param("SELECT txt FROM kinds ORDER BY id", False, id="text"),
        pytest.param("SELECT fixed FROM kinds ORDER BY id", False, id="bpchar"),
    ],
)
def test_a_lone_csv_column_is_written_as_pythons_csv_writes_it(
    reader: PostgresSource, sql: str, planned: bool
) -> None:
    # An empty lone field is "" (Python's csv); COPY quotes a lone \. that Python does not.
    copied, cursor = _both(reader, sql, "csv")
    assert copied.copied is planned
    _same(copied, cursor)


def test_bound_values_round_trip_exactly(reader: PostgresSource) -> None:
    nasty = "it's \\ $$ $1 '' \"q\" $tag$ E'\\x41' -- /* :x"
    sql = (
        "SELECT :s AS s, :n AS n, :big AS big, :flag AS flag, :nothing AS nothing, "
        "length(:s) AS len, id FROM kinds WHERE id <= :n AND num::text <> :s "
        "AND :ratio < 1 ORDER BY id"
    )
    params: dict[str, JsonScalar] = {
        "s": nasty, "n": 2, "big": 2**40, "flag": True, "nothing": None, "ratio": 0.5,
    }  # fmt: skip
    formats: tuple[TableFormat, ...] = ("csv", "jsonl")
    for fmt in formats:
        copied, cursor = _both(reader, sql, fmt, params)
        assert copied.copied
        _same(copied, cursor)
    rows = _objects(copied.data)
    assert rows[0] == {
        "s": nasty, "n": 2, "big": 2**40, "flag": True, "nothing": None,
        "len": len(nasty), "id": 1,
    }  # fmt: skip


def test_a_hostile_text_cannot_escape_the_copy(writer: PostgresSource, db: Database) -> None:
    escape = "SELECT 1) TO STDOUT; COMMIT; INSERT INTO t VALUES (-1, 'escaped'); COPY (SELECT 1"
    with pytest.raises(QueryFailed):
        _write(writer, escape, "csv", encode=True)
    # Past the catalog's parser too: the server parses the text alone, and refuses it.
    statement = NumberedSql(text=escape, names=())
    with psycopg.connect(writer.conninfo, autocommit=True) as conn:
        conn.execute("BEGIN READ ONLY")
        assert plan_copy(conn, escape, statement, {}, "csv") is None
        assert conn.execute("SELECT 1").fetchone() == (1,)  # back at the savepoint, usable
        conn.execute("ROLLBACK")
        # And the COPY itself goes through the extended protocol: one statement only.
        wrapped = f"COPY (\n{escape}\n) TO STDOUT"
        refused = conn.pgconn.prepare(b"", wrapped.encode())
        assert refused.error_field(ord("C")) == b"42601"
        assert b"multiple commands" in (refused.error_message or b"")
    assert db.scalar("SELECT count(*) FROM t WHERE id = -1") == 0


def test_a_bind_the_server_reads_inside_a_string_is_never_inlined(
    reader: PostgresSource,
) -> None:
    # As if the catalog's tokenizer had placed a bind inside a string literal.
    sql = "SELECT 'a :x b' AS s, :x::text AS v"
    statement = NumberedSql(text="SELECT 'a $1 b' AS s, $1::text AS v", names=("x",))
    sites = bind_sites(sql, statement)
    assert [(site.start, site.name) for site in sites] == [(10, "x"), (22, "x")]
    assert probe_text(statement, sites) == "SELECT 'a $1 b' AS s, $2::text AS v"
    hostile = "' || (SELECT 'leak') || '"
    with psycopg.connect(reader.conninfo, autocommit=True) as conn:
        conn.execute("BEGIN READ ONLY")
        assert plan_copy(conn, sql, statement, {"x": hostile}, "csv") is None
        conn.execute("ROLLBACK")


def test_a_trailing_comment_cannot_swallow_the_closing_parenthesis(
    reader: PostgresSource,
) -> None:
    copied, cursor = _both(reader, "SELECT id, txt FROM kinds ORDER BY id -- the end", "csv")
    assert copied.copied
    _same(copied, cursor)
    statement = copy_statement("SELECT 1 -- x", ("a", "b"), (23, 23), "csv")
    assert statement is not None
    assert "\nSELECT 1 -- x\n)" in statement.as_string()


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
@pytest.mark.parametrize(
    ("max_rows", "max_bytes", "complete"),
    [
        pytest.param(10, None, False, id="max-rows"),
        pytest.param(50_000, None, True, id="max-rows-exactly-all"),
        pytest.param(None, 4000, False, id="max-bytes"),
        pytest.param(None, 3, False, id="max-bytes-below-the-header"),
    ],
)
def test_limits_cut_as_the_cursor_path_cuts(
    reader: PostgresSource,
    db: Database,
    fmt: TableFormat,
    max_rows: int | None,
    max_bytes: int | None,
    complete: bool,
) -> None:
    sql = "SELECT id, name FROM t ORDER BY id"
    limits = {"max_rows": max_rows, "max_bytes": max_bytes}
    copied = _write(reader, sql, fmt, encode=True, **limits)  # type: ignore[arg-type]
    cursor = _write(reader, sql, fmt, encode=False, **limits)  # type: ignore[arg-type]
    assert copied.copied
    _same(copied, cursor)
    assert copied.table.complete is complete
    assert _eventually(lambda: _no_govex_backend(db))


def test_stopping_early_cancels_a_long_copy(reader: PostgresSource, db: Database) -> None:
    started = time.monotonic()
    copied = _write(
        reader, "SELECT generate_series(1, 500000000) AS g", "csv", encode=True, max_rows=5
    )
    assert copied.copied
    assert copied.data == b"g\n1\n2\n3\n4\n5\n"
    assert not copied.table.complete
    assert time.monotonic() - started < 30
    assert _eventually(lambda: _no_govex_backend(db))


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_the_statement_timeout_ends_a_copy_as_timed_out(
    reader: PostgresSource, fmt: TableFormat
) -> None:
    started = time.monotonic()
    with pytest.raises(QueryTimedOut, match="300 ms deadline"):
        _write(reader, "SELECT generate_series(1, 500000000) AS g", fmt, encode=True, timeout=300)
    assert time.monotonic() - started < 20


def test_copy_runs_in_the_calls_read_only_transaction(reader: PostgresSource) -> None:
    settings = (
        "transaction_isolation", "transaction_read_only", "transaction_deferrable",
        "statement_timeout", "row_security", "TimeZone", "client_encoding",
    )  # fmt: skip
    sql = "SELECT " + ", ".join(f"current_setting('{s}') AS \"{s}\"" for s in settings)
    copied = _write(reader, sql, "jsonl", encode=True, exhaustive=True)
    assert copied.copied
    assert json.loads(copied.data) == {
        "transaction_isolation": "serializable",
        "transaction_read_only": "on",
        "transaction_deferrable": "on",
        "statement_timeout": "10s",
        "row_security": "off",
        "TimeZone": "UTC",
        "client_encoding": "UTF8",
    }


def test_errors_in_the_copy_are_the_statements_own(reader: PostgresSource) -> None:
    with pytest.raises(QueryFailed, match=r"SQLSTATE 22012 \(division_by_zero\)"):
        _write(reader, "SELECT id, 1 / (id - 3) AS x FROM t ORDER BY id", "csv", encode=True)
    with pytest.raises(QueryFailed, match=r"SQLSTATE 42P01 \(undefined_table\)"):
        _write(reader, "SELECT id, x FROM missing", "csv", encode=True)


def test_an_empty_result_has_its_header_and_types(reader: PostgresSource) -> None:
    copied, cursor = _both(reader, "SELECT id, ok, day FROM kinds WHERE id < 0", "csv")
    assert copied.copied
    _same(copied, cursor)
    assert copied.data == b"id,ok,day\n"
    assert copied.table.column_types == ("integer", "boolean", "string")  # date: its text


def _objects(jsonl: bytes) -> list[dict[str, object]]:
    """JSON Lines split on LF only (``str.splitlines`` also splits at U+2028)."""
    return [json.loads(line) for line in jsonl.split(b"\n")[:-1]]


def _eventually(check: object, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _no_govex_backend(db: Database) -> bool:
    with psycopg.connect(db.server.dsn(db.name), autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'govex' "
            "AND datname = %s",
            (db.name,),
        ).fetchone()
    return row == (0,)


@pytest.fixture(autouse=True)
def _no_connection_left(db: Database) -> Iterator[None]:
    yield
    assert _eventually(lambda: _no_govex_backend(db))
