"""Run one approved SQL statement against a PostgreSQL source, read-only in depth (STYLE G8).

Layers, none enough alone:

- the role the source URL names is the wall that holds: SELECT on the tables, nothing
  else, and EXECUTE revoked on the functions with side effects (docs/operations.md,
  "PostgreSQL sources"). ``READ ONLY`` is not a security boundary: advisory locks,
  ``set_config``, ``pg_notify``, large objects and ``pg_logical_emit_message`` all run
  inside a read-only transaction. A superuser passes every wall, so a source whose
  role is one is refused before anything runs (the server reports ``is_superuser``
  when the connection starts);
- a fresh connection per call, closed at its end: no session state (an advisory lock,
  a setting, a prepared statement, a ``LISTEN``) outlives the call, and no pool hands
  one to the next call;
- ``BEGIN READ ONLY``, then ``SET LOCAL`` of ``statement_timeout``, ``lock_timeout`` and
  ``idle_in_transaction_session_timeout`` from the contract's timeout (the engine ends
  the statement, rows streamed included, at the deadline), and fixed output settings
  (UTC, ISO dates) so the same rows give the same bytes on every server;
- entries with an exhaustive claim run ``SERIALIZABLE READ ONLY DEFERRABLE`` (one
  snapshot no concurrent write can skew) with ``row_security = off`` (a row-level
  security policy that would hide rows fails the statement instead: zero rows must
  mean none, not none visible);
- the statement goes through the extended protocol (Parse/Bind/Execute) with its inputs
  as bound values (``$n``, see :mod:`catalog.binds`): that protocol takes exactly one
  statement, so ``SELECT 1; COMMIT; INSERT ...`` is refused by the server, where the
  simple protocol would run the COMMIT and the INSERT after it outside the read-only
  transaction;
- ``ROLLBACK``, never ``COMMIT``.

Rows stream in chunks (libpq chunked or single-row mode), never held in memory: the
cursor's ``stream`` reads the statement's rows off the socket as the writer asks for
them, so the server waits on a full socket rather than the client holding the result
(a named server-side cursor would add a round trip per batch and a ``DECLARE`` that
wraps the statement, for no memory gain: the Parquet export of ``bench/streaming.py``
reads 5,000,000 rows through this cursor, and the memory it adds is its row groups').
Values are ``int``, ``float``, ``bool``, ``str``, ``bytes`` or ``None``: other types
(numeric, dates, times, intervals, json, uuid, arrays, ...) arrive as PostgreSQL's text
form, so a packet can always encode them, exactly. Each column's type comes with the
result (:mod:`service.pg_types`), from the statement's description, not its values.

Asked to ``encode`` CSV or JSON Lines, the runner first tries to have the server write
the table's bytes itself, through ``COPY ... TO STDOUT`` in the same transaction
(:mod:`service.run_postgres_copy`): the result then carries
:class:`~service.packets.tables.EncodedRows` instead of rows. When COPY cannot write
exactly govex's bytes for the result's types, the rows stream through the cursor.

Errors name SQLSTATEs, never SQL text, values or the source's credentials.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from functools import lru_cache

import psycopg
from psycopg import sql as pgsql
from psycopg.adapt import AdaptersMap
from psycopg.types.string import TextLoader

from catalog.binds import NumberedSql, numbered_binds
from catalog.model import JsonScalar, QueryEntry
from service.errors import QueryFailed, QueryTimedOut, ServiceError, SourceUnavailable
from service.packets.columns import ColumnType
from service.packets.tables import EncodedRows, TableFormat
from service.pg_copy_sql import CopyFormat
from service.pg_types import column_type
from service.run_postgres_copy import PlanTimedOut, copy_rows, plan_copy
from service.run_sql import QueryResult, SqlValue
from service.sources import PostgresSource

BOUNDARY_POSTGRES = (
    "not_superuser",
    "fresh_connection",
    "read_only_transaction",
    "extended_protocol",
    "statement_timeout",
    "lock_timeout",
    "idle_in_transaction_session_timeout",
    "rollback",
)
BOUNDARY_POSTGRES_EXHAUSTIVE = (*BOUNDARY_POSTGRES, "serializable_deferrable", "row_security_off")

ROW_SECURITY_REFUSED = "row_security"
"""``QueryFailed.where`` when row security would have filtered rows (``row_security = off``)."""
# The server's text for that refusal (SQLSTATE 42501 also means a missing privilege). A server
# whose lc_messages translates it is not recognised: its refusal stays a plain error.
_ROW_SECURITY_MESSAGE = "would be affected by row-level security policy"
_FETCH_BATCH = 1000
_TIMED_OUT = frozenset({"57014", "55P03"})  # query_canceled (statement_timeout), lock_not_available
_MIN_CONNECT_TIMEOUT_S = 2  # libpq's own floor
_OUTPUT_SETTINGS = (
    ("TimeZone", "UTC"),
    ("DateStyle", "ISO, YMD"),
    ("IntervalStyle", "iso_8601"),
    ("extra_float_digits", "1"),
    ("bytea_output", "hex"),
    ("client_encoding", "UTF8"),  # COPY's bytes go to the packet as they come
)
_COPY_FORMATS: dict[str, CopyFormat] = {"csv": "csv", "jsonl": "jsonl"}
# Types loaded as Python values; every other type is loaded as its text form.
_NATIVE_TYPES = frozenset(
    {"bool", "int2", "int4", "int8", "oid", "float4", "float8", "text", "varchar", "bpchar",
     "name", "char", "bytea", "unknown"}
)  # fmt: skip


def is_exhaustive(entry: QueryEntry) -> bool:
    """Whether ``entry`` runs serializable with row security off: its claim is exhaustive."""
    return entry.claim is not None and entry.claim.surface == "exhaustive"


def boundary_controls(entry: QueryEntry) -> tuple[str, ...]:
    """The controls :func:`run_postgres_query` applies to ``entry``, for its contract."""
    return BOUNDARY_POSTGRES_EXHAUSTIVE if is_exhaustive(entry) else BOUNDARY_POSTGRES


@contextmanager
def run_postgres_query(
    source: PostgresSource,
    sql: str,
    params: Mapping[str, JsonScalar],
    timeout_ms: int,
    *,
    exhaustive: bool = False,
    encode: TableFormat | None = None,
) -> Iterator[QueryResult]:
    """Execute ``sql`` with bound ``params``; rows stream out of the returned result.

    With ``encode`` (``csv`` or ``jsonl``) the result may hold the rows as the server
    encoded them (``result.encoded``, ``result.rows`` then empty); it holds rows
    otherwise. Raises :class:`SourceUnavailable` when the source cannot be connected
    to or its role is a superuser, :class:`QueryTimedOut` (from the iteration too)
    when the statement passes its deadline, :class:`QueryFailed` when a bind has no
    value or the engine refuses or fails the statement (a statement that returns no
    rows, such as ``SET``, included). Whatever happens, the transaction is rolled
    back and the connection closed.
    """
    statement = _numbered(sql, params)
    conn = _connect(source, timeout_ms)
    stream: Iterator[tuple[SqlValue, ...]] | None = None
    try:
        try:
            conn.execute(_begin(timeout_ms, exhaustive=exhaustive))
            copy_format = _COPY_FORMATS.get(encode or "")
            plan = plan_copy(conn, sql, statement, params, copy_format) if copy_format else None
            if plan is not None and copy_format is not None:
                with copy_rows(conn, lambda exc: _translate(exc, timeout_ms)) as lines:
                    yield QueryResult(
                        plan.columns,
                        iter(()),
                        column_types=tuple(column_type(oid) for oid in plan.oids),
                        encoded=EncodedRows(copy_format, lines),
                        engine_version=conn.info.parameter_status("server_version"),
                    )
                return
            cursor = psycopg.RawCursor(conn)
            stream = cursor.stream(statement.text, statement.values(params), size=_batch())
            first = next(stream, None)
            if first is None:
                columns, types = _describe(conn, statement, params)
            else:
                columns, types = _columns(cursor.description)
        except PlanTimedOut as exc:
            raise _translate(exc.error, timeout_ms) from exc.error
        except psycopg.Error as exc:
            raise _translate(exc, timeout_ms) from exc
        yield QueryResult(
            columns,
            _rows(first, stream, timeout_ms),
            column_types=types,
            engine_version=conn.info.parameter_status("server_version"),
        )
    finally:
        # Closing psycopg's generator cancels a statement still running, then drains it.
        close_stream = getattr(stream, "close", None)
        if close_stream is not None:
            with suppress(psycopg.Error):
                close_stream()
        with suppress(psycopg.Error):
            conn.execute("ROLLBACK")
        conn.close()


def _numbered(sql: str, params: Mapping[str, JsonScalar]) -> NumberedSql:
    try:
        statement = numbered_binds(sql)
    except ValueError as exc:
        raise QueryFailed(f"the statement cannot be bound: {exc}") from exc
    missing = sorted(set(statement.names) - set(params))
    if missing:
        raise QueryFailed(f"no value for the parameters {', '.join(missing)}")
    return statement


def _connect(source: PostgresSource, timeout_ms: int) -> psycopg.Connection[tuple[SqlValue, ...]]:
    """A new connection to ``source`` as a role that is not a superuser."""
    try:
        conn = psycopg.connect(
            source.conninfo,
            autocommit=True,  # transactions are the explicit BEGIN ... ROLLBACK below
            prepare_threshold=None,  # no statement is kept prepared on the session
            context=_adapters(),
            connect_timeout=max(_MIN_CONNECT_TIMEOUT_S, math.ceil(timeout_ms / 1000)),
            application_name="govex",
        )
    except psycopg.Error as exc:
        reason = source.scrub(str(exc).strip().splitlines()[0] if str(exc).strip() else "")
        state = f"SQLSTATE {exc.sqlstate}: " if exc.sqlstate else ""
        raise SourceUnavailable(
            f"cannot connect to PostgreSQL source {source.name!r} ({source.redacted()}): "
            f"{state}{reason or type(exc).__name__}",
            where=source.name,
        ) from None  # the driver's error may carry connection details; the message is scrubbed
    if conn.info.parameter_status("is_superuser") != "off":
        conn.close()
        raise SourceUnavailable(
            f"PostgreSQL source {source.name!r} connects as a superuser ({source.redacted()}), "
            "which no read-only control binds: connect as the reader role of "
            "docs/operations.md",
            where=source.name,
        )
    return conn


def _begin(timeout_ms: int, *, exhaustive: bool) -> pgsql.Composed:
    """The transaction start, one round trip: our own text, integers and constants only."""
    mode = "ISOLATION LEVEL SERIALIZABLE, READ ONLY, DEFERRABLE" if exhaustive else "READ ONLY"
    settings: list[tuple[str, str | int]] = [
        ("statement_timeout", timeout_ms),
        ("lock_timeout", timeout_ms),
        ("idle_in_transaction_session_timeout", timeout_ms),
        *_OUTPUT_SETTINGS,
    ]
    if exhaustive:
        settings.append(("row_security", "off"))
    parts: list[pgsql.Composable] = [pgsql.SQL("BEGIN TRANSACTION " + mode)]
    parts += [
        pgsql.SQL("SET LOCAL {} = {}").format(pgsql.Identifier(name), pgsql.Literal(value))
        for name, value in settings
    ]
    return pgsql.SQL("; ").join(parts)


def _describe(
    conn: psycopg.Connection[tuple[SqlValue, ...]],
    statement: NumberedSql,
    params: Mapping[str, JsonScalar],
) -> tuple[tuple[str, ...], tuple[ColumnType, ...]]:
    """Columns of a statement that returned no row: a cursor is declared, never fetched.

    ``DECLARE`` plans the statement (through the extended protocol too) without running it.
    """
    with psycopg.RawServerCursor(conn, "govex_describe") as cursor:
        cursor.execute(statement.text, statement.values(params))
        return _columns(cursor.description)


def _columns(
    description: list[psycopg.Column] | None,
) -> tuple[tuple[str, ...], tuple[ColumnType, ...]]:
    """Names and packet types of the result's columns, from the statement's description."""
    described = description or []
    return tuple(c.name for c in described), tuple(column_type(c.type_code) for c in described)


def _rows(
    first: tuple[SqlValue, ...] | None,
    stream: Iterator[tuple[SqlValue, ...]],
    timeout_ms: int,
) -> Iterator[tuple[SqlValue, ...]]:
    if first is None:
        return
    yield first
    try:
        yield from stream
    except psycopg.Error as exc:
        raise _translate(exc, timeout_ms) from exc


def _translate(exc: psycopg.Error, timeout_ms: int) -> ServiceError:
    """The engine's error as a domain error: its SQLSTATE and condition name, no text."""
    state = exc.sqlstate
    if state in _TIMED_OUT:
        return QueryTimedOut(
            f"statement stopped at its {timeout_ms} ms deadline (SQLSTATE {state})",
            timeout_ms=timeout_ms,
        )
    if state is None:  # no server error: the driver refused, or the connection broke
        what = "the connection broke" if isinstance(exc, psycopg.OperationalError) else "refused"
        return QueryFailed(f"the PostgreSQL driver {what} ({type(exc).__name__})")
    if state == "42501" and _ROW_SECURITY_MESSAGE in (exc.diag.message_primary or ""):
        return QueryFailed(
            f"PostgreSQL refused the statement: SQLSTATE {state} ({_condition(state)}): row "
            "security would filter rows of a table it reads (row_security = off)",
            where=ROW_SECURITY_REFUSED,
        )
    return QueryFailed(
        f"PostgreSQL refused or failed the statement: SQLSTATE {state} ({_condition(state)})"
    )


def _condition(state: str) -> str:
    """The condition name of ``state`` (``insufficient_privilege``), from psycopg's classes."""
    try:
        name = psycopg.errors.lookup(state).__name__
    except KeyError:
        return "unknown condition"
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _batch() -> int:
    """Rows per chunk: libpq 17 streams chunks; older ones one row at a time."""
    return _FETCH_BATCH if psycopg.capabilities.has_stream_chunked() else 1


@lru_cache(maxsize=1)
def _adapters() -> AdaptersMap:
    """The default adapters, with every type outside :data:`_NATIVE_TYPES` loaded as text."""
    adapters = AdaptersMap(psycopg.adapters)
    for info in psycopg.adapters.types:
        for oid in (info.oid, info.array_oid):
            if oid and not (oid == info.oid and info.name in _NATIVE_TYPES):
                adapters.register_loader(oid, TextLoader)
    return adapters
