"""PostgreSQL result column types, by type OID, as packet column types (Table Schema v2).

:mod:`service.run_postgres` loads a few types as Python values (integers, floats,
booleans, text, bytea) and every other type as PostgreSQL's text form under fixed
output settings (UTC, ISO dates, ISO 8601 intervals). The Table Schema type says
what that text is, when every value of the type is one of it: ``numeric`` text is a
``number``, ``time`` a ``time``; ``json`` and ``jsonb`` text may hold any JSON value,
so ``any``. ``date``, ``timestamp``, ``timestamptz`` and ``interval`` are ``string``
with a description of their text (:data:`_DESCRIBED_TEXT` says why). A type not named
here (arrays, ``uuid``, enums, domains, ranges, ...) is its text: ``string``.
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
    1083: "time",  # time without time zone (24:00:00 is ISO 8601 too)
    114: "any",  # json
    3802: "any",  # jsonb
}
_EDGES = "also ' BC' at the end, years past 9999, 'infinity' and '-infinity', which a Table Schema"
_DESCRIBED_TEXT = {
    1082: f"PostgreSQL date as text: YYYY-MM-DD; {_EDGES} date cannot hold",
    1114: f"PostgreSQL timestamp as text: YYYY-MM-DD HH:MM:SS[.ffffff]; {_EDGES} datetime "
    "cannot hold",
    1184: "PostgreSQL timestamptz as text, in UTC: YYYY-MM-DD HH:MM:SS[.ffffff]+00; "
    f"{_EDGES} datetime cannot hold",
    1186: "PostgreSQL interval as text: an ISO 8601 duration (IntervalStyle iso_8601) whose "
    "parts may be negative (P-1Y2M-3DT4H), which a Table Schema duration cannot hold",
}
"""Types some of whose values no value of the matching Table Schema type can be: ``string``.

``date``, ``timestamp`` and ``timestamptz`` hold ``infinity``, ``-infinity``, BC dates and
years past 9999; ``interval`` holds negative parts (``P-1D``). A Table Schema ``date``,
``datetime`` or ``duration`` holds none of them, so a validator would refuse the packet
for its data. The type comes from the column type, never from the values, so every column
of these types is a ``string``. Its description names the text form.
"""


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
    if oid in _DESCRIBED_TEXT:
        return ColumnType("string", str, description=_DESCRIBED_TEXT[oid])
    return ColumnType(_TEXT_FORMS.get(oid, "string"), str)
