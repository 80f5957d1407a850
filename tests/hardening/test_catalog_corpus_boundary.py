"""The adversarial corpus at the run boundary, with the static check bypassed: nothing changes.

Each statement of ``corpus/mutating.toml`` goes straight to the real runners (the test-only
way past ``catalog.sqlcheck``: see :mod:`tests.hardening.corpus_world`) against a real
PostgreSQL 15 shop database, through the documented reader role, by both of the runner's
paths (its cursor, and its ``COPY ... TO STDOUT`` plan for CSV and JSON Lines), and against
real SQLite files in rollback-journal and WAL mode. Around each run a fingerprint
(:mod:`tests.hardening.fingerprint`) must not change: rows, sequences, large objects,
advisory locks, stored settings, statistics, the canary session and its notifications, the
session the next call gets, and the files in the source's folder and the folder the
statement aims at. The refusal must be the one the corpus names.

``corpus/known_good.toml`` runs through the same boundary and must give the rows the engine
gives the tables' owner directly, the same rows on both engines where the corpus says so,
and the rows it spells out.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql as pgsql

from catalog.binds import numbered_binds
from catalog.model import JsonScalar
from service.run_postgres import _OUTPUT_SETTINGS, _adapters
from service.sqlite_readers import SqliteReaders
from tests.hardening.corpus_data import RAN, KnownGood, Mutating, known_good, mutating
from tests.hardening.corpus_world import Outcome, PgShop, SqliteShop, run_postgres, run_sqlite
from tests.hardening.fingerprint import Fingerprint
from tests.pg_harness import PostgresServer

PG_STATEMENTS = [m for m in mutating() if m.engine == "postgresql"]
SQLITE_STATEMENTS = [m for m in mutating() if m.engine == "sqlite"]
PG_GOOD = [q for q in known_good() if "postgresql" in q.engines]
SQLITE_GOOD = [q for q in known_good() if "sqlite" in q.engines]
BOTH_GOOD = [q for q in known_good() if q.same_rows]
PATHS = ("cursor", "copy")
MODES = ("rollback", "wal")

Rows = list[tuple[object, ...]]


class Tracked:
    """A world and its fingerprint when last looked at: one new look per test, not two.

    A test's ``after`` is the next test's ``before``, so a test that changed something
    fails alone, and the next one starts from the state it left.
    """

    def __init__(self, take: Callable[[], Fingerprint]) -> None:
        self.take = take
        self.last: Fingerprint | None = None

    def before(self) -> Fingerprint:
        return self.last if self.last is not None else self.take()

    def after(self) -> Fingerprint:
        self.last = self.take()
        return self.last


@pytest.fixture(scope="module")
def pg_shop(postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgShop]:
    shop = PgShop.create(postgres, tmp_path_factory.mktemp("pg-var"))
    yield shop
    shop.close()


@pytest.fixture(scope="module")
def pg_tracked(pg_shop: PgShop) -> Tracked:
    return Tracked(pg_shop.fingerprint)


@pytest.fixture(scope="module")
def sqlite_shops(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SqliteShop]:
    shops = {
        mode: SqliteShop.create(tmp_path_factory.mktemp(f"sqlite-{mode}"), wal=mode == "wal")
        for mode in MODES
    }
    # A WAL source gains its -wal and -shm files on its first read (see the test below):
    # read it once, so the corpus compares what the statements do, not that first read.
    assert run_sqlite(shops["wal"].path, "SELECT count(*) FROM customers").ran
    return shops


@pytest.fixture(scope="module")
def sqlite_tracked(sqlite_shops: dict[str, SqliteShop]) -> dict[str, Tracked]:
    return {mode: Tracked(shop.fingerprint) for mode, shop in sqlite_shops.items()}


def _assert_outcome(record: Mutating, outcome: Outcome, *, copy: bool = False) -> None:
    expected = record.expected(copy=copy)
    if expected == RAN:
        assert outcome.ran, f"{record.id}: {outcome.error}"
    else:
        assert outcome.error is not None, f"{record.id} ran: {outcome.rows}"
        assert expected in outcome.error


# --- the mutating corpus -------------------------------------------------------------------------


def _bounded(record: Mutating, path: str) -> bool:
    """Whether ``make test`` runs ``record`` by ``path``; ``make soak`` runs every pair.

    ``make test`` runs the statements not marked ``soak`` through the cursor path, and
    through the COPY path those whose refusal differs there (``boundary_copy``): the runner
    wraps a statement in ``COPY (...)`` only to plan it, and falls back to the cursor when
    the plan fails, so for the others the COPY path repeats what the cursor path showed.
    """
    if record.soak:
        return False
    return path == "cursor" or record.boundary_copy is not None


PG_RUNS = [
    pytest.param(
        record,
        path,
        id=f"{record.id}-{path}",
        marks=() if _bounded(record, path) else (pytest.mark.soak,),
    )
    for record in PG_STATEMENTS
    for path in PATHS
]


@pytest.mark.parametrize(("record", "path"), PG_RUNS)
def test_a_mutating_statement_changes_nothing_through_the_postgres_boundary(
    pg_shop: PgShop, pg_tracked: Tracked, record: Mutating, path: str
) -> None:
    before = pg_tracked.before()
    outcome = run_postgres(
        pg_shop.source,
        record.text(str(pg_shop.var)),
        encode="csv" if path == "copy" else None,
    )
    changed = before.diff(pg_tracked.after())
    _assert_outcome(record, outcome, copy=path == "copy")
    assert changed == {}


@pytest.fixture(scope="module")
def kept_readers() -> Iterator[SqliteReaders]:
    """One set of kept connections for the whole corpus: each statement runs after the rest."""
    readers = SqliteReaders()
    yield readers
    readers.close()


@pytest.mark.parametrize("connection", ["fresh", "kept"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "record",
    [
        pytest.param(m, id=m.id, marks=(pytest.mark.soak,) if m.soak else ())
        for m in SQLITE_STATEMENTS
    ],
)
def test_a_mutating_statement_changes_nothing_through_the_sqlite_boundary(
    sqlite_shops: dict[str, SqliteShop],
    sqlite_tracked: dict[str, Tracked],
    kept_readers: SqliteReaders,
    record: Mutating,
    mode: str,
    connection: str,
) -> None:
    shop, tracked = sqlite_shops[mode], sqlite_tracked[mode]
    before = tracked.before()
    readers = kept_readers if connection == "kept" else None
    outcome = run_sqlite(shop.path, record.text(str(shop.var)), readers=readers)
    changed = before.diff(tracked.after())
    _assert_outcome(record, outcome)
    assert changed == {}


def test_a_wal_source_gains_only_its_empty_wal_and_shm_on_its_first_read(tmp_path: Path) -> None:
    # SQLite needs a WAL database's -wal and -shm files to coordinate with writers. When no
    # connection has the file open they are gone; a read-only reader creates them and cannot
    # remove them (that needs a write lock), and removing them from outside could corrupt a
    # writer that opens meanwhile. So the one trace a read leaves: those two files, the -wal
    # empty. The database's bytes never change.
    shop = SqliteShop.create(tmp_path, wal=True)
    folder = shop.path.parent
    assert sorted(p.name for p in folder.iterdir()) == ["shop.sqlite"]
    database = shop.path.read_bytes()
    assert run_sqlite(shop.path, "SELECT count(*) AS n FROM orders").rows == ((200,),)
    assert sorted(p.name for p in folder.iterdir()) == [
        "shop.sqlite",
        "shop.sqlite-shm",
        "shop.sqlite-wal",
    ]
    assert (folder / "shop.sqlite-wal").stat().st_size == 0
    assert shop.path.read_bytes() == database


def test_a_rollback_journal_source_keeps_no_journal_after_a_refused_write(tmp_path: Path) -> None:
    shop = SqliteShop.create(tmp_path, wal=False)
    before = shop.fingerprint()
    assert run_sqlite(shop.path, "DELETE FROM order_items").error is not None
    assert run_sqlite(shop.path, "SELECT count(*) AS n FROM order_items").ran
    assert shop.fingerprint() == before
    assert [p.name for p in shop.path.parent.iterdir()] == ["shop.sqlite"]


# --- the known-good corpus -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def pg_owner(pg_shop: PgShop) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """The tables' owner, with the runner's output settings and value loaders: the oracle."""
    with psycopg.connect(pg_shop.dsn, autocommit=True, context=_adapters()) as conn:
        for name, value in _OUTPUT_SETTINGS:
            conn.execute(
                pgsql.SQL("SET {} = {}").format(pgsql.Identifier(name), pgsql.Literal(value))
            )
        yield conn


def _owner_rows(
    conn: psycopg.Connection[tuple[object, ...]], sql: str, params: dict[str, JsonScalar]
) -> Rows:
    statement = numbered_binds(sql)
    cursor = psycopg.RawCursor(conn)
    return cursor.execute(statement.text, statement.values(params)).fetchall()


def _sqlite_rows(path: Path, sql: str, params: dict[str, JsonScalar]) -> Rows:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def _expect(record: KnownGood, rows: tuple[tuple[object, ...], ...]) -> None:
    if record.expect is not None:
        assert [list(row) for row in rows] == record.expect


@pytest.mark.parametrize("record", PG_GOOD, ids=[q.id for q in PG_GOOD])
def test_a_known_good_query_gives_the_owners_rows_through_the_postgres_boundary(
    pg_shop: PgShop, pg_owner: psycopg.Connection[tuple[object, ...]], record: KnownGood
) -> None:
    text = record.text("postgresql")
    assert text is not None
    params: dict[str, JsonScalar] = dict(record.params)
    outcome = run_postgres(pg_shop.source, text, params=params)
    assert outcome.rows is not None, outcome.error
    assert list(outcome.rows) == _owner_rows(pg_owner, text, params)
    _expect(record, outcome.rows)


@pytest.mark.parametrize(
    "record",
    [pytest.param(q, id=q.id, marks=() if q.params else (pytest.mark.soak,)) for q in PG_GOOD],
)
def test_a_known_good_query_runs_through_the_postgres_copy_path(
    pg_shop: PgShop, record: KnownGood
) -> None:
    # The COPY path inlines the bound values as literals: queries with parameters run in
    # `make test`, the rest in `make soak`.
    text = record.text("postgresql")
    assert text is not None
    params: dict[str, JsonScalar] = dict(record.params)
    rows = run_postgres(pg_shop.source, text, params=params)
    encoded = run_postgres(pg_shop.source, text, params=params, encode="csv")
    assert rows.rows is not None, rows.error
    assert encoded.rows is not None, encoded.error
    assert len(encoded.rows) == len(rows.rows)  # one CSV line per row


@pytest.mark.parametrize("record", SQLITE_GOOD, ids=[q.id for q in SQLITE_GOOD])
def test_a_known_good_query_gives_the_owners_rows_through_the_sqlite_boundary(
    sqlite_shops: dict[str, SqliteShop], record: KnownGood
) -> None:
    text = record.text("sqlite")
    assert text is not None
    params: dict[str, JsonScalar] = dict(record.params)
    path = sqlite_shops["rollback"].path
    outcome = run_sqlite(path, text, params=params)
    assert outcome.rows is not None, outcome.error
    assert list(outcome.rows) == _sqlite_rows(path, text, params)
    _expect(record, outcome.rows)


@pytest.mark.parametrize("record", BOTH_GOOD, ids=[q.id for q in BOTH_GOOD])
def test_a_known_good_query_gives_the_same_rows_on_both_engines(
    pg_shop: PgShop, sqlite_shops: dict[str, SqliteShop], record: KnownGood
) -> None:
    params: dict[str, JsonScalar] = dict(record.params)
    pg_text, sqlite_text = record.text("postgresql"), record.text("sqlite")
    assert pg_text is not None
    assert sqlite_text is not None
    on_postgres = run_postgres(pg_shop.source, pg_text, params=params)
    on_sqlite = run_sqlite(sqlite_shops["wal"].path, sqlite_text, params=params)
    assert on_postgres.rows is not None, on_postgres.error
    assert on_postgres.rows == on_sqlite.rows
    assert on_postgres.rows  # a comparison of two empty results would prove nothing
