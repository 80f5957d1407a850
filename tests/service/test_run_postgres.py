"""The PostgreSQL read-only boundary on a real server, with the static SQL check bypassed.

Statements go to :func:`run_postgres_query` directly, as if ``catalog.sqlcheck`` had let
them through. Three roles show which layer refuses what:

- a *writer* role, granted writes, shows the read-only transaction and the extended
  protocol on their own;
- a *plain* role (SELECT only, nothing revoked) shows what READ ONLY lets through, and
  that none of it survives the call;
- the *documented* reader role, made by the SQL block of docs/operations.md as written,
  shows each side effect refused.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from catalog.model import JsonScalar
from service.errors import QueryFailed, QueryTimedOut, SourceUnavailable
from service.run_postgres import run_postgres_query
from service.sources import PostgresSource, parse_source
from tests.pg_harness import PostgresServer

DOCS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
PASSWORD = "reader-Pass-9f2c"  # the harness trusts local connections; the URL still carries it
ROWS = 5000
TIMEOUT_MS = 5000


@dataclass(frozen=True)
class Database:
    server: PostgresServer
    name: str

    def superuser(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.server.dsn(self.name), autocommit=True)

    def scalar(self, sql: str, *params: object) -> object:
        with self.superuser() as conn:
            row = conn.execute(sql.encode(), params or None).fetchone()
        assert row is not None
        return row[0]

    def role(self, grants: str) -> PostgresSource:
        """A new login role with ``grants`` (``{role}`` is its name) and its source."""
        role = f"r_{uuid.uuid4().hex[:12]}"
        self.server.execute(
            f"CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}'; " + grants.format(role=role),
            self.name,
        )
        return _source(self.server.url(self.name, role, PASSWORD))


def _source(url: str) -> PostgresSource:
    source = parse_source("sales", url)
    assert isinstance(source, PostgresSource)
    return source


@pytest.fixture
def db(postgres: PostgresServer) -> Iterator[Database]:
    """A fresh database with tables; after the test, no govex connection is left on it."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    postgres.create_database(name)
    postgres.execute(
        "CREATE TABLE t (id int PRIMARY KEY, name text); "
        "INSERT INTO t SELECT g, 'n' || g FROM generate_series(0, 4999) g; "  # ROWS rows
        "CREATE TABLE kinds (id int PRIMARY KEY, amount numeric(10, 2), day date, "
        "at timestamptz, doc jsonb, uid uuid, nums int[], raw bytea, ratio float8, ok bool, "
        "note text); "
        "INSERT INTO kinds VALUES (1, 12.50, '2024-02-29', '2024-03-01 01:30:00+02', "
        "'{\"a\": [1, 2]}', '00000000-0000-0000-0000-00000000002a', '{1,2}', '\\x00ff', "
        "0.1, true, NULL)",
        name,
    )
    database = Database(postgres, name)
    yield database
    assert _eventually(lambda: _no_govex_backend(database))


@pytest.fixture
def plain(db: Database) -> PostgresSource:
    """SELECT on the tables and nothing revoked: what READ ONLY alone lets through."""
    return db.role("GRANT SELECT ON t, kinds TO {role}")


@pytest.fixture
def writer(db: Database) -> PostgresSource:
    """A role that may write: only the transaction and the protocol stop it."""
    return db.role(
        "GRANT SELECT, INSERT, UPDATE, DELETE ON t TO {role}; "
        "GRANT CREATE ON SCHEMA public TO {role}"
    )


def _documented_block() -> str:
    text = DOCS.read_text(encoding="utf-8")
    found = re.search(r"<!-- reader-role-sql:[^>]*-->\n```sql\n(.*?)```", text, re.DOTALL)
    assert found is not None, "docs/operations.md lost its reader-role-sql block"
    return found.group(1)


@pytest.fixture
def documented(db: Database) -> PostgresSource:
    """The reader role exactly as docs/operations.md makes it (own role and database names)."""
    role = f"govex_reader_{uuid.uuid4().hex[:12]}"
    block = (
        _documented_block()
        .replace("govex_reader", role)
        .replace("DATABASE sales", f'DATABASE "{db.name}"')
        .replace("'change-me'", f"'{PASSWORD}'")
    )
    db.server.execute(block, db.name)  # as the superuser, as the docs say
    return _source(db.server.url(db.name, role, PASSWORD))


