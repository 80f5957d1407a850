"""Streaming writers for payload files: JSON Lines, CSV and Parquet tables, and raw blobs.

Rows go to the output one at a time while the digest set, the row count and
the ~1 MiB chunks (cut on row boundaries) are computed on the same bytes; no
writer holds the result in memory. Encoding, fixed here and documented in
``datapackage.json``:

- JSON Lines: one object ``{column: value}`` per row in column order,
  ``json.dumps(ensure_ascii=False, separators=(",", ":"))``, LF after each.
- CSV: RFC 4180 quoting with a header row and LF line ends; ``None`` is
  the empty field, booleans are ``true``/``false``, numbers as in JSON. A
  field holding a quote, a comma, LF or CR is quoted (a bare CR too: a
  reader would take it for a line end).
- Values are ``int``, ``float`` (finite), ``str``, ``bool``, ``None``, and
  ``bytes`` written as standard base64 text. Anything else is refused with
  :class:`UnsupportedValueError` naming row and column.
- Parquet (the optional ``govex[parquet]`` extra): :mod:`service.packets.parquet`.

An engine may encode the rows itself, byte for byte as above (PostgreSQL's
``COPY``, :mod:`service.run_postgres_copy`): it hands over :class:`EncodedRows`,
one row's bytes at a time, and the same limits, digests and chunks apply.
While writing, ``progress(rows, bytes)`` is called about every
:data:`PROGRESS_INTERVAL_S` seconds.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Literal

import blake3

from catalog.digest import StreamingDigest
from service.packets.columns import ColumnType, resolve_types
from service.packets.encoding import RowEncoder
from service.packets.errors import PacketBuildError
from service.packets.manifest import Chunk, FileRecord

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

RowValue = int | float | str | bool | bytes | None
TableFormat = Literal["jsonl", "csv", "parquet"]
MEDIA_TYPES: dict[str, str] = {
    "jsonl": "application/jsonl",
    "csv": "text/csv",
    "parquet": "application/vnd.apache.parquet",
}
DEFAULT_CHUNK_BYTES = 1 << 20
PARQUET_INSTALL_HINT = "pip install govex[parquet]"
PROGRESS_INTERVAL_S = 0.5
_PROGRESS_EVERY_ROWS = 1024  # rows between two looks at the clock
Progress = Callable[[int, int], None]
"""Told ``(rows, bytes)`` written so far, while a table is being written."""


@dataclass(frozen=True)
class EncodedRows:
    """Rows the engine already encoded in ``fmt``: each item of ``lines`` is one row's bytes.

    The bytes must be exactly what :func:`write_table` would write for the same rows
    (the header excepted: the writer adds it). An iteration that raises ends the write
    with that error, as a row iterator's would.
    """

    fmt: TableFormat
    lines: Iterable[bytes | bytearray | memoryview]


@dataclass(frozen=True)
class TableWritten:
    """A table as written: its file record, whether every row fit, and its column types.

    ``column_types`` are Table Schema v2 types (``integer``, ``number``,
    ``string``, ``boolean``, ``date``, ``datetime``, ``any``, ...), from the
    engine's column types where it states them (:mod:`service.packets.columns`);
    ``binary_columns`` names the ``string`` columns holding base64 of ``bytes``
    values.
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

    @property
    def chunk_end(self) -> int:
        """The size at or past which the open chunk closes (after the unit that reaches it)."""
        return self._chunk_offset + self._chunk_bytes

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

    def record(self, path: str, media_type: str, *, rows: int | None = None) -> FileRecord:
        """The file's record; ``rows`` counts the rows of a table written as byte units."""
        if self.size > self._chunk_offset:
            self._close_chunk()
        return FileRecord(
            path=path,
            bytes=self.size,
            rows=self.rows if self._tabular else rows,
            media_type=media_type,
            digest=self._digest.finish(),
            chunks=tuple(self._chunks),
        )


def parquet_available() -> bool:
    """Whether the ``parquet`` format can be written: pyarrow (``govex[parquet]``) is installed."""
    return importlib.util.find_spec("pyarrow") is not None


class _Ticker:
    """Calls ``progress`` at most every :data:`PROGRESS_INTERVAL_S` seconds (internal)."""

    def __init__(self, progress: Progress | None) -> None:
        self._progress = progress
        self._due = time.monotonic() + PROGRESS_INTERVAL_S

    def __call__(self, rows: int, size: int) -> None:
        if self._progress is not None and time.monotonic() >= self._due:
            self._progress(rows, size)
            self._due = time.monotonic() + PROGRESS_INTERVAL_S


