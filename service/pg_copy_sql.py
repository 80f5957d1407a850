"""The ``COPY ... TO STDOUT`` statement that makes PostgreSQL write govex's table bytes (pure).

PostgreSQL's own CSV writer, fed per-column expressions, writes each row exactly as
:func:`service.packets.tables.write_table` would for the values
:mod:`service.run_postgres` loads (the tests compare both, type by type):

- integers, ``numeric``, dates, times, intervals, ``json``/``jsonb``, ``uuid``, network
  addresses, ``money`` and arrays are written as their text form, as loaded;
- booleans as ``true``/``false`` (``bool::text``), ``bytea`` as standard base64 text
  (``encode`` wraps at 76 characters: the line breaks are removed);
- text-like values, empty, as the empty field (``NULLIF``): COPY would quote an empty
  string ``""`` to tell it from NULL, govex writes both as the empty field; a ``bpchar``
  tests its length in bytes, since its equality ignores trailing blanks;
- ``float4``/``float8`` are not planned: Python prints ``100.0``, ``1e+16`` and refuses
  ``NaN``, PostgreSQL prints ``100``, ``1e+16`` and ``NaN``. Nor are types not named
  here. The runner then falls back to its cursor, as it does for a one-column CSV
  of text (COPY quotes a lone backslash-period) and for results with no column.

JSON Lines rows are built inside the database: ``'{"id":' || ... || '}'``, each value
by ``to_json`` (the same escapes as Python's ``json.dumps(ensure_ascii=False)``),
values loaded as text going through ``::text`` first so they stay JSON strings (text
that never needs an escape, as a number's or a date's, is quoted as it is). The
row is one CSV field whose quote and delimiter are control characters a JSON text
never holds unescaped, so COPY writes it as it is.

Bound values: COPY takes no server-side parameters, so each ``$n`` the catalog's
``:name`` became is replaced by a literal. :func:`bind_sites` finds where
:func:`catalog.binds.numbered_binds` put them (by aligning the two texts);
:func:`probe_text` numbers each site apart, so the server can confirm that every site
is a parameter where it stands (not inside a string or a comment) before any value
is written into the text.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import psycopg
from psycopg import sql as pgsql

from service.pg_types import BOOL_OID, BYTEA_OID, INTEGER_OIDS

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from catalog.binds import NumberedSql

CopyFormat = Literal["csv", "jsonl"]
_NUMBER = re.compile(r"\$(\d+)")
_DOLLAR_DIGIT = re.compile(r"\$\d")
_TEXTS = frozenset({19, 25, 1043})  # name, text, varchar
_BPCHAR = 1042
_XML = 142
_IO_TEXT = frozenset(
    {1700, 1082, 1083, 1114, 1184, 1186, 1266, 114, 3802, 2950, 790}
)  # numeric, date, time, timestamp(tz), interval, timetz, json(b), uuid, money: cast = output
_PLAIN_TEXT = frozenset(
    {1700, 1082, 1083, 1114, 1184, 1186, 1266, 2950}
)  # numeric, dates and times, intervals, uuid: text that never needs a JSON escape
_OTHER_TEXT = frozenset({869, 650, 829, 774})  # inet, cidr, macaddr(8): their ::text differs
_ARRAYS = frozenset(
    info.array_oid for info in psycopg.adapters.types if info.array_oid
)  # every array type psycopg knows: ``::text`` is the array's output
_QUOTE, _DELIMITER = "\x02", "\x01"  # never unescaped in a JSON text


@dataclass(frozen=True)
class BindSite:
    """Where one ``$n`` stands in the numbered text, and the parameter it binds."""

    start: int
    end: int
    name: str


def bind_sites(sql: str, statement: NumberedSql) -> tuple[BindSite, ...]:
    """Each ``$n`` :func:`~catalog.binds.numbered_binds` wrote into ``statement.text``, in order.

    The two texts are equal but where a ``:name`` became a ``$n``, so the first
    difference is always the next site. Raises ``ValueError`` when they do not align so.
    """
    text, sites = statement.text, list[BindSite]()
    i = j = 0
    while True:
        while i < len(sql) and j < len(text) and sql[i] == text[j]:
            i, j = i + 1, j + 1
        if i == len(sql) and j == len(text):
            return tuple(sites)
        found = _NUMBER.match(text, j)
        number = int(found.group(1)) if found else 0
        if not found or not 0 < number <= len(statement.names):
            raise ValueError("the numbered text does not align with the statement")
        name = statement.names[number - 1]
        if not sql.startswith(f":{name}", i):
            raise ValueError("the numbered text does not align with the statement")
        sites.append(BindSite(j, found.end(), name))
        i, j = i + 1 + len(name), found.end()


def probe_text(statement: NumberedSql, sites: Sequence[BindSite]) -> str:
    """The text with site ``k`` written ``$k``, for a Parse without declared types.

    That Parse succeeds with ``len(sites)`` parameters only if the server reads every
    site as a parameter: one it reads inside a string or comment leaves its number
    unused, and an unused parameter's type cannot be determined. Raises ``ValueError``
    when the text holds a ``$`` and a digit anywhere else, which could stand in for one.
    """
    pieces, done = [], 0
    for number, site in enumerate(sites, start=1):
        pieces += [statement.text[done : site.start], f"${number}"]
        done = site.end
    pieces.append(statement.text[done:])
    if any(_DOLLAR_DIGIT.search(piece) for piece in pieces[::2]):
        raise ValueError("a '$' and a digit outside the binds")
    return "".join(pieces)


def inline_text(
    statement: NumberedSql, sites: Sequence[BindSite], literals: Mapping[str, str]
) -> str:
    """The text with each site replaced by its parameter's SQL literal (already quoted)."""
    pieces, done = [], 0
    for site in sites:
        pieces += [statement.text[done : site.start], literals[site.name]]
        done = site.end
    pieces.append(statement.text[done:])
    return "".join(pieces)


