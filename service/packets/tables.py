"""Streaming writers for payload files: JSON Lines, CSV and Parquet tables, and raw blobs.

Rows go to the output in small batches (about :data:`_BATCH_BYTES`, at most
:data:`_BATCH_ROWS` rows) while the digest set, the row count and the ~1 MiB chunks
(cut on row boundaries, exactly where row by row would cut them) are computed on
the same bytes, in a thread of their own once a file passes its first chunk
(:mod:`service.packets.hashing`); no writer holds the result in memory. Encoding,
fixed here and documented in ``datapackage.json``:

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
from functools import partial
from itertools import islice
from typing import TYPE_CHECKING, Literal

from service.packets.columns import ColumnType, resolve_types
from service.packets.encoding import RowEncoder
from service.packets.errors import PacketBuildError
from service.packets.hashing import ByteSink, FileHasher, ThreadedHasher
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
_FIRST_BATCH_ROWS = 8  # rows read at once at first (rows may be large); then _BATCH_BYTES worth
_BATCH_ROWS = 1024  # rows read at once at most: the progress callback's period too
_BATCH_BYTES = 128 * 1024
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
    """Writes units (rows) to ``out``, keeping the digest set and ~chunk_bytes chunks.

    The bytes are written and hashed by a :class:`~service.packets.hashing.FileHasher`;
    with ``threaded``, a file that passes its first chunk moves that work to a thread
    (:class:`~service.packets.hashing.ThreadedHasher`; then :meth:`close` the output
    whatever happens). The sizes, rows and chunk bounds are kept in the caller's thread.
    """

    def __init__(
        self, out: ByteSink, chunk_bytes: int, *, tabular: bool, threaded: bool = False
    ) -> None:
        self._hasher: FileHasher | ThreadedHasher = FileHasher(out)
        self._threaded = threaded
        self._chunk_bytes = chunk_bytes
        self._tabular = tabular
        self._bounds: list[tuple[int, int, int | None, int | None]] = []
        self._chunk_offset = 0
        self._chunk_first_row = 0
        self.size = 0
        self.rows = 0

    @property
    def chunk_end(self) -> int:
        """The size at or past which the open chunk closes (after the unit that reaches it)."""
        return self._chunk_offset + self._chunk_bytes

    def write(self, data: bytes, rows: int) -> None:
        self._hasher.write(data)
        self.size += len(data)
        self.rows += rows
        if self.size - self._chunk_offset >= self._chunk_bytes:
            self._close_chunk()
            if self._threaded and isinstance(self._hasher, FileHasher):
                self._hasher = ThreadedHasher(self._hasher)  # a large file: hash it alongside

    def _close_chunk(self) -> None:
        rows = self.rows - self._chunk_first_row
        first_row = self._chunk_first_row if self._tabular and rows else None
        self._bounds.append(
            (self._chunk_offset, self.size - self._chunk_offset, first_row,
             rows if self._tabular else None)
        )  # fmt: skip
        self._hasher.cut()
        self._chunk_offset = self.size
        self._chunk_first_row = self.rows

    def record(self, path: str, media_type: str, *, rows: int | None = None) -> FileRecord:
        """The file's record; ``rows`` counts the rows of a table written as byte units."""
        if self.size > self._chunk_offset:
            self._close_chunk()
        digest = self._hasher.finish()
        chunks = tuple(
            Chunk(offset=offset, bytes=size, first_row=first, rows=count, blake3=hexdigest)
            for (offset, size, first, count), hexdigest in zip(
                self._bounds, self._hasher.chunks, strict=True
            )
        )
        return FileRecord(
            path=path,
            bytes=self.size,
            rows=self.rows if self._tabular else rows,
            media_type=media_type,
            digest=digest,
            chunks=chunks,
        )

    def close(self) -> None:
        """Stop the hashing thread, if any (idempotent; :meth:`record` needs it running)."""
        self._hasher.close()


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
    out: ByteSink,
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
    try:
        record = output.record(path, MEDIA_TYPES[fmt])
    finally:
        output.close()
    types, binary = resolve_types(names, column_types, seen)
    return TableWritten(
        record=record,
        complete=complete,
        fmt=fmt,
        columns=names,
        column_types=types,
        binary_columns=binary,
    )


class _Pending:
    """Rows gathered into one buffer, written, hashed and cut once per chunk (internal).

    The chunks fall where :class:`_ChunkedOutput` would cut them row by row: after the
    row that reaches the chunk's size. ``limit`` is the file's byte bound (-1: none).
    """

    def __init__(self, output: _ChunkedOutput, limit: int) -> None:
        self._output = output
        self._limit = limit
        self._buffer = bytearray()
        self.size = output.size
        self.rows = 0
        self._written = 0
        self._cut = output.chunk_end

    def fits(self, size: int) -> bool:
        """Whether ``size`` more bytes keep the file within its limit."""
        return self._limit < 0 or self.size + size <= self._limit

    def add(self, data: bytes | bytearray | memoryview) -> None:
        """One row's bytes."""
        self._buffer += data
        self.size += len(data)
        self.rows += 1
        if self.size >= self._cut:
            self.flush()

    def add_rows(self, data: bytes, rows: int, sizes: Callable[[], Iterable[int]]) -> None:
        """``rows`` rows' bytes at once; ``sizes()`` tells each row's if a chunk ends among them."""
        if self.size + len(data) < self._cut:
            self._buffer += data
            self.size += len(data)
            self.rows += rows
            return
        view, start = memoryview(data), 0
        for size in sizes():
            self.add(view[start : start + size])
            start += size

    def flush(self) -> None:
        """Write the rows gathered so far (at the end: the last chunk closes with the record)."""
        self._output.write(bytes(self._buffer), self.rows - self._written)
        self._buffer.clear()
        self._written, self._cut = self.rows, self._output.chunk_end