def _run(
    source: PostgresSource,
    sql: str,
    params: dict[str, JsonScalar] | None = None,
    timeout_ms: int = TIMEOUT_MS,
    *,
    exhaustive: bool = False,
) -> tuple[tuple[str, ...], list[tuple[object, ...]]]:
    with run_postgres_query(
        source,
        sql,
        params or {},
        timeout_ms,
        exhaustive=exhaustive,
    ) as result:
        return result.columns, list(result.rows)


def _eventually(check: Callable[[], bool], seconds: float = 10.0) -> bool:
    """A closed connection's backend exits just after the client goes: poll for it."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _no_govex_backend(db: Database) -> bool:
    return db.scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'govex'") == 0


# --- rows ------------------------------------------------------------------------------------


def test_rows_stream_in_order_with_bound_parameters(plain: PostgresSource) -> None:
    sql = "SELECT id, name FROM t WHERE id < :n AND name LIKE 'n%' ORDER BY id"
    with run_postgres_query(plain, sql, {"n": 3}, TIMEOUT_MS) as result:
        assert result.columns == ("id", "name")
        assert not isinstance(result.rows, list)
        assert list(result.rows) == [(0, "n0"), (1, "n1"), (2, "n2")]
    columns, rows = _run(plain, "SELECT id, name FROM t ORDER BY id")
    assert columns == ("id", "name")
    assert rows == [(i, f"n{i}") for i in range(ROWS)]


def test_bound_values_are_data_never_sql(plain: PostgresSource, db: Database) -> None:
    hostile = "x'); DROP TABLE t; --"
    columns, rows = _run(
        plain,
        "SELECT :s AS s, :n + 1 AS next, :n AS again, :flag AS flag, :nothing AS nothing",
        {"s": hostile, "n": 41, "flag": True, "nothing": None},
    )
    assert columns == ("s", "next", "again", "flag", "nothing")
    assert rows == [(hostile, 42, 41, True, None)]
    assert db.scalar("SELECT count(*) FROM t") == ROWS


def test_a_missing_parameter_value_fails_before_connecting(plain: PostgresSource) -> None:
    with pytest.raises(QueryFailed, match="no value for the parameters n"):
        _run(plain, "SELECT id FROM t WHERE id = :n ORDER BY id")


def test_an_empty_result_keeps_its_columns(plain: PostgresSource) -> None:
    assert _run(plain, "SELECT id, name FROM t WHERE id < :n ORDER BY id", {"n": -1}) == (
        ("id", "name"),
        [],
    )


def test_rows_stream_and_stopping_early_ends_the_statement(
    plain: PostgresSource, db: Database
) -> None:
    # A hundred million rows: read as a whole this would not fit the test's time or memory.
    started = time.monotonic()
    with run_postgres_query(
        plain, "SELECT generate_series(1, 100000000) AS g", {}, 60_000
    ) as result:
        first = [row for _, row in zip(range(3), result.rows, strict=False)]
    assert first == [(1,), (2,), (3,)]
    assert time.monotonic() - started < 30
    assert _eventually(lambda: _no_govex_backend(db))


def test_values_arrive_as_packet_values_other_types_as_exact_text(plain: PostgresSource) -> None:
    columns, rows = _run(plain, "SELECT * FROM kinds ORDER BY id")
    assert columns == (
        "id", "amount", "day", "at", "doc", "uid", "nums", "raw", "ratio", "ok", "note"
    )  # fmt: skip
    assert rows == [
        (
            1,
            "12.50",  # numeric: exact, not a float
            "2024-02-29",
            "2024-02-29 23:30:00+00",  # UTC whatever the server's TimeZone
            '{"a": [1, 2]}',
            "00000000-0000-0000-0000-00000000002a",
            "{1,2}",
            b"\x00\xff",
            0.1,
            True,
            None,
        )
    ]


# --- the transaction and the protocol ----------------------------------------------------------


def test_each_call_sets_its_timeouts_and_runs_read_only(plain: PostgresSource) -> None:
    settings = (
        "transaction_isolation", "transaction_read_only", "transaction_deferrable",
        "statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout",
        "row_security", "TimeZone", "DateStyle",
    )  # fmt: skip
    sql = "SELECT " + ", ".join(f"current_setting('{s}')" for s in settings)
    _, rows = _run(plain, sql, timeout_ms=1500)
    assert dict(zip(settings, rows[0], strict=True)) == {
        "transaction_isolation": "read committed",
        "transaction_read_only": "on",
        "transaction_deferrable": "off",
        "statement_timeout": "1500ms",
        "lock_timeout": "1500ms",
        "idle_in_transaction_session_timeout": "1500ms",
        "row_security": "on",
        "TimeZone": "UTC",
        "DateStyle": "ISO, YMD",
    }
    _, rows = _run(plain, sql, timeout_ms=2500, exhaustive=True)
    assert dict(zip(settings, rows[0], strict=True)) == {
        "transaction_isolation": "serializable",
        "transaction_read_only": "on",
        "transaction_deferrable": "on",
        "statement_timeout": "2500ms",
        "lock_timeout": "2500ms",
        "idle_in_transaction_session_timeout": "2500ms",
        "row_security": "off",
        "TimeZone": "UTC",
        "DateStyle": "ISO, YMD",
    }


def test_exhaustive_entries_fail_where_row_security_would_hide_rows(db: Database) -> None:
    source = db.role(
        "GRANT SELECT ON t TO {role}; ALTER TABLE t ENABLE ROW LEVEL SECURITY; "
        "CREATE POLICY few ON t FOR SELECT TO {role} USING (id < 10)"
    )
    sql = "SELECT count(*) FROM t"
    assert _run(source, sql)[1] == [(10,)]  # scoped: the policy filters silently
    with pytest.raises(QueryFailed, match=r"SQLSTATE 42501 \(insufficient_privilege\)"):
        _run(source, sql, exhaustive=True)  # exhaustive: zero rows must mean none


def test_multi_statement_text_is_refused_by_the_extended_protocol(
    writer: PostgresSource, db: Database
) -> None:
    escape = "SELECT 1; COMMIT; INSERT INTO t VALUES (-1, 'escaped')"
    with pytest.raises(QueryFailed, match=r"SQLSTATE 42601 \(syntax_error\)") as caught:
        _run(writer, escape)
    cause = caught.value.__cause__
    assert isinstance(cause, psycopg.errors.SyntaxError)
    assert str(cause) == "cannot insert multiple commands into a prepared statement"
    assert db.scalar("SELECT count(*) FROM t WHERE id = -1") == 0


def test_the_simple_protocol_would_let_that_text_escape_the_read_only_transaction(
    writer: PostgresSource, db: Database
) -> None:
    # Why the runner never sends the simple protocol: COMMIT ends READ ONLY, the INSERT commits.
    with psycopg.connect(writer.conninfo, autocommit=True) as conn:
        conn.execute("BEGIN READ ONLY")
        conn.execute(b"SELECT 1; COMMIT; INSERT INTO t VALUES (-1, 'escaped')")
    assert db.scalar("SELECT count(*) FROM t WHERE id = -1") == 1


@pytest.mark.parametrize(
    "statement",
    [
        pytest.param("INSERT INTO t VALUES (-1, 'x')", id="insert"),
        pytest.param("UPDATE t SET name = 'x'", id="update"),
        pytest.param("DELETE FROM t", id="delete"),
        pytest.param("CREATE TABLE u (x int)", id="create-table"),
        pytest.param("CREATE TEMP TABLE u (x int)", id="create-temp-table"),
        pytest.param("WITH d AS (DELETE FROM t RETURNING id) SELECT count(*) FROM d", id="cte"),
        pytest.param("SELECT id FROM t ORDER BY id LIMIT 1 FOR UPDATE", id="for-update"),
    ],
)
def test_writes_fail_inside_the_read_only_transaction(
    writer: PostgresSource, db: Database, statement: str
) -> None:
    with pytest.raises(QueryFailed, match=r"SQLSTATE 25006 \(read_only_sql_transaction\)"):
        _run(writer, statement)
    assert db.scalar("SELECT count(*) FROM t") == ROWS
    assert db.scalar("SELECT count(*) FROM pg_tables WHERE tablename = 'u'") == 0


def test_the_statement_timeout_stops_a_long_statement(plain: PostgresSource) -> None:
    started = time.monotonic()
    with pytest.raises(QueryTimedOut, match="300 ms deadline") as caught:
        _run(plain, "SELECT pg_sleep(30)", timeout_ms=300)
    assert caught.value.timeout_ms == 300
    assert time.monotonic() - started < 10


def test_a_lock_wait_ends_at_the_deadline(plain: PostgresSource, db: Database) -> None:
    with db.superuser() as holder:
        holder.execute("BEGIN")
        holder.execute("LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
        with pytest.raises(QueryTimedOut, match="300 ms deadline"):
            _run(plain, "SELECT count(*) FROM t", timeout_ms=300)
        holder.execute("ROLLBACK")


def test_a_superuser_source_is_refused_before_anything_runs(db: Database) -> None:
    source = _source(db.server.url(db.name))
    with pytest.raises(SourceUnavailable, match="connects as a superuser"):
        _run(source, "SELECT 1")


def test_connection_errors_never_show_the_password(db: Database) -> None:
    missing = _source(db.server.url("no_such_db", "nobody", PASSWORD))
    with pytest.raises(SourceUnavailable, match="does not exist") as caught:
        _run(missing, "SELECT 1")
    assert PASSWORD not in caught.value.message
    assert "nobody:***@" in caught.value.message
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__
    # libpq repeats a badly percent-encoded token, the password here, in its message.
    garbled = _source(db.server.url(db.name, "nobody", PASSWORD + "%zz"))
    with pytest.raises(SourceUnavailable, match="percent-encoded") as caught:
        _run(garbled, "SELECT 1")
    assert PASSWORD not in caught.value.message


# --- side effects: what READ ONLY lets through, and why none of it survives --------------------


def test_an_advisory_lock_taken_in_a_call_is_gone_after_it(
    plain: PostgresSource, db: Database
) -> None:
    held = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242"
    _, rows = _run(plain, f"SELECT pg_advisory_lock(4242)::text, ({held}) AS held")
    assert rows == [("", 1)]  # READ ONLY let the session lock through, and ROLLBACK keeps it
    assert _eventually(lambda: db.scalar(held) == 0)  # the closed connection released it


def test_a_session_setting_made_in_a_call_is_gone_in_the_next(plain: PostgresSource) -> None:
    assert _run(plain, "SELECT current_setting('work_mem')")[1] == [("4MB",)]
    _, rows = _run(plain, "SELECT set_config('work_mem', '1234kB', false)")
    assert rows == [("1234kB",)]
    assert _run(plain, "SELECT current_setting('work_mem')")[1] == [("4MB",)]


@pytest.mark.parametrize(
    "statement",
    [
        pytest.param("SET work_mem = '1234kB'", id="set"),
        pytest.param("SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE", id="read-write"),
        pytest.param("COMMIT", id="commit"),
        pytest.param("LISTEN govex_test", id="listen"),
    ],
)
def test_a_statement_without_rows_fails_and_leaves_nothing_behind(
    plain: PostgresSource, statement: str
) -> None:
    # Through the extended protocol it runs alone; psycopg then finds no rows and refuses.
    with pytest.raises(QueryFailed, match=r"driver refused \(ProgrammingError\)"):
        _run(plain, statement)
    sql = "SELECT current_setting('work_mem'), current_setting('transaction_read_only')"
    assert _run(plain, sql)[1] == [("4MB", "on")]


def test_a_notification_sent_in_a_call_is_never_delivered(
    plain: PostgresSource, db: Database
) -> None:
    with db.superuser() as listener:
        listener.execute("LISTEN govex_test")
        assert _run(plain, "SELECT pg_notify('govex_test', 'hello')::text")[1] == [("",)]
        assert list(listener.notifies(timeout=0.5, stop_after=1)) == []


def test_a_large_object_made_in_a_call_is_rolled_back(plain: PostgresSource, db: Database) -> None:
    _, rows = _run(plain, "SELECT lo_from_bytea(0, 'x') > 0")
    assert rows == [(True,)]
    assert db.scalar("SELECT count(*) FROM pg_largeobject_metadata") == 0


def test_no_connection_outlives_its_call(plain: PostgresSource, db: Database) -> None:
    for _ in range(3):
        _run(plain, "SELECT 1")
    with pytest.raises(QueryFailed):
        _run(plain, "SELECT 1 / 0")
    assert _eventually(lambda: _no_govex_backend(db))


# --- the documented reader role --------------------------------------------------------------


def test_the_documented_role_reads_its_tables(documented: PostgresSource, db: Database) -> None:
    assert _run(documented, "SELECT count(*) FROM t")[1] == [(ROWS,)]
    role = psycopg.conninfo.conninfo_to_dict(documented.conninfo)["user"]
    powers = (
        "SELECT rolsuper OR rolcreatedb OR rolcreaterole OR rolbypassrls OR rolreplication "
        "FROM pg_roles WHERE rolname = %s"
    )
    assert db.scalar(powers, role) is False
    with psycopg.connect(documented.conninfo) as conn:
        row = conn.execute("SHOW default_transaction_read_only").fetchone()
    assert row == ("on",)


@pytest.mark.parametrize(
    ("statement", "sqlstate"),
    [
        pytest.param("SELECT pg_advisory_lock(1)", "42501", id="advisory-lock"),
        pytest.param("SELECT pg_try_advisory_lock(1)", "42501", id="try-advisory-lock"),
        pytest.param("SELECT pg_advisory_xact_lock(1, 2)", "42501", id="advisory-xact-lock"),
        pytest.param("SELECT set_config('work_mem', '1MB', false)", "42501", id="set-config"),
        pytest.param("SELECT pg_notify('c', 'x')", "42501", id="notify"),
        pytest.param("SELECT lo_create(0)", "42501", id="lo-create"),
        pytest.param("SELECT lo_from_bytea(0, 'x')", "42501", id="lo-from-bytea"),
        pytest.param("SELECT lo_import('/etc/hostname')", "42501", id="lo-import"),
        pytest.param("SELECT lo_export(1, '/tmp/x')", "42501", id="lo-export"),
        pytest.param("SELECT pg_logical_emit_message(false, 'p', 'm')", "42501", id="wal-message"),
        pytest.param("SELECT txid_current()", "42501", id="txid"),
        pytest.param("SELECT pg_sleep(0)", "42501", id="sleep"),
        pytest.param("SELECT pg_terminate_backend(pg_backend_pid())", "42501", id="terminate"),
        pytest.param("INSERT INTO t VALUES (-1, 'x')", "25006", id="insert"),
        pytest.param("UPDATE t SET name = 'x'", "25006", id="update"),
        pytest.param("CREATE TABLE u (x int)", "25006", id="create-table"),
    ],
)
def test_the_documented_role_refuses_each_side_effect(
    documented: PostgresSource, db: Database, statement: str, sqlstate: str
) -> None:
    with pytest.raises(QueryFailed, match=f"SQLSTATE {sqlstate} ") as caught:
        _run(documented, statement)
    assert isinstance(caught.value.__cause__, psycopg.Error)
    assert db.scalar("SELECT count(*) FROM t") == ROWS
    assert db.scalar("SELECT count(*) FROM pg_largeobject_metadata") == 0


@pytest.mark.parametrize(
    "statement",
    [
        pytest.param("INSERT INTO t VALUES (-1, 'x')", id="insert"),
        pytest.param("UPDATE t SET name = 'x'", id="update"),
        pytest.param("CREATE TABLE u (x int)", id="create-table"),
    ],
)
def test_the_documented_role_cannot_write_even_outside_govex_transaction(
    documented: PostgresSource, db: Database, statement: str
) -> None:
    # Its grants, not only READ ONLY: a read-write transaction of its own is refused too.
    with psycopg.connect(documented.conninfo, autocommit=True) as conn:
        conn.execute("SET default_transaction_read_only = off")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement.encode())
    assert db.scalar("SELECT count(*) FROM t") == ROWS
