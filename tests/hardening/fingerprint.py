"""Fingerprints of everything a statement could change: a database, its server, a folder.

A :class:`Fingerprint` is a mapping of named parts to plain values; :meth:`Fingerprint.diff`
names each part that differs, with both values, so a failing assertion shows what changed.

- :func:`postgres_fingerprint` reads, as the superuser: every table's and materialized
  view's rows (a digest per relation), the relations, functions and roles that exist,
  each sequence's ``last_value``/``is_called``, large objects and their bytes, advisory
  locks, settings stored on roles and databases and in ``postgresql.auto.conf``,
  prepared transactions, replication slots, statistics and relation sizes (what ANALYZE,
  VACUUM or an index rewrite leaves), the database's own flags, the backends the service
  left behind, and whether the canary session is still there.
- :func:`folder_fingerprint` reads every file under a folder (size and SHA-256), with
  SQLite's ``-shm`` files by presence only (readers write read marks there by design).

The transaction-id counter is left out on purpose: autovacuum in any database of the
shared test server moves it. Assigning an id is refused by the reader role instead
(``txid_current``, ``pg_current_xact_id``: the corpus shows it).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

CANARY_APPLICATION = "govex_canary"
CANARY_CHANNEL = "govex_canary"
# Relations outside the system schemas (pg_temp_N included: a temporary table shows there).
_USER_RELATIONS = """
SELECT n.nspname, c.relname, c.relkind, c.oid
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
ORDER BY 1, 2
"""
_QUERIES: dict[str, str] = {
    "functions": """SELECT n.nspname || '.' || p.proname || '(' || oidvectortypes(p.proargtypes)
        || ')' FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1""",
    "roles": """SELECT rolname, rolsuper, rolcreaterole, rolcreatedb, rolcanlogin,
        rolreplication, rolbypassrls, rolconnlimit FROM pg_roles ORDER BY 1""",
    "large_objects": """SELECT oid::bigint, lomowner::regrole::text, md5(lo_get(oid))
        FROM pg_largeobject_metadata ORDER BY 1""",
    "advisory_locks": """SELECT database::bigint, classid::bigint, objid::bigint, objsubid,
        mode, granted FROM pg_locks WHERE locktype = 'advisory' ORDER BY 1, 2, 3, 4, 5""",
    "role_settings": """SELECT coalesce(d.datname, '*'), coalesce(r.rolname, '*'),
        s.setconfig::text FROM pg_db_role_setting s
        LEFT JOIN pg_database d ON d.oid = s.setdatabase
        LEFT JOIN pg_roles r ON r.oid = s.setrole ORDER BY 1, 2""",
    "file_settings": """SELECT sourcefile, name, setting, applied FROM pg_file_settings
        ORDER BY 1, 2""",
    "prepared_transactions": "SELECT gid FROM pg_prepared_xacts ORDER BY 1",
    "replication_slots": "SELECT slot_name, slot_type FROM pg_replication_slots ORDER BY 1",
    "database": """SELECT datname, datallowconn, datconnlimit, datistemplate
        FROM pg_database WHERE datname = current_database()""",
    "statistics": """SELECT c.relname, c.reltuples, c.relpages, c.relallvisible,
        pg_relation_size(c.oid), (SELECT count(*) FROM pg_statistic s WHERE s.starelid = c.oid)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
        AND n.nspname NOT LIKE 'pg_toast%' AND c.relkind IN ('r', 'm', 'i', 'S') ORDER BY 1""",
    # "govex": what service.run_postgres names its connections
    "service_sessions": """SELECT count(*) FROM pg_stat_activity
        WHERE application_name = 'govex'""",
}


@dataclass(frozen=True)
class Fingerprint:
    """Named parts of a state; equal fingerprints mean nothing observable changed."""

    parts: Mapping[str, object]

    def diff(self, after: Fingerprint) -> dict[str, tuple[object, object]]:
        """Each part that differs in ``after``: ``{name: (before, after)}``."""
        names = sorted(set(self.parts) | set(after.parts))
        return {
            n: (self.parts.get(n), after.parts.get(n))
            for n in names
            if self.parts.get(n) != after.parts.get(n)
        }


class Canary:
    """A superuser session that listens on :data:`CANARY_CHANNEL` and must stay alive.

    A statement that ends other sessions, or whose notification escapes its
    transaction, shows up here: :meth:`state` reports the session's pid (``None`` once it
    is gone) and every notification received since the last look.
    """

    def __init__(self, dsn: str) -> None:
        self.conn = psycopg.connect(dsn, autocommit=True, application_name=CANARY_APPLICATION)
        self.conn.execute(f"LISTEN {CANARY_CHANNEL}".encode())
        self.pid = self.conn.info.backend_pid

    def state(self) -> dict[str, object]:
        try:
            pid = self.conn.execute(b"SELECT pg_backend_pid()").fetchone()
            heard = [
                (n.channel, n.payload) for n in self.conn.notifies(timeout=0.001, stop_after=None)
            ]
        except psycopg.OperationalError:
            return {"canary_pid": None, "notifications": []}
        return {"canary_pid": None if pid is None else pid[0], "notifications": heard}

    def close(self) -> None:
        self.conn.close()


def postgres_fingerprint(
    conn: psycopg.Connection[tuple[object, ...]],
    canary: Canary | None = None,
    *,
    settle_s: float = 10.0,
) -> Fingerprint:
    """Everything this module lists for the database ``conn`` (a superuser's, autocommit) is on.

    Waits (up to ``settle_s``) for the service's sessions to end first: a closed
    connection's backend exits just after the client goes, and its session state with it.
    Notifications are read after that, so one a statement committed has arrived by then.
    """
    parts: dict[str, object] = {}
    _wait_for_no_service_session(conn, settle_s)
    relations = conn.execute(_USER_RELATIONS.encode()).fetchall()
    parts["relations"] = [(s, r, k) for s, r, k, _ in relations]
    for schema, name, kind, _ in relations:
        ident = psycopg.sql.Identifier(str(schema), str(name))
        if kind in {"r", "m", "p"}:
            digest = psycopg.sql.SQL(
                "SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), "
                "'')) FROM {} t"
            ).format(ident)
            parts[f"rows {schema}.{name}"] = _one(conn, digest)
        elif kind == "S":
            state = psycopg.sql.SQL("SELECT last_value, is_called FROM {}").format(ident)
            parts[f"sequence {schema}.{name}"] = _one(conn, state)
    for name, query in _QUERIES.items():
        parts[name] = [tuple(row) for row in conn.execute(query.encode()).fetchall()]
    if canary is not None:
        parts.update(canary.state())
    return Fingerprint(parts)


def _one(conn: psycopg.Connection[tuple[object, ...]], query: psycopg.sql.Composed) -> object:
    row = conn.execute(query).fetchone()
    return None if row is None else tuple(row)


def _wait_for_no_service_session(
    conn: psycopg.Connection[tuple[object, ...]], settle_s: float
) -> None:
    deadline = time.monotonic() + settle_s
    query = _QUERIES["service_sessions"].encode()
    while True:
        row = conn.execute(query).fetchone()
        if row is None or row[0] == 0 or time.monotonic() > deadline:
            return  # past the deadline, the fingerprint's service_sessions part says so
        time.sleep(0.02)


def folder_fingerprint(*folders: Path) -> Fingerprint:
    """Every file under ``folders``: size and SHA-256; ``-shm`` files by presence only."""
    parts: dict[str, object] = {}
    for folder in folders:
        for path in sorted(_files(folder)):
            key = f"file {path}"
            if path.name.endswith("-shm"):
                parts[key] = "present"
            else:
                parts[key] = (path.stat().st_size, hashlib.sha256(path.read_bytes()).hexdigest())
    return Fingerprint(parts)


def _files(folder: Path) -> Iterator[Path]:
    if not folder.exists():
        return
    for path in folder.rglob("*"):
        if path.is_file() or path.is_symlink():
            yield path


@contextmanager
def unchanged(take: Callable[[], Fingerprint]) -> Iterator[None]:
    """Assert that ``take()`` gives the same fingerprint after the block as before it."""
    before = take()
    yield
    changed = before.diff(take())
    assert not changed, f"changed: {changed}"