def write_table(  # noqa: PLR0913 - the table's whole description, all keyword-only
    out: IO[bytes],
    *,
    path: str,
    fmt: TableFormat,
    columns: Sequence[str],
    rows: Iterable[Sequence[RowValue]] | EncodedRows,
    max_bytes: int | None,
    max_rows: int | None = None,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    column_types: Sequence[ColumnType | None] | None = None,
    progress: Progress | None = None,
) -> TableWritten:
    """Stream ``rows`` to ``out`` as a table and describe what was written.

    Stops before the row that would make the file exceed ``max_bytes`` or
    ``max_rows`` and returns ``complete=False`` (a row past ``max_rows`` is
    read to know that one exists). A generator passed as ``rows`` is closed
    when writing stops. ``column_types`` are the engine's (one per column,
    ``None`` where it says nothing, empty when it says nothing at all; see
    :mod:`service.packets.columns`).
    Raises :class:`UnsupportedValueError` for a value that cannot be encoded
    and :class:`PacketBuildError` for bad columns, an unknown format, rows
    encoded in another format, or Parquet without pyarrow.
    """
    names = tuple(columns)
    if fmt not in MEDIA_TYPES:
        raise PacketBuildError(path=path, detail=f"unknown table format {fmt!r}")
    if len(set(names)) != len(names) or not all(names):
        raise PacketBuildError(path=path, detail=f"columns must be distinct names: {names!r}")
    if column_types and len(column_types) != len(names):
        detail = f"{len(column_types)} column types for {len(names)} columns"
        raise PacketBuildError(path=path, detail=detail)
    ticker = _Ticker(progress)
    if isinstance(rows, EncodedRows):
        if rows.fmt != fmt or fmt == "parquet":
            raise PacketBuildError(path=path, detail=f"rows encoded as {rows.fmt}, not {fmt}")
        output, complete = _write_encoded(
            out, path, names, rows, max_bytes, max_rows, chunk_bytes, ticker
        )
        seen = None
    elif fmt == "parquet":
        try:
            from service.packets.parquet import write_parquet  # noqa: PLC0415 - an optional extra
        except ImportError as exc:
            detail = f"the parquet format needs pyarrow: {PARQUET_INSTALL_HINT}"
            raise PacketBuildError(path=path, detail=detail) from exc
        return write_parquet(
            out,
            path=path,
            columns=names,
            rows=rows,
            max_bytes=max_bytes,
            max_rows=max_rows,
            chunk_bytes=chunk_bytes,
            column_types=column_types,
            ticker=ticker,
        )
    else:
        output, complete, seen = _write_rows(
            out, path, fmt, names, rows, max_bytes, max_rows, chunk_bytes, ticker
        )
    types, binary = resolve_types(names, column_types, seen)
    return TableWritten(
        record=output.record(path, MEDIA_TYPES[fmt]),
        complete=complete,
        fmt=fmt,
        columns=names,
        column_types=types,
        binary_columns=binary,
    )


def _write_rows(  # noqa: PLR0913, PLR0917 - write_table's arguments, passed on
    out: IO[bytes],
    path: str,
    fmt: TableFormat,
    names: tuple[str, ...],
    rows: Iterable[Sequence[RowValue]],
    max_bytes: int | None,
    max_rows: int | None,
    chunk_bytes: int,
    ticker: _Ticker,
) -> tuple[_ChunkedOutput, bool, list[set[type]]]:
    """Private: encode each row here; returns the output, completeness and value types seen."""
    encoder = RowEncoder(fmt, names, path)
    output = _ChunkedOutput(out, chunk_bytes, tabular=True)
    complete = True
    limit = max_bytes if max_bytes is not None else -1
    header = encoder.header()
    iterator: Iterator[Sequence[RowValue]] = iter(rows)
    try:
        if 0 <= limit < len(header):
            return output, False, encoder.seen
        output.write(header, 0)
        pending = bytearray()
        size, count, written, cut = output.size, 0, 0, output.chunk_end
        encode = encoder.row
        for index, values in enumerate(iterator):
            if index == max_rows:
                complete = False
                break
            data = encode(values, index)
            if 0 <= limit < size + len(data):
                complete = False
                break
            pending += data
            size += len(data)
            count += 1
            if size >= cut:
                output.write(bytes(pending), count - written)
                pending.clear()
                written, cut = count, output.chunk_end
            if not index % _PROGRESS_EVERY_ROWS:
                ticker(count, size)
        output.write(bytes(pending), count - written)
    finally:
        close = getattr(iterator, "close", None)
        if callable(close):
            close()
    return output, complete, encoder.seen


def _write_encoded(  # noqa: PLR0913, PLR0917 - write_table's arguments, passed on
    out: IO[bytes],
    path: str,
    names: tuple[str, ...],
    rows: EncodedRows,
    max_bytes: int | None,
    max_rows: int | None,
    chunk_bytes: int,
    ticker: _Ticker,
) -> tuple[_ChunkedOutput, bool]:
    """Private: rows the engine encoded, with the limits and chunks of :func:`_write_rows`.

    The loop is the hot path of a PostgreSQL ``COPY`` export (millions of rows a second
    arrive), so rows gather in one buffer written, hashed and cut once per chunk: the
    chunks fall where :class:`_ChunkedOutput` would cut them row by row.
    """
    output = _ChunkedOutput(out, chunk_bytes, tabular=True)
    complete = True
    limit = max_bytes if max_bytes is not None else -1
    header = RowEncoder(rows.fmt, names, path).header()
    iterator = iter(rows.lines)
    try:
        if 0 <= limit < len(header):
            return output, False
        output.write(header, 0)
        pending = bytearray()
        size, count, written, cut = output.size, 0, 0, output.chunk_end
        tick = _PROGRESS_EVERY_ROWS
        for line in iterator:
            if count == max_rows or 0 <= limit < size + len(line):
                complete = False
                break
            pending += line
            size += len(line)
            count += 1
            if size >= cut:
                output.write(bytes(pending), count - written)
                pending.clear()
                written, cut = count, output.chunk_end
            if count >= tick:
                tick = count + _PROGRESS_EVERY_ROWS
                ticker(count, size)
        output.write(bytes(pending), count - written)
    finally:
        close = getattr(iterator, "close", None)
        if callable(close):
            close()
    return output, complete


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