def _csv_value(oid: int, column: pgsql.Identifier) -> pgsql.Composable | None:
    if oid in INTEGER_OIDS or oid in _IO_TEXT or oid in _OTHER_TEXT or oid in _ARRAYS:
        return column
    if oid == BOOL_OID:
        return pgsql.SQL("{}::text").format(column)
    if oid in _TEXTS or oid == _XML:
        return pgsql.SQL("NULLIF({}::text, '')").format(column)
    if oid == _BPCHAR:
        return pgsql.SQL("CASE WHEN octet_length({0}) = 0 THEN NULL ELSE {0} END").format(column)
    if oid == BYTEA_OID:
        return pgsql.SQL("NULLIF(translate(encode({}, 'base64'), chr(10), ''), '')").format(column)
    return None


def _single_csv_value(oid: int, column: pgsql.Identifier) -> pgsql.Composable | None:
    """A lone column: Python's csv writes an empty field as ``""``, so must COPY (never NULL)."""
    if oid in INTEGER_OIDS or oid == BOOL_OID or oid in _IO_TEXT:
        return pgsql.SQL("COALESCE({}::text, '')").format(column)
    if oid == BYTEA_OID:
        return pgsql.SQL("COALESCE(translate(encode({}, 'base64'), chr(10), ''), '')").format(
            column
        )
    return None


def _json_value(oid: int, column: pgsql.Identifier) -> pgsql.Composable | None:
    value: pgsql.Composable
    if oid in INTEGER_OIDS or oid == BOOL_OID:
        value = pgsql.SQL("{}::text").format(column)
    elif oid in _PLAIN_TEXT:
        value = pgsql.SQL("'\"' || {}::text || '\"'").format(column)  # to_json's result, faster
    elif oid in _TEXTS or oid in {_BPCHAR, _XML} or oid in _OTHER_TEXT:
        value = pgsql.SQL("to_json({})::text").format(column)
    elif oid in _IO_TEXT or oid in _ARRAYS:
        value = pgsql.SQL("to_json({}::text)::text").format(column)
    elif oid == BYTEA_OID:
        value = pgsql.SQL("to_json(translate(encode({}, 'base64'), chr(10), ''))::text").format(
            column
        )
    else:
        return None
    return pgsql.SQL("COALESCE({}, 'null')").format(value)


def copy_statement(
    inner: str, columns: Sequence[str], oids: Sequence[int], fmt: CopyFormat
) -> pgsql.Composed | None:
    """The COPY of ``inner``'s rows as ``fmt`` bytes, or ``None`` when one is not planned.

    ``inner`` is one statement (the server parsed it alone) with its binds inlined;
    it sits between line breaks, so a trailing ``--`` comment cannot swallow the
    closing parenthesis. Its columns are renamed ``c1``, ``c2``, ... (names may repeat
    or need quoting); ``columns`` only give the JSON keys.
    """
    if not columns or len(columns) != len(oids):
        return None
    aliases = [pgsql.Identifier(f"c{i}") for i in range(1, len(columns) + 1)]
    options: pgsql.Composable = pgsql.SQL("FORMAT csv")
    if fmt == "csv":
        plan = _single_csv_value if len(columns) == 1 else _csv_value
        planned = [plan(oid, alias) for oid, alias in zip(oids, aliases, strict=True)]
    else:
        planned = [_json_value(oid, alias) for oid, alias in zip(oids, aliases, strict=True)]
        options = pgsql.SQL("FORMAT csv, DELIMITER {}, QUOTE {}").format(
            pgsql.Literal(_DELIMITER), pgsql.Literal(_QUOTE)
        )
    values = [value for value in planned if value is not None]
    if len(values) != len(planned):
        return None
    if fmt == "jsonl":
        parts: list[pgsql.Composable] = []
        for position, (name, value) in enumerate(zip(columns, values, strict=True)):
            key = json.dumps(name, ensure_ascii=False)
            parts += [pgsql.Literal(("{" if position == 0 else ",") + key + ":"), value]
        parts.append(pgsql.Literal("}"))
        values = [pgsql.SQL(" || ").join(parts)]
    return pgsql.SQL(
        "COPY (SELECT {} FROM (\n{}\n) AS govex_copy ({})) TO STDOUT WITH ({})"
    ).format(
        pgsql.SQL(", ").join(values),
        pgsql.SQL(inner),  # text the server parsed alone (step 2), written as it is
        pgsql.SQL(", ").join(aliases),
        options,
    )
