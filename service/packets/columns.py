"""Column types of a result table for its Table Schema (``datapackage.json``, Table Schema v2).

An engine states each result column's type before any row is read: PostgreSQL by
type OID (:mod:`service.pg_types`), SQLite by declared column type
(:mod:`service.sqlite_types`). A :class:`ColumnType` carries both what the
packet says (the Table Schema type name) and the Python type the rows hold
for that column, so the writer can check the statement against the values it
encodes: a declared type is kept only when every non-null value seen has that
Python type (SQLite does not enforce declared types; a masked column holds
text whatever its type was). Otherwise, and where the engine says nothing, the
type is inferred from the values, as it was before engines stated types.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

TABLE_SCHEMA_TYPES = frozenset(
    {"string", "number", "integer", "boolean", "object", "array", "datetime", "date", "time",
     "year", "yearmonth", "duration", "any"}
)  # fmt: skip
VALUE_TYPES: tuple[type, ...] = (int, float, bool, str, bytes)
_INFERRED = {int: "integer", float: "number", str: "string", bool: "boolean"}


@dataclass(frozen=True)
class ColumnType:
    """A column's type as its engine states it.

    ``schema_type`` is a Table Schema v2 type name; ``value`` the Python type of its
    non-null values (``int``, ``float``, ``bool``, ``str`` or ``bytes``). ``bytes``
    columns are written as base64 text: Table Schema ``string`` with format ``binary``.
    ``description``, when set, says what the text is where ``schema_type`` cannot (a
    PostgreSQL ``date`` is a ``string``: some of its values are no Table Schema ``date``);
    it becomes the field's ``description`` in ``datapackage.json`` while the type is kept.
    """

    schema_type: str
    value: type
    description: str | None = None

    def __post_init__(self) -> None:
        if self.schema_type not in TABLE_SCHEMA_TYPES:
            raise ValueError(f"not a Table Schema type: {self.schema_type!r}")
        if self.value not in VALUE_TYPES:
            raise ValueError(f"not a row value type: {self.value!r}")


def infer_type(seen: set[type]) -> tuple[str, bool]:
    """The Table Schema type of values of the Python types ``seen``, and whether it is binary."""
    kinds = seen - {type(None)}
    if kinds == {bytes}:
        return "string", True
    if kinds == {int, float}:
        return "number", False
    if len(kinds) == 1 and (kind := next(iter(kinds))) in _INFERRED:
        return _INFERRED[kind], False
    return "any", False


def resolve_types(
    columns: Sequence[str],
    stated: Sequence[ColumnType | None] | None,
    seen: Sequence[set[type]] | None,
) -> tuple[tuple[str, ...], frozenset[str]]:
    """The Table Schema type of each column and the names of the binary ones.

    ``stated`` holds the engine's types (``None``: it says nothing), ``seen`` the Python
    types of the values written per column, or ``None`` when the engine encoded the
    rows itself (then the stated types are taken as they are). A stated type the
    values contradict gives way to the inferred one.
    """
    types: list[str] = []
    binary: set[str] = set()
    for position, column in enumerate(columns):
        declared = stated[position] if stated else None
        kinds = seen[position] - {type(None)} if seen is not None else set()
        if declared is not None and kinds <= {declared.value}:
            name, is_binary = declared.schema_type, declared.value is bytes
        else:
            name, is_binary = infer_type(kinds)
        types.append(name)
        if is_binary:
            binary.add(column)
    return tuple(types), frozenset(binary)


def describe_columns(
    columns: Sequence[str],
    stated: Sequence[ColumnType | None] | None,
    types: Sequence[str],
    given: Mapping[str, str] | None,
) -> dict[str, str]:
    """Each described column's ``datapackage.json`` description: ``given``, then its type's.

    ``types`` are the types written (:func:`resolve_types`); a stated type's description
    is added only where that type was kept, so it describes the values written.
    """
    described = dict(given or {})
    for column, declared, kind in zip(columns, stated or (), types, strict=False):
        if declared is None or declared.description is None or kind != declared.schema_type:
            continue
        earlier = described.get(column)
        described[column] = (
            declared.description if earlier is None else f"{earlier}; {declared.description}"
        )
    return described
