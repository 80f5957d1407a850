"""Parquet tables, written while streaming (the optional ``govex[parquet]`` extra, pyarrow).

Rows gather into row groups that are written as soon as they are full, so memory holds
one row group, never the result: the first group has :data:`FIRST_GROUP_ROWS` rows,
later ones as many as fit in about :data:`GROUP_BYTES` of Arrow memory at the rows'
average size, at most :data:`MAX_GROUP_ROWS`. The bytes pass through the same digest
and ~1 MiB chunks as every payload file (chunks are byte ranges: a row group spans
several; ``rows`` of the file counts the rows written).

Column types: the engine's stated Python type where there is one (``int`` -> int64,
``float`` -> float64, ``bool`` -> bool, ``str`` -> string, ``bytes`` -> binary), else
the type of the first value in the first row group (string when all are null). A value
of another type later is refused with :class:`UnsupportedValueError`, as are
non-finite floats (the value domain of every govex table). Statistics are not written:
they would put whole values in the footer, and the footer must stay small (below).

Limits: ``max_rows`` cuts as for CSV and JSON Lines. ``max_bytes`` bounds the whole
file, footer included: a row group that may not fit (by its Arrow size, with room for
the footer) is first encoded on its own to learn its size, and cut to the rows that
fit; writing stops there with ``complete=False``.
"""

from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from service.packets.columns import ColumnType, resolve_types
from service.packets.errors import PacketBuildError, UnsupportedValueError
from service.packets.hashing import ByteSink
from service.packets.tables import MEDIA_TYPES, TableWritten, _ChunkedOutput, _Ticker

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

    from service.packets.tables import RowValue

FIRST_GROUP_ROWS = 8192
GROUP_BYTES = 2 << 20
MAX_GROUP_ROWS = 65_536  # the rows wait as Python objects: several times their Arrow size
_FOOTER_BASE = 8192  # schema, key-value metadata, magic
_FOOTER_PER_COLUMN_CHUNK = 512  # one column chunk's metadata (offsets, encodings, sizes)
_OPTIONS: dict[str, Any] = {"compression": "zstd", "write_statistics": False}
_ARROW = {
    int: pa.int64(),
    float: pa.float64(),
    bool: pa.bool_(),
    str: pa.string(),
    bytes: pa.binary(),
}
_PYTHON = {str(arrow): kind for kind, arrow in _ARROW.items()}


class _Sink:
    """A file-like object pyarrow writes to: every byte goes to the chunked output."""

    def __init__(self, output: _ChunkedOutput) -> None:
        self._output = output
        self.closed = False

    def write(self, data: bytes | memoryview) -> int:
        self._output.write(bytes(data), 0)
        return len(data)

    def tell(self) -> int:
        return self._output.size

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def writable(self) -> bool:
        return True


def write_parquet(  # noqa: PLR0913 - write_table's arguments, passed on
    out: ByteSink,
    *,
    path: str,
    columns: tuple[str, ...],
    rows: Iterable[Sequence[RowValue]],
    max_bytes: int | None,
    max_rows: int | None,
    chunk_bytes: int,
    column_types: Sequence[ColumnType | None] | None,
    ticker: _Ticker,
) -> TableWritten:
    """Stream ``rows`` to ``out`` as Parquet; see the module docstring for types and limits.

    Raises :class:`UnsupportedValueError` for a value of the wrong type or a non-finite
    float, :class:`PacketBuildError` for a table with no column.
    """
    if not columns:
        raise PacketBuildError(path=path, detail="a Parquet table needs at least one column")
    output = _ChunkedOutput(out, chunk_bytes, tabular=False)
    groups = _Groups(output, path, columns, column_types, max_bytes)
    iterator: Iterator[Sequence[RowValue]] = iter(rows)
    try:
        complete = _stream(iterator, groups, max_rows, ticker)
        groups.close()
    finally:
        close = getattr(iterator, "close", None)
        if callable(close):
            close()
    if max_bytes is not None and output.size > max_bytes:
        detail = f"the Parquet footer passed max_bytes ({output.size} > {max_bytes})"
        raise PacketBuildError(path=path, detail=detail)
    types, binary = resolve_types(columns, column_types, groups.seen())
    return TableWritten(
        record=output.record(path, MEDIA_TYPES["parquet"], rows=groups.rows),
        complete=complete,
        fmt="parquet",
        columns=columns,
        column_types=types,
        binary_columns=binary,
    )


def _stream(
    iterator: Iterator[Sequence[RowValue]], groups: _Groups, max_rows: int | None, ticker: _Ticker
) -> bool:
    """Private: gather rows into row groups and write each when full; whether all fit."""
    width = len(groups.columns)
    buffers: list[list[RowValue]] = [[] for _ in range(width)]
    pending = 0
    for index, values in enumerate(iterator):
        if max_rows is not None and index >= max_rows:
            if pending:
                groups.write(buffers)
            return False
        if len(values) != width:
            detail = f"{len(values)} values for {width} columns"
            raise UnsupportedValueError(path=groups.path, row=index, column="*", detail=detail)
        for buffer, value in zip(buffers, values, strict=True):
            buffer.append(value)
        pending += 1
        if pending >= groups.group_rows:
            if not groups.write(buffers):
                return False
            buffers, pending = [[] for _ in range(width)], 0
            ticker(groups.rows, groups.size)
    return not pending or groups.write(buffers)


