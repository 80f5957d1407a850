"""Streaming writers for payload files: JSON Lines and CSV tables, and raw blobs.

Rows go to the output one at a time while the digest set, the row count and
the ~1 MiB chunks (cut on row boundaries) are computed on the same bytes; no
writer holds the result in memory. Encoding, fixed here and documented in
``datapackage.json``:

- JSON Lines: one object ``{column: value}`` per row in column order,
  ``json.dumps(ensure_ascii=False, separators=(",", ":"))``, LF after each.
- CSV: RFC 4180 quoting with a header row and LF line ends; ``None`` is
  the empty field, booleans are ``true``/``false``, numbers as in JSON.
- Values are ``int``, ``float`` (finite), ``str``, ``bool``, ``None``, and
  ``bytes`` written as standard base64 text. Anything else is refused with
  :class:`UnsupportedValueError` naming row and column.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import math
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Literal

import blake3

from catalog.digest import StreamingDigest
from service.packets.errors import PacketBuildError, UnsupportedValueError
from service.packets.manifest import Chunk, FileRecord

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

RowValue = int | float | str | bool | bytes | None
TableFormat = Literal["jsonl", "csv"]
MEDIA_TYPES: dict[str, str] = {"jsonl": "application/jsonl", "csv": "text/csv"}
DEFAULT_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class TableWritten:
    """A table as written: its file record, whether every row fit, and its column types.

    ``column_types`` are Frictionless Table Schema types (``integer``,
    ``number``, ``string``, ``boolean``, ``any``); ``binary_columns`` names
    the ``string`` columns holding base64 of ``bytes`` values.
    """

    record: FileRecord
    complete: bool
    fmt: TableFormat
    columns: tuple[str, ...]
    column_types: tuple[str, ...]
    binary_columns: frozenset[str]


@dataclass(frozen=True)
class BlobWritten:
    """A non-tabular payload file (e.g. command stdout) and whether every byte fit."""

    record: FileRecord
    complete: bool


class _ChunkedOutput:
    """Writes units (rows) to ``out``, keeping the digest set and ~chunk_bytes chunks."""

    def __init__(self, out: IO[bytes], chunk_bytes: int, *, tabular: bool) -> None:
        self._out = out
        self._chunk_bytes = chunk_bytes
        self._tabular = tabular
        self._digest = StreamingDigest()
        self._chunks: list[Chunk] = []
        self._chunk = blake3.blake3()
        self._chunk_offset = 0
        self._chunk_first_row = 0
        self.rows = 0

    @property
    def size(self) -> int:
        return self._digest.bytes

    def write(self, data: bytes, rows: int) -> None:
        self._out.write(data)
        self._digest.update(data)
        self._chunk.update(data)
        self.rows += rows
        if self.size - self._chunk_offset >= self._chunk_bytes:
            self._close_chunk()

    def _close_chunk(self) -> None:
        rows = self.rows - self._chunk_first_row
        self._chunks.append(
            Chunk(
                offset=self._chunk_offset,
                bytes=self.size - self._chunk_offset,
                first_row=self._chunk_first_row if self._tabular and rows else None,
                rows=rows if self._tabular else None,
                blake3=self._chunk.hexdigest(),
            )
        )
        self._chunk = blake3.blake3()
        self._chunk_offset = self.size
        self._chunk_first_row = self.rows

    def record(self, path: str, media_type: str) -> FileRecord:
        if self.size > self._chunk_offset:
            self._close_chunk()
        return FileRecord(
            path=path,
            bytes=self.size,
            rows=self.rows if self._tabular else None,
            media_type=media_type,
            digest=self._digest.finish(),
            chunks=tuple(self._chunks),
        )


def _cell(value: object, *, path: str, row: int, column: str) -> int | float | str | bool | None:
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value  # type: ignore[return-value]  # one of the JSON scalars just tested
    if kind is float:
        if not math.isfinite(value):  # type: ignore[arg-type]  # a float, just tested
            raise UnsupportedValueError(
                path=path, row=row, column=column, detail="non-finite number"
            )
        return value  # type: ignore[return-value]  # a float, just tested
    if kind is bytes:
        return base64.b64encode(value).decode("ascii")  # type: ignore[arg-type]  # bytes, just tested
    detail = f"{kind.__name__} is not int, float, str, bool, None or bytes"
    raise UnsupportedValueError(path=path, row=row, column=column, detail=detail)


def _text(cell: float | str | bool | None) -> str:
    if cell is None:
        return ""
    if isinstance(cell, str):
        return cell
    return json.dumps(cell)


class _Encoder:
    """Encodes one row to bytes in the chosen format and tracks column kinds (internal)."""

    def __init__(self, fmt: TableFormat, columns: tuple[str, ...], path: str) -> None:
        self._fmt = fmt
        self._columns = columns
        self._path = path
        self._kinds: list[set[type]] = [set() for _ in columns]
        self._json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        self._buffer = io.StringIO()
        self._csv = csv.writer(self._buffer, lineterminator="\n")

    def header(self) -> bytes:
        return self._csv_line(list(self._columns)) if self._fmt == "csv" else b""

    def _csv_line(self, cells: list[str]) -> bytes:
        self._buffer.seek(0)
        self._buffer.truncate()
        self._csv.writerow(cells)
        return self._buffer.getvalue().encode("utf-8")

    def row(self, values: Sequence[RowValue], index: int) -> bytes:
        if len(values) != len(self._columns):
            detail = f"{len(values)} values for {len(self._columns)} columns"
            raise UnsupportedValueError(path=self._path, row=index, column="*", detail=detail)
        cells = []
        for position, (column, value) in enumerate(zip(self._columns, values, strict=True)):
            cells.append(_cell(value, path=self._path, row=index, column=column))
            self._kinds[position].add(type(value))
        try:
            if self._fmt == "csv":
                return self._csv_line([_text(cell) for cell in cells])
            obj = dict(zip(self._columns, cells, strict=True))
            return f"{self._json.encode(obj)}\n".encode()
        except UnicodeEncodeError as exc:
            detail = f"text not encodable as UTF-8: {exc.reason}"
            raise UnsupportedValueError(
                path=self._path, row=index, column="*", detail=detail
            ) from exc

    def types(self) -> tuple[tuple[str, ...], frozenset[str]]:
        names = {int: "integer", float: "number", str: "string", bool: "boolean"}
        types: list[str] = []
        binary: set[str] = set()
        for column, kinds in zip(self._columns, self._kinds, strict=True):
            seen = kinds - {type(None)}
            if seen == {bytes}:
                types.append("string")
                binary.add(column)
            elif seen == {int, float}:
                types.append("number")
            elif len(seen) == 1 and next(iter(seen)) in names:
                types.append(names[next(iter(seen))])
            else:
                types.append("any")
        return tuple(types), frozenset(binary)


def write_table(  # noqa: PLR0913 - the table's whole description, all keyword-only
    out: IO[bytes],
    *,
    path: str,
    fmt: TableFormat,
    columns: Sequence[str],
    rows: Iterable[Sequence[RowValue]],
    max_bytes: int | None,
    max_rows: int | None = None,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> TableWritten:
    """Stream ``rows`` to ``out`` as a table and describe what was written.

    Stops before the row that would make the file exceed ``max_bytes`` or
    ``max_rows`` and returns ``complete=False`` (a row past ``max_rows`` is
    read to know that one exists). A generator passed as ``rows`` is closed
    when writing stops. Raises :class:`UnsupportedValueError` for a value that
    cannot be encoded and :class:`PacketBuildError` for bad columns.
    """
    names = tuple(columns)
    if fmt not in MEDIA_TYPES:
        raise PacketBuildError(path=path, detail=f"unknown table format {fmt!r}")
    if len(set(names)) != len(names) or not all(names):
        raise PacketBuildError(path=path, detail=f"columns must be distinct names: {names!r}")
    encoder = _Encoder(fmt, names, path)
    output = _ChunkedOutput(out, chunk_bytes, tabular=True)
    complete = True
    limit = max_bytes if max_bytes is not None else float("inf")
    header = encoder.header()
    iterator: Iterator[Sequence[RowValue]] = iter(rows)
    try:
        if len(header) > limit:
            complete = False
        else:
            output.write(header, 0)
            for index, values in enumerate(iterator):
                if max_rows is not None and index >= max_rows:
                    complete = False
                    break
                data = encoder.row(values, index)
                if output.size + len(data) > limit:
                    complete = False
                    break
                output.write(data, 1)
    finally:
        close = getattr(iterator, "close", None)
        if callable(close):
            close()
    column_types, binary = encoder.types()
    return TableWritten(
        record=output.record(path, MEDIA_TYPES[fmt]),
        complete=complete,
        fmt=fmt,
        columns=names,
        column_types=column_types,
        binary_columns=binary,
    )


def write_blob(
    out: IO[bytes],
    *,
    path: str,
    data: Iterable[bytes],
    media_type: str,
    max_bytes: int | None,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> BlobWritten:
    """Stream byte blocks to ``out``, cutting at ``max_bytes`` (then ``complete=False``)."""
    output = _ChunkedOutput(out, chunk_bytes, tabular=False)
    complete = True
    for block in data:
        room = len(block) if max_bytes is None else max_bytes - output.size
        for start in range(0, min(len(block), room), chunk_bytes):
            output.write(block[start : min(start + chunk_bytes, room)], 0)
        if room < len(block):
            complete = False
            break
    return BlobWritten(record=output.record(path, media_type), complete=complete)
