"""Stream a PostgreSQL result as table bytes through ``COPY ... TO STDOUT`` (I/O).

Runs inside the transaction :func:`service.run_postgres.run_postgres_query` opened
(read-only, its timeouts and output settings, a fresh connection), and only for the
statement the catalog approved. Steps, all through the extended protocol, so the
server takes exactly one statement each time:

1. under a savepoint, when the statement has binds: Parse :func:`pg_copy_sql.probe_text`
   without declared types; every bind site must be a parameter where it stands;
2. Parse and Describe the statement with each bind replaced by the psycopg literal of
   its value, cast to the type psycopg would have declared for it (the same types, so
   the same result as the cursor): one statement, and its columns' names and types;
3. Parse the ``COPY`` of :func:`pg_copy_sql.copy_statement`, then Bind and Execute
   that very statement; each ``CopyData`` message is one row's bytes.

A step the server refuses, or a column type COPY cannot write as govex does, rolls
back to the savepoint and returns no plan: the runner then streams rows through its
cursor, whose errors are the statement's own. A timeout in a step is the call's timeout.

Rows are read with libpq's blocking ``PQgetCopyData`` through C-level iterators
(``iter``, ``map``): at millions of rows a second a Python frame per row would cost
more than PostgreSQL takes to write the row. When the reader stops early (a row or
byte limit), the COPY is cancelled and drained before the transaction rolls back.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import partial
from operator import itemgetter
from typing import TYPE_CHECKING

import psycopg
from psycopg import pq
from psycopg import sql as pgsql
from psycopg.adapt import PyFormat, Transformer

from service.pg_copy_sql import CopyFormat, bind_sites, copy_statement, inline_text, probe_text

if TYPE_CHECKING:
    from catalog.binds import NumberedSql
    from catalog.model import JsonScalar

_SAVEPOINT = b"SAVEPOINT govex_copy"
_ROLLBACK_TO = b"ROLLBACK TO SAVEPOINT govex_copy"
_STATEMENT = b"govex_copy"
_END = (-1, b"")  # PQgetCopyData: the COPY is over
_TIMED_OUT = frozenset({"57014", "55P03"})


@dataclass(frozen=True)
class CopyPlan:
    """A COPY the server has parsed as statement ``govex_copy``: the result's columns."""

    columns: tuple[str, ...]
    oids: tuple[int, ...]


class PlanTimedOut(Exception):
    """Planning passed the statement's deadline; ``error`` is the engine's."""

    def __init__(self, error: psycopg.Error) -> None:
        super().__init__(error.sqlstate)
        self.error = error


def plan_copy(
    conn: psycopg.Connection[tuple[object, ...]],
    sql: str,
    statement: NumberedSql,
    params: Mapping[str, JsonScalar],
    fmt: CopyFormat,
) -> CopyPlan | None:
    """Steps 1 to 3: the parsed COPY of ``statement``, or ``None`` (back at the savepoint).

    Raises :class:`PlanTimedOut` when the deadline passes while planning, and
    ``psycopg.Error`` when the connection breaks.
    """
    pgconn = conn.pgconn
    encoding = conn.info.encoding
    _command(pgconn, _SAVEPOINT, encoding)
    try:
        plan = _plan(conn, sql, statement, params, fmt)
    except _Refused as refused:
        if refused.sqlstate in _TIMED_OUT:
            raise PlanTimedOut(refused.error) from refused.error
        plan = None
    if plan is None:
        _command(pgconn, _ROLLBACK_TO, encoding)
    return plan


class _Refused(Exception):
    """Private: a planning step the server refused."""

    def __init__(self, error: psycopg.Error) -> None:
        super().__init__(str(error))
        self.error = error
        self.sqlstate = error.sqlstate


def _plan(
    conn: psycopg.Connection[tuple[object, ...]],
    sql: str,
    statement: NumberedSql,
    params: Mapping[str, JsonScalar],
    fmt: CopyFormat,
) -> CopyPlan | None:
    pgconn, encoding = conn.pgconn, conn.info.encoding
    try:
        sites = bind_sites(sql, statement)
        probe = probe_text(statement, sites) if sites else None
    except ValueError:
        return None
    if probe is not None:
        _parse(pgconn, b"", probe.encode(encoding), encoding)
        if pgconn.describe_prepared(b"").nparams != len(sites):
            return None
    inner = inline_text(statement, sites, _literals(conn, statement, params))
    _parse(pgconn, b"", inner.encode(encoding), encoding)
    described = pgconn.describe_prepared(b"")
    columns = tuple((described.fname(i) or b"").decode(encoding) for i in range(described.nfields))
    oids = tuple(described.ftype(i) for i in range(described.nfields))
    copy = copy_statement(inner, columns, oids, fmt)
    if copy is None:
        return None
    _parse(pgconn, _STATEMENT, copy.as_bytes(conn), encoding)
    return CopyPlan(columns, oids)