class _Groups:
    """Private: the row groups written so far, the schema the first fixed, the byte limit."""

    def __init__(
        self,
        output: _ChunkedOutput,
        path: str,
        columns: tuple[str, ...],
        stated: Sequence[ColumnType | None] | None,
        max_bytes: int | None,
    ) -> None:
        self._output = output
        self.path = path
        self.columns = columns
        self._stated = stated
        self._limit = max_bytes
        self._schema: pa.Schema | None = None
        self._writer: pq.ParquetWriter | None = None
        self._count = 0
        self._non_null = [False] * len(columns)
        self.rows = 0
        self.group_rows = FIRST_GROUP_ROWS

    def _fix_schema(self, buffers: list[list[RowValue]]) -> pa.Schema:
        fields = []
        for position, (name, buffer) in enumerate(zip(self.columns, buffers, strict=True)):
            stated = self._stated[position] if self._stated else None
            first = next((value for value in buffer if value is not None), None)
            kind = stated.value if stated is not None else type(first) if first is not None else str
            if kind not in _ARROW:
                detail = f"{kind.__name__} is not int, float, str, bool, None or bytes"
                raise UnsupportedValueError(
                    path=self.path, row=self.rows, column=name, detail=detail
                )
            fields.append(pa.field(name, _ARROW[kind]))
        return pa.schema(fields)

    def _table(self, buffers: list[list[RowValue]]) -> pa.Table:
        if self._schema is None:
            self._schema = self._fix_schema(buffers)
        arrays = []
        for position, (field, buffer) in enumerate(zip(self._schema, buffers, strict=True)):
            try:
                array = pa.array(buffer, type=field.type, from_pandas=False)
            except (pa.ArrowException, TypeError, ValueError, OverflowError) as exc:
                detail = f"a value is not {field.type}: {exc}"
                raise UnsupportedValueError(
                    path=self.path, row=self.rows, column=field.name, detail=detail
                ) from exc
            if field.type == pa.float64() and not all(
                value is None or math.isfinite(value)  # type: ignore[arg-type]  # a float column
                for value in buffer
            ):
                raise UnsupportedValueError(
                    path=self.path, row=self.rows, column=field.name, detail="non-finite number"
                )
            self._non_null[position] |= array.null_count < len(array)
            arrays.append(array)
        return pa.Table.from_arrays(arrays, schema=self._schema)

    @property
    def size(self) -> int:
        return self._output.size

    def _footer(self, groups: int) -> int:
        return _FOOTER_BASE + _FOOTER_PER_COLUMN_CHUNK * len(self.columns) * groups

    def write(self, buffers: list[list[RowValue]]) -> bool:
        """Write one row group; False when the byte limit cut it (its first rows written)."""
        table = self._table(buffers)
        fits = True
        if self._limit is not None:
            room = self._limit - self._output.size - self._footer(self._count + 1) - 4
            if table.nbytes * 2 > room:
                table, fits = _fitted(table, room)
        if table.num_rows:
            self._open().write_table(table, row_group_size=table.num_rows)
            self._count += 1
            self.rows += table.num_rows
            average = max(1, table.nbytes // table.num_rows)
            self.group_rows = max(1, min(MAX_GROUP_ROWS, GROUP_BYTES // average))
        return fits

    def _open(self) -> pq.ParquetWriter:
        if self._writer is None:
            self._writer = pq.ParquetWriter(_Sink(self._output), self._schema, **_OPTIONS)
        return self._writer

    def close(self) -> None:
        if self._schema is None:
            self._schema = self._fix_schema([[] for _ in self.columns])
        self._open().close()

    def seen(self) -> list[set[type]]:
        """The Python type of each column's values (an empty set: none but nulls)."""
        if self._schema is None:
            return [set() for _ in self.columns]
        return [
            {_PYTHON[str(field.type)]} if non_null else set()
            for field, non_null in zip(self._schema, self._non_null, strict=True)
        ]


def _standalone_size(table: pa.Table) -> int:
    """Bytes of ``table`` as a Parquet file of its own: at least what it adds to ours."""
    sink = io.BytesIO()
    pq.write_table(table, sink, **_OPTIONS)
    return sink.tell()


def _fitted(table: pa.Table, room: int) -> tuple[pa.Table, bool]:
    """The longest head of ``table`` whose encoded size fits ``room``, and whether all did."""
    if _standalone_size(table) <= room:
        return table, True
    low, high = 0, table.num_rows - 1
    while low < high:
        middle = (low + high + 1) // 2
        if _standalone_size(table.slice(0, middle)) <= room:
            low = middle
        else:
            high = middle - 1
    return table.slice(0, low), False
