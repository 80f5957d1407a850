"""PostgreSQL result column types, by type OID, as packet column types (Table Schema v2).

:mod:`service.run_postgres` loads a few types as Python values (integers, floats,
booleans, text, bytea) and every other type as PostgreSQL's text form under fixed
output settings (UTC, ISO dates, ISO 8601 intervals). The Table Schema type says
what that text is: ``numeric`` text is a ``number``, ``date`` text a ``date``, a
``timestamptz`` (``2024-02-29 23:30:00+00``) a ``datetime``, an ``interval``
(``P1DT2H``) a ``duration``; ``json`` and ``jsonb`` text may hold any JSON value,
so ``any``. A type not named here (arrays, ``uuid``, enums, domains, ranges, ...)
is its text: ``string``.
"""

from __future__ import annotations

from service.packets.columns import ColumnType

INTEGER_OIDS = frozenset({20, 21, 23, 26})  # int8, int2, int4, oid
FLOAT_OIDS = frozenset({700, 701})  # float4, float8
BOOL_OID = 16
BYTEA_OID = 17
TEXT_OIDS = frozenset({18, 19, 25, 705, 1042, 1043})  # "char", name, text, unknown, bpchar, varchar

_TEXT_FORMS = {
    1700: "number",  # numeric: exact decimal text (NaN and Infinity too)
    1082: "date",
    1083: "time",  # time without time zone
    1114: "datetime",  # timestamp
    1184: "datetime",  # timestamptz, in UTC
    1186: "duration",  # interval, IntervalStyle iso_8601
    114: "any",  # json
    3802: "any",  # jsonb
}


def column_type(oid: int) -> ColumnType:
    """The packet column type of values of the type ``oid`` as the runner loads them."""
    if oid in INTEGER_OIDS:
        return ColumnType("integer", int)
    if oid in FLOAT_OIDS:
        return ColumnType("number", float)
    if oid == BOOL_OID:
        return ColumnType("boolean", bool)
    if oid == BYTEA_OID:
        return ColumnType("string", bytes)
    return ColumnType(_TEXT_FORMS.get(oid, "string"), str)