_END = object()


def _next_batch(iterator: Iterator[object], max_rows: int | None, read: int, size: int) -> int:
    """How many rows to read next, ``size`` at most; 0 at ``max_rows`` with no row left.

    -1 when ``max_rows`` rows were read and one more exists: the table is cut. That row is
    read, never written (a generator is closed by the caller anyway).
    """
    if max_rows is None or read < max_rows:
        return size if max_rows is None else min(size, max_rows - read)
    return 0 if next(iterator, _END) is _END else -1


def _batch_size(rows: int, size: int) -> int:
    """Rows to read next: about :data:`_BATCH_BYTES` worth, at the last batch's row size."""
    return max(1, min(_BATCH_ROWS, _BATCH_BYTES * rows // max(size, 1)))


def _write_rows(  # noqa: PLR0913, PLR0917 - write_table's arguments, passed on
    out: ByteSink,
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
    output = _ChunkedOutput(out, chunk_bytes, tabular=True, threaded=True)
    limit = max_bytes if max_bytes is not None else -1
    header = encoder.header()
    iterator: Iterator[Sequence[RowValue]] = iter(rows)
    try:
        if 0 <= limit < len(header):
            return output, False, encoder.seen
        output.write(header, 0)
        pending = _Pending(output, limit)
        complete = _encode_rows(encoder, iterator, pending, max_rows, ticker)
        pending.flush()
    except BaseException:
        output.close()
        raise
    finally:
        close = getattr(iterator, "close", None)
        if callable(close):
            close()
    return output, complete, encoder.seen


def _encode_rows(
    encoder: RowEncoder,
    iterator: Iterator[Sequence[RowValue]],
    pending: _Pending,
    max_rows: int | None,
    ticker: _Ticker,
) -> bool:
    """Private: the loop of :func:`_write_rows`; whether every row fit.

    Rows are read in batches (:func:`_batch_size`), each encoded at once
    (:meth:`RowEncoder.batch`); a batch the fast path cannot take, or that would pass
    the byte limit, is encoded row by row, stopping before the row that does not fit.
    """
    want = _next_batch(iterator, max_rows, 0, _FIRST_BATCH_ROWS)
    while want > 0:
        batch = list(islice(iterator, want))
        if not batch:
            break
        if pending.rows:  # progress while rows remain: never the end, which the record tells
            ticker(pending.rows, pending.size)
        start, size = pending.rows, pending.size
        encoded = encoder.batch(batch)
        if encoded is not None and pending.fits(len(encoded.data)):
            pending.add_rows(encoded.data, encoded.rows, encoded.sizes)
            encoder.commit(encoded)
        else:
            for offset, values in enumerate(batch):
                data = encoder.row(values, start + offset)
                if not pending.fits(len(data)):
                    return False
                pending.add(data)
        more = _batch_size(len(batch), pending.size - size)
        want = _next_batch(iterator, max_rows, pending.rows, more)
    return want >= 0


def _write_encoded(  # noqa: PLR0913, PLR0917 - write_table's arguments, passed on
    out: ByteSink,
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
    arrive), so rows are read in batches by C iterators and each batch is joined,
    checked against the limits and buffered at once; only a batch that would pass
    ``max_bytes`` goes row by row.
    """
    output = _ChunkedOutput(out, chunk_bytes, tabular=True, threaded=True)
    limit = max_bytes if max_bytes is not None else -1
    header = RowEncoder(rows.fmt, names, path).header()
    iterator = iter(rows.lines)
    try:
        if 0 <= limit < len(header):
            return output, False
        output.write(header, 0)
        pending = _Pending(output, limit)
        complete = _gather_lines(iterator, pending, max_rows, ticker)
        pending.flush()
    except BaseException:
        output.close()
        raise
    finally:
        close = getattr(iterator, "close", None)
        if callable(close):
            close()
    return output, complete


def _gather_lines(
    iterator: Iterator[bytes | bytearray | memoryview],
    pending: _Pending,
    max_rows: int | None,
    ticker: _Ticker,
) -> bool:
    """Private: the loop of :func:`_write_encoded`; whether every row fit.

    Each row is copied out of its buffer into ``bytes`` as it arrives: held a batch at
    a time, psycopg's memoryviews (objects the garbage collector tracks) would live into
    its oldest generation and set off full collections of the whole heap; ``bytes`` are
    not tracked. Measured: a 5,000,000-row COPY took twice as long holding memoryviews.
    """
    want = _next_batch(iterator, max_rows, 0, _FIRST_BATCH_ROWS)
    while want > 0:
        lines = list(map(bytes, islice(iterator, want)))
        if not lines:
            break
        if pending.rows:
            ticker(pending.rows, pending.size)
        data = b"".join(lines)
        if pending.fits(len(data)):
            pending.add_rows(data, len(lines), partial(map, len, lines))
        else:
            for line in lines:
                if not pending.fits(len(line)):
                    return False
                pending.add(line)
        want = _next_batch(iterator, max_rows, pending.rows, _batch_size(len(lines), len(data)))
    return want >= 0


def write_blob(
    out: ByteSink,
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