def _literals(
    conn: psycopg.Connection[tuple[object, ...]],
    statement: NumberedSql,
    params: Mapping[str, JsonScalar],
) -> dict[str, str]:
    """Each parameter's SQL literal, cast to the type psycopg declares when it binds it."""
    values = statement.values(params)
    transformer = Transformer(conn)
    transformer.dump_sequence(values, [PyFormat.AUTO] * len(values))
    literals = {}
    for name, value, oid in zip(statement.names, values, transformer.types or (), strict=True):
        literal: pgsql.Composable = pgsql.Literal(value)
        info = conn.adapters.types.get(oid) if oid else None
        if info is not None:
            literal = pgsql.SQL("CAST({} AS {})").format(literal, pgsql.Identifier(info.name))
        literals[name] = literal.as_string(conn)
    return literals


def _parse(pgconn: pq.abc.PGconn, name: bytes, text: bytes, encoding: str) -> None:
    result = pgconn.prepare(name, text)
    if result.status != pq.ExecStatus.COMMAND_OK:
        raise _Refused(psycopg.errors.error_from_result(result, encoding=encoding))


def _command(pgconn: pq.abc.PGconn, text: bytes, encoding: str) -> None:
    """Our own fixed command (a savepoint), through the extended protocol."""
    result = pgconn.exec_params(text, None)
    if result.status != pq.ExecStatus.COMMAND_OK:
        raise psycopg.errors.error_from_result(result, encoding=encoding)


class _CopyOut:
    """One running COPY: its rows, then its end (internal)."""

    def __init__(self, pgconn: pq.abc.PGconn, encoding: str) -> None:
        self._pgconn = pgconn
        self._encoding = encoding
        self.finished = False

    def lines(self) -> Iterator[memoryview]:
        rows = map(itemgetter(1), iter(partial(self._pgconn.get_copy_data, 0), _END))
        return itertools.chain(rows, self._end())

    def _end(self) -> Iterator[memoryview]:
        """Read the COPY's outcome after its last row: its error, if it failed, is raised."""
        outcome = self.results()
        self.finished = True
        if outcome is not None:
            raise outcome
        yield from ()

    def results(self) -> psycopg.Error | None:
        """Read the results that end the COPY; the first error among them."""
        error = None
        while (result := self._pgconn.get_result()) is not None:
            if result.status != pq.ExecStatus.COMMAND_OK and error is None:
                error = psycopg.errors.error_from_result(result, encoding=self._encoding)
        return error

    def cancel(self, conn: psycopg.Connection[tuple[object, ...]]) -> None:
        """Stop the COPY: ask the server to cancel it, then read what it still sends."""
        with suppress(psycopg.Error):
            conn.cancel_safe(timeout=5.0)
        while self._pgconn.get_copy_data(0)[0] >= 0:
            pass
        self.results()  # the cancellation's query_canceled, expected
        self.finished = True


@contextmanager
def copy_rows(
    conn: psycopg.Connection[tuple[object, ...]],
    translate: Callable[[psycopg.Error], Exception],
) -> Iterator[Iterator[memoryview]]:
    """Execute the planned COPY; its rows, one row's bytes each, stream out.

    The engine's error (a timeout among them) is raised by the iteration once the last
    row is read, and leaves the block as ``translate(error)``. Leaving the block before
    the end cancels the COPY.
    """
    pgconn, encoding = conn.pgconn, conn.info.encoding
    try:
        pgconn.send_query_prepared(_STATEMENT, None)
    except psycopg.Error as exc:
        raise translate(exc) from exc
    first = pgconn.get_result()
    if first is None or first.status != pq.ExecStatus.COPY_OUT:
        copy = _CopyOut(pgconn, encoding)
        copy.results()  # drain what follows the refusal
        if first is None:
            raise translate(psycopg.OperationalError("no COPY result"))
        raise translate(psycopg.errors.error_from_result(first, encoding=encoding))
    copy = _CopyOut(pgconn, encoding)
    try:
        yield copy.lines()
    except psycopg.Error as exc:
        raise translate(exc) from exc
    finally:
        if not copy.finished:
            with suppress(psycopg.Error):  # a broken connection: it is closed next anyway
                copy.cancel(conn)
