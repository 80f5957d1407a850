"""SQLite result column types from the declared types of the columns they come from (I/O).

Python's ``sqlite3`` does not expose ``sqlite3_column_decltype``, so the statement's
outermost ``SELECT`` is read with sqlglot: an output column that is a table's column
(by name, qualified, or from ``*``) takes that column's declared type from the
database's schema (``pragma_table_info``, read on a connection of its own, read-only
like the statement's); a ``CAST`` takes its target type; ``count(...)`` is an integer.
Anything else (an expression, a subquery's column, a view's, a compound select)
states nothing, and the values decide.

A declared type maps by SQLite's affinity rules: ``INT`` -> integer; ``CHAR``,
``CLOB``, ``TEXT`` -> string; ``BLOB`` -> bytes (binary); ``REAL``, ``FLOA``,
``DOUB`` -> number. NUMERIC affinity (``DECIMAL``, ``BOOLEAN``, ``DATE``, ...) states
nothing: such a column holds integers, reals or text. SQLite does not enforce declared
types, so the writer keeps one only where the values agree
(:mod:`service.packets.columns`).
"""

from __future__ import annotations

import functools
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from service.packets.columns import ColumnType

if TYPE_CHECKING:
    from collections.abc import Sequence

_NOTHING: None = None


class _UnknownWidth(Exception):
    """Private: a ``*`` over a source whose columns are unknown (a subquery, a CTE)."""


def affinity_type(declared: str) -> ColumnType | None:
    """The packet column type of SQLite's affinity for the declared type ``declared``."""
    text = declared.upper()
    if "INT" in text:
        return ColumnType("integer", int)
    if any(part in text for part in ("CHAR", "CLOB", "TEXT")):
        return ColumnType("string", str)
    if "BLOB" in text:
        return ColumnType("string", bytes)
    if any(part in text for part in ("REAL", "FLOA", "DOUB")):
        return ColumnType("number", float)
    return _NOTHING


def declared_types(
    path: Path, sql: str, columns: Sequence[str], *, schema_version: int
) -> tuple[ColumnType | None, ...]:
    """One type per result column of ``sql`` (``None`` where the schema says nothing).

    ``schema_version`` (SQLite's ``PRAGMA schema_version``, read in the statement's own
    snapshot) lets the answer be reused: the same statement over the same file (device,
    inode) at the same schema version has the same declared types.
    """
    try:
        stat = path.stat()
    except OSError:
        return tuple(_NOTHING for _ in columns)
    return _declared_types(path, stat.st_dev, stat.st_ino, schema_version, sql, tuple(columns))


@functools.lru_cache(maxsize=256)
def _declared_types(
    path: Path, _dev: int, _ino: int, _schema_version: int, sql: str, columns: tuple[str, ...]
) -> tuple[ColumnType | None, ...]:
    """Private: :func:`declared_types`, worked out once per cache key."""
    nothing = tuple(_NOTHING for _ in columns)
    parsed = _outer_select(sql)
    if parsed is None:
        return nothing
    tree, tables = parsed
    schema = _Schema(path)
    try:
        found: list[ColumnType | None] = []
        for projection in tree.expressions:
            found += _projection_types(projection.unalias(), tables, schema)
    except (_UnknownWidth, sqlite3.Error):
        return nothing
    finally:
        schema.close()
    return tuple(found) if len(found) == len(columns) else nothing


@functools.lru_cache(maxsize=256)
def _outer_select(sql: str) -> tuple[exp.Select, dict[str, str | None]] | None:
    """The statement when it is a plain ``SELECT``, and its sources (see :func:`_tables`).

    Memoized: a catalog's SQL repeats call after call, and callers only read the tree
    and the sources, never change them, so one parse serves every call.
    """
    try:
        tree = sqlglot.parse_one(sql, read="sqlite")
    except SqlglotError:
        return None
    return (tree, _tables(tree)) if isinstance(tree, exp.Select) else None


def _tables(select: exp.Select) -> dict[str, str | None]:
    """Source alias -> table name, in FROM and JOIN order; ``None`` for a subquery or a CTE."""
    ctes = {cte.alias_or_name for cte in select.find_all(exp.CTE)}
    sources: list[exp.Expression] = []
    if (from_ := select.args.get("from_") or select.args.get("from")) is not None:
        sources.append(from_.this)
    sources += [join.this for join in select.args.get("joins") or []]
    tables: dict[str, str | None] = {}
    for source in sources:
        real = isinstance(source, exp.Table) and not source.db and source.name not in ctes
        tables[source.alias_or_name] = source.name if real else None
    return tables


def _projection_types(
    projection: exp.Expression, tables: dict[str, str | None], schema: _Schema
) -> list[ColumnType | None]:
    if isinstance(projection, exp.Star):
        return [kind for table in tables.values() for kind in schema.all(table)]
    if isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star):
        return schema.all(tables.get(projection.table))
    if isinstance(projection, exp.Column):
        return [_column_type(projection, tables, schema)]
    if isinstance(projection, exp.Cast):
        return [affinity_type(projection.to.sql(dialect="sqlite"))]
    if isinstance(projection, exp.Count):
        return [ColumnType("integer", int)]
    return [_NOTHING]


def _column_type(
    column: exp.Column, tables: dict[str, str | None], schema: _Schema
) -> ColumnType | None:
    """The declared type of the one table column ``column`` names, if exactly one does."""
    names = [column.table] if column.table else list(tables)
    owners = [owner for owner in (tables.get(name) for name in names) if owner is not None]
    having = [owner for owner in owners if schema.has(owner, column.name)]
    unknown = len(owners) < len(names)  # a subquery or a CTE may hold the column too
    if len(having) != 1 or (unknown and not column.table):
        return _NOTHING
    return schema.column(having[0], column.name)


class _Schema:
    """Declared column types of the database's tables, read once each (internal)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._conn: sqlite3.Connection | None = None
        self._tables: dict[str, list[tuple[str, str]]] = {}

    def _columns(self, table: str) -> list[tuple[str, str]]:
        if table not in self._tables:
            if self._conn is None:
                uri = f"file:{quote(str(self._path.resolve()))}?mode=ro"
                self._conn = sqlite3.connect(uri, uri=True)
                self._conn.execute("PRAGMA query_only = ON")
            query = "SELECT name, type FROM pragma_table_info(?) ORDER BY cid"
            self._tables[table] = [(row[0], row[1]) for row in self._conn.execute(query, (table,))]
        return self._tables[table]

    def all(self, table: str | None) -> list[ColumnType | None]:
        """Every column of ``table`` in order; raises :class:`_UnknownWidth` if not a table."""
        if table is None or not self._columns(table):
            raise _UnknownWidth(table)
        return [affinity_type(declared) for _, declared in self._columns(table)]

    def has(self, table: str, name: str) -> bool:
        return any(column.lower() == name.lower() for column, _ in self._columns(table))

    def column(self, table: str, name: str) -> ColumnType | None:
        """The type of ``table.name`` (a column :meth:`has` found)."""
        for column, declared in self._columns(table):
            if column.lower() == name.lower():
                return affinity_type(declared)
        return _NOTHING

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
