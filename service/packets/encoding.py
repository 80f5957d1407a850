"""One row as govex's CSV or JSON Lines bytes (the encoding :mod:`service.packets.tables` fixes).

Internal to the table writer. A row is planned by the Python types of its values:
the first row of each type signature (``(int, str, NoneType, ...)``) is checked, its
types recorded for the Table Schema, and the few values that need converting found
(``bytes`` to base64 text, booleans to ``true``/``false`` in CSV, floats checked
finite); every later row of that signature only converts those. The csv module
writes each row to a list's ``append``, with CR LF as its terminator so that it
quotes a bare CR too; the line then ends in LF.

:meth:`RowEncoder.batch` is the fast path for many rows at once (a SQLite export
is millions of rows of ints, floats, text and nulls): every value is formatted by
one ``%s`` template per row, in C, and the text is then checked as a whole. The
template's output is the encoding above exactly when the checks hold (no text
needs quoting or escaping, every null rendered where the counts say, every float
finite); when one does not, the batch is encoded row by row instead, so both
paths write the same bytes and raise the same errors.
"""

from __future__ import annotations

import base64
import csv
import json
import math
from itertools import chain, compress, repeat
from operator import is_
from typing import TYPE_CHECKING, cast

from service.packets.errors import UnsupportedValueError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from service.packets.tables import RowValue

    _Convert = Callable[[RowValue, int, int], RowValue]
_MAX_PLANS = 4096  # signatures kept; past it the cache starts over (the types stay recorded)
_SCALARS = frozenset({int, str, type(None)})
_NONE = type(None)
_CSV_BATCH_WIDTH = 2  # a CSV row of one column goes row by row
# Values the batch path formats with ``%s`` exactly as the row path encodes them: str() of
# an int is its JSON and CSV text, str() of a float its repr (both formats' number text).
_BATCH_KINDS = frozenset({int, float, str, _NONE})
_JSON_BATCH_COLUMNS: tuple[set[type], ...] = (set(), {int}, {float}, {int, float}, {str})
# What JSON escapes in text but the quote and LF, as bytes: no regex scans text this fast.
_JSON_ESCAPED = bytes([*range(0x0A), *range(0x0B, 0x20), ord("\\")])


class EncodedBatch:
    """Rows encoded together by :meth:`RowEncoder.batch` (internal to the table writer).

    ``data`` is the rows' bytes, each row ending in its only LF; :meth:`sizes` tells each
    row's share of them, worked out only when asked (where a chunk ends inside the batch).
    """

    def __init__(self, data: bytes, rows: int, kinds: list[set[type]]) -> None:
        self.data = data
        self.rows = rows
        self.kinds = kinds

    def sizes(self) -> list[int]:
        return [len(line) + 1 for line in self.data.split(b"\n")[:-1]]


class _Shape:
    """How the batch path formats rows of one set of value types per column (internal)."""

    def __init__(self, csv_format: bool, columns: tuple[str, ...], kinds: list[set[type]]) -> None:
        self.kinds = kinds
        self.floats = any(float in k for k in kinds)
        if csv_format:
            self.template = ",".join(["%s"] * len(columns)) + "\n"
            self.quotes = 0
        else:  # keys as JSON text; a column of text is quoted, numbers and nulls are not
            fields = (
                json.dumps(name, ensure_ascii=False).replace("%", "%%")
                + (':"%s"' if k - {_NONE} == {str} else ":%s")
                for name, k in zip(columns, kinds, strict=True)
            )
            self.template = "{" + ",".join(fields) + "}\n"
            self.quotes = self.template.count('"')
        # One type per column: later batches of exactly these types reuse this shape.
        self.signature = [next(iter(k)) for k in kinds] if all(len(k) == 1 for k in kinds) else None
        self.nulls = self.signature.count(_NONE) if self.signature is not None else 0


def _json_nulls(text: str) -> str:
    """A null in a text column was formatted quoted, elsewhere bare."""
    return text.replace('"None"', "null").replace("None", "null")


class _Lines(list[str]):
    """What the csv writer writes to: each row's line is appended."""

    write = list.append


