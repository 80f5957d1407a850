"""One row as govex's CSV or JSON Lines bytes (the encoding :mod:`service.packets.tables` fixes).

Internal to the table writer. A row is planned by the Python types of its values:
the first row of each type signature (``(int, str, NoneType, ...)``) is checked, its
types recorded for the Table Schema, and the few values that need converting found
(``bytes`` to base64 text, booleans to ``true``/``false`` in CSV, floats checked
finite); every later row of that signature only converts those. The csv module
writes each row to a list's ``append``, with CR LF as its terminator so that it
quotes a bare CR too; the line then ends in LF.
"""

from __future__ import annotations

import base64
import csv
import json
import math
from typing import TYPE_CHECKING

from service.packets.errors import UnsupportedValueError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from service.packets.tables import RowValue

    _Convert = Callable[[RowValue, int, int], RowValue]
_MAX_PLANS = 4096  # signatures kept; past it the cache starts over (the types stay recorded)
_SCALARS = frozenset({int, str, type(None)})


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


def _csv_bool(value: RowValue, _index: int, _position: int) -> RowValue:
    return "true" if value else "false"


def _base64(value: RowValue, _index: int, _position: int) -> RowValue:
    return base64.b64encode(value).decode("ascii")  # type: ignore[arg-type]  # planned for bytes only