class RowEncoder:
    """Encodes rows in one format and records the Python types of their values per column."""

    def __init__(self, fmt: str, columns: tuple[str, ...], path: str) -> None:
        self._csv = fmt == "csv"
        self._columns = columns
        self._path = path
        self._kinds: list[set[type]] = [set() for _ in columns]
        self._plans: dict[tuple[type, ...], tuple[tuple[int, _Convert], ...]] = {}
        self._json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        self._lines = _Lines()
        self._writer = csv.writer(self._lines, lineterminator="\r\n")
        self._shape: _Shape | None = None

    @property
    def seen(self) -> list[set[type]]:
        """The Python types of the values encoded so far, per column."""
        return self._kinds

    def header(self) -> bytes:
        return self._csv_line(list(self._columns)) if self._csv else b""

    def _csv_line(self, cells: Sequence[RowValue]) -> bytes:
        self._writer.writerow(cells)
        line = self._lines.pop()
        return (line[:-2] + "\n").encode()

    def row(self, values: Sequence[RowValue], index: int) -> bytes:
        """The row's bytes; raises :class:`UnsupportedValueError` naming row and column."""
        signature = tuple(map(type, values))
        plan = self._plans.get(signature)
        if plan is None:
            plan = self._plan(signature, index)
        if plan:
            converted = list(values)
            for position, convert in plan:
                converted[position] = convert(converted[position], index, position)
            values = converted
        try:
            if self._csv:
                return self._csv_line(values)
            return (
                self._json.encode(dict(zip(self._columns, values, strict=True))) + "\n"
            ).encode()
        except UnicodeEncodeError as exc:
            detail = f"text not encodable as UTF-8: {exc.reason}"
            raise UnsupportedValueError(
                path=self._path, row=index, column="*", detail=detail
            ) from exc

    def batch(self, rows: Sequence[Sequence[RowValue]]) -> EncodedBatch | None:
        """The rows' bytes at once, or ``None``: then encode them one by one with :meth:`row`.

        Records no types: :meth:`commit` records the batch's once it is written.
        """
        if not rows or (self._csv and len(self._columns) < _CSV_BATCH_WIDTH):
            return None  # CSV writes a row of one empty field as "" (the csv module's rule)
        if type(rows[0]) is tuple and len(self._columns) >= _CSV_BATCH_WIDTH:
            # A later row that is not a tuple makes the template raise: then row by row.
            tuples = cast("list[tuple[RowValue, ...]]", rows)
        else:
            try:
                tuples = list(map(tuple, rows))
            except TypeError:  # a row that is not a sequence: the row path says so
                return None
        flat = list(map(type, chain.from_iterable(tuples)))
        shape = self._shape
        if shape is None or shape.signature is None or flat != shape.signature * len(tuples):
            shape = self._batch_shape(flat, len(tuples))
        formatted = None if shape is None else self._format(tuples, flat, shape)
        if shape is None or formatted is None:
            return None
        try:
            data = formatted.encode()
        except UnicodeEncodeError:
            return None
        if not self._csv and len(data.translate(None, _JSON_ESCAPED)) != len(data):
            return None  # a backslash or control character to escape
        return EncodedBatch(data, len(tuples), shape.kinds)

    def _batch_shape(self, flat: list[type], rows: int) -> _Shape | None:
        """The shape of a batch whose types differ from the last one's; ``None``: row by row."""
        width = len(self._columns)
        if len(flat) != width * rows:
            return None
        kinds = [set(flat[position::width]) for position in range(width)]
        if not all(k <= _BATCH_KINDS for k in kinds):
            return None  # bools, bytes, or values the row path refuses
        if not self._csv and any(k - {_NONE} not in _JSON_BATCH_COLUMNS for k in kinds):
            return None  # a JSON column mixing text and numbers
        shape = _Shape(self._csv, self._columns, kinds)
        if shape.signature is not None:
            self._shape = shape
        return shape

    def _format(
        self, rows: list[tuple[RowValue, ...]], flat: list[type], shape: _Shape
    ) -> str | None:
        """The rows' text, nulls rendered.

        ``None`` unless the text is exactly these rows' encoding: each row's template ends in
        its only LF; in CSV, its commas are its only ones, and a quote or CR anywhere means a
        value needed quoting; in JSON, its quotes are the only ones (:meth:`batch` then looks
        for a backslash or control character in the bytes); every float is finite; ``None``
        occurs once per null and nowhere else, so it can be replaced by the null's text.
        """
        try:
            text = "".join(map(shape.template.__mod__, rows))  # a row of another width raises
        except (TypeError, ValueError):
            return None
        count = len(rows)
        if self._csv:
            width = len(self._columns)
            plain = '"' not in text and "\r" not in text and text.count(",") == count * (width - 1)
        else:
            plain = text.count('"') == count * shape.quotes  # escapes: checked on the bytes
        nulls = shape.nulls * count if shape.signature is not None else flat.count(_NONE)
        if (
            not plain
            or text.count("\n") != count
            or (nulls and text.count("None") != nulls)
            or (shape.floats and not _finite(rows, flat))
        ):
            return None
        if not nulls:
            return text
        return text.replace("None", "") if self._csv else _json_nulls(text)

    def commit(self, batch: EncodedBatch) -> None:
        """Record the Python types of a batch that was written."""
        for seen, kinds in zip(self._kinds, batch.kinds, strict=True):
            seen.update(kinds)

    def _plan(self, signature: tuple[type, ...], index: int) -> tuple[tuple[int, _Convert], ...]:
        if len(signature) != len(self._columns):
            detail = f"{len(signature)} values for {len(self._columns)} columns"
            raise UnsupportedValueError(path=self._path, row=index, column="*", detail=detail)
        plan: list[tuple[int, _Convert]] = []
        for position, kind in enumerate(signature):
            if kind in _SCALARS:
                pass
            elif kind is bool:
                if self._csv:
                    plan.append((position, _csv_bool))
            elif kind is float:
                plan.append((position, self._finite))
            elif kind is bytes:
                plan.append((position, _base64))
            else:
                detail = f"{kind.__name__} is not int, float, str, bool, None or bytes"
                raise UnsupportedValueError(
                    path=self._path, row=index, column=self._columns[position], detail=detail
                )
        for position, kind in enumerate(signature):
            self._kinds[position].add(kind)
        if len(self._plans) >= _MAX_PLANS:
            self._plans.clear()
        self._plans[signature] = found = tuple(plan)
        return found

    def _finite(self, value: RowValue, index: int, position: int) -> RowValue:
        if not math.isfinite(value):  # type: ignore[arg-type]  # planned for floats only
            raise UnsupportedValueError(
                path=self._path,
                row=index,
                column=self._columns[position],
                detail="non-finite number",
            )
        return value


def _finite(rows: list[tuple[RowValue, ...]], flat: list[type]) -> bool:
    """Whether every float among the rows' values is finite (their sum is, and adds no inf)."""
    floats = compress(chain.from_iterable(rows), map(is_, flat, repeat(float)))
    try:
        return math.isfinite(sum(floats))  # type: ignore[arg-type]  # floats only
    except OverflowError:
        return False


def _csv_bool(value: RowValue, _index: int, _position: int) -> RowValue:
    return "true" if value else "false"


def _base64(value: RowValue, _index: int, _position: int) -> RowValue:
    return base64.b64encode(value).decode("ascii")  # type: ignore[arg-type]  # planned for bytes only
