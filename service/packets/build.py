"""Build a packet: stage the bag, zip it deterministically, publish it atomically (I/O).

Lifecycle of a :class:`PacketBuilder`::

    builder = PacketBuilder(packet_root, packet_id)
    written = builder.write_table(path="data/result.jsonl", fmt="jsonl", columns=..., rows=...)
    staged = builder.finish(created_at=..., authority_status=..., ...)   # zip under .staging/
    ...  # the caller makes the ledger entry that issues staged.manifest_hash durable
    builder.publish(staged)                                               # or builder.discard()

Nothing is visible under ``packet_root`` before :meth:`PacketBuilder.publish`:
the bag is written to ``packet_root/.staging/<packet_id>/``, zipped to
``packet_root/.staging/<packet_id>.zip``, and renamed to
``packet_root/<packet_id>.zip`` with ``os.replace``. The zip and the staging folder
holding it are fsynced before its ledger entry is made; the rename that publishes it
is not waited for: a power loss may undo it, and start-up recovery then publishes the
staged zip again, as its ``packet.issued`` is durable (:mod:`service.packets.recovery`).
The bag's payload files are
scratch, read back from the page cache into the zip and never fsynced themselves.
A payload file of up to :data:`SPOOL_BYTES` stays in memory and goes from there into
the zip (a small packet creates no scratch file); past that it is spilled to the bag
folder and written on there, so memory stays bounded whatever the result's size.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import zipfile
from dataclasses import dataclass
from datetime import UTC
from typing import IO, TYPE_CHECKING, Self

import orjson

from catalog.digest import digest_bytes
from catalog.ids import is_opaque_id
from catalog.times import format_time
from ledger.faults import crash_point
from service.packets.bagit import BAGIT_TXT, name_problem, render_bag_info, render_manifest
from service.packets.columns import describe_columns
from service.packets.errors import PacketBuildError
from service.packets.manifest import PacketManifest, manifest_bytes
from service.packets.report_html import REPORT_NAME, render_report_html
from service.packets.staging_lock import LOCK_SUFFIX, StagingLock
from service.packets.tables import (
    DEFAULT_CHUNK_BYTES,
    BlobWritten,
    EncodedRows,
    Progress,
    RowValue,
    TableFormat,
    TableWritten,
    write_blob,
    write_table,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from datetime import datetime
    from pathlib import Path
    from types import TracebackType

    from pydantic import JsonValue

    from catalog.authority import AuthorityStatus
    from catalog.digest import DigestSet
    from service.packets.columns import ColumnType
    from service.packets.manifest import CatalogRef, Claim, EntryRef, LedgerRef, ServiceRef

STAGING = ".staging"
ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)
ZIP_MODE = 0o100644
ZIP_STORE_ABOVE = 1 << 20
"""Bytes above which a file is stored in the packet zip rather than deflated (:func:`write_zip`)."""
ZIP_DEFLATE_ABOVE = 16 << 10
"""Bytes up to which a file is stored too: tag files and small results (:func:`zip_method`)."""
_COPY_BLOCK = 1 << 20
SPOOL_BYTES = 1 << 20
"""Bytes of a payload file kept in memory before it is spilled to the bag folder."""


class _Spool:
    """Private: a payload file, in memory up to ``limit`` bytes, then in ``path`` (``xb``).

    Written from one thread at a time (the table writer, or its hashing thread).
    """

    def __init__(self, path: Path, limit: int) -> None:
        self._path = path
        self._limit = limit
        self._memory: bytearray | None = bytearray()
        self._file: IO[bytes] | None = None

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self._memory is not None:
            if len(self._memory) + len(data) <= self._limit:
                self._memory += data
                return len(data)
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self._path.open("xb")
            self._file.write(self._memory)
            self._memory = None
        assert self._file is not None  # noqa: S101 - spilled just above, or before
        return self._file.write(data)

    @property
    def in_memory(self) -> bytes | None:
        """The bytes, when they never left memory."""
        return None if self._memory is None else bytes(self._memory)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class StagedPacket:
    """A finished packet zip waiting under ``.staging`` for its ledger entry."""

    packet_id: str
    manifest: PacketManifest
    manifest_hash: DigestSet
    zip_path: Path


def fsync_dir(path: Path) -> None:
    """Make a folder's entries (creations, renames, removals) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_zip(
    bag: Path,
    root: str,
    names: Sequence[str],
    zip_path: Path,
    *,
    contents: Mapping[str, bytes] | None = None,
) -> None:
    """Zip the bag's ``names`` under ``root/`` deterministically and fsync the zip.

    A name found in ``contents`` is written from those bytes (the tag files, made in
    memory), any other is read from ``bag``: either way the zip is the same.

    Entries are sorted, each stamped 1980-01-01 00:00:00 with mode 0644, with no
    directory entries and no comment, so the same bag gives the same bytes. The method
    too follows from the bag alone (:func:`zip_method`): a file above
    :data:`ZIP_DEFLATE_ABOVE` bytes and up to :data:`ZIP_STORE_ABOVE` is deflated at
    zlib's default level 6; a smaller one (the tag files, a small result) or a larger
    one is stored as it is.

    Why small files are stored: deflating a file takes zlib two calls, and each lets go
    of the GIL, so under concurrent calls each is a hand-off between threads and back.
    On bench/small_calls.py (a 20-row result, 8 files, 11 KB in all) storing them served
    22% more calls per second (147 -> 179 req/s, four interleaved runs each); the zip
    grew from 5.9 KB to 12.3 KB.

    The trade, measured on bench/streaming.py's 5,000,000-row results (2 cores):
    the PostgreSQL CSV, 351 MB, took 5.7 s of CPU to deflate at level 6 (67 MB in
    the zip) and 1.7 s at level 1 (76 MB), against about 0.3 s to store; the JSON
    Lines, 596 MB, 5.5 s (74 MB) and 1.9 s (82 MB). Exporting the rows takes about
    3.5 s, so any deflate would keep a finished packet far from the speed of psql's
    own copy to a file; large packets are instead 5 to 8 times bigger than level 6
    would make them. Whoever moves them can compress the transfer.

    Only the zip is fsynced: the bag's files are scratch, read back from the page
    cache once, and removed when the zip is durable.
    """
    held = contents or {}
    if not all(name in held for name in names):
        with zip_path.open("xb") as raw:
            _zip_members(raw, bag, root, names, held)
            raw.flush()
            crash_point("packet.zip.written")
            os.fsync(raw.fileno())
        return
    # Every member is in memory: assembled in memory too, the zip reaches its file in one
    # unbuffered write. Each syscall lets go of the GIL, a hand-off between threads under
    # concurrent calls; on a file, zipfile's seek back to each member's header is a flush
    # and two of them, and a buffered file adds a tty check and a seek of its own.
    with zip_path.open("xb", buffering=0) as raw:
        assembled = io.BytesIO()
        _zip_members(assembled, bag, root, names, held)
        view, written = assembled.getbuffer(), 0
        while written < len(view):  # an unbuffered write may write less than asked
            written += raw.write(view[written:])
        crash_point("packet.zip.written")
        os.fsync(raw.fileno())


def zip_method(size: int) -> int:
    """How :func:`write_zip` writes a file of ``size`` bytes: stored, or deflated."""
    if ZIP_DEFLATE_ABOVE < size <= ZIP_STORE_ABOVE:
        return zipfile.ZIP_DEFLATED
    return zipfile.ZIP_STORED


def _zip_members(
    target: IO[bytes], bag: Path, root: str, names: Sequence[str], held: Mapping[str, bytes]
) -> None:
    """Private: write :func:`write_zip`'s archive to ``target`` (a file or a buffer)."""
    block: bytearray | None = None  # one buffer for every read, made for the first file read
    with zipfile.ZipFile(target, "w") as archive:
        for name in sorted(names):
            data = held.get(name)
            source = bag / name
            size = len(data) if data is not None else source.stat().st_size
            info = zipfile.ZipInfo(f"{root}/{name}", date_time=ZIP_TIMESTAMP)
            info.compress_type = zip_method(size)
            info.create_system = 3
            info.external_attr = ZIP_MODE << 16
            info.file_size = size
            if data is not None:
                archive.writestr(info, data)
            else:
                block = block or bytearray(_COPY_BLOCK)  # no fresh pages per block
                view = memoryview(block)
                with source.open("rb") as src, archive.open(info, "w") as dst:
                    while count := src.readinto(block):
                        dst.write(view[:count])
            crash_point("packet.zip.entry")


# Table Schema v2 field types; a column type outside them is rendered "any" (still valid).
TABLE_SCHEMA_TYPES = frozenset(
    {"string", "number", "integer", "boolean", "object", "array", "list", "date", "time",
     "datetime", "year", "yearmonth", "duration", "geopoint", "geojson", "any"}
)  # fmt: skip
_TABLE_SCHEMA = "https://datapackage.org/profiles/2.0/tableschema.json"
_TABLE_DIALECT = "https://datapackage.org/profiles/2.0/tabledialect.json"
_DATA_PACKAGE = "https://datapackage.org/profiles/2.0/datapackage.json"
_NAME_UNSAFE = re.compile(r"[^a-z0-9._-]+")
_TEXT_FORMATS = frozenset({"csv", "jsonl"})


def _resource_name(path: str, taken: set[str]) -> str:
    """Private: ``data/by region/Result.csv`` -> ``by-region-result``, unique in the package.

    Names keep to the v1 pattern ``^[a-z0-9._-]+$`` so v1-only readers accept them too.
    """
    stem = path.removeprefix("data/").rsplit(".", 1)[0].lower()
    base = _NAME_UNSAFE.sub("-", stem).strip("-.") or "resource"
    name, number = base, 1
    while name in taken:
        number += 1
        name = f"{base}-{number}"
    taken.add(name)
    return name


def _table_field(
    written: TableWritten, column: str, kind: str, description: str | None
) -> dict[str, JsonValue]:
    """Private: one Table Schema field for the column type the table writer reported."""
    field: dict[str, JsonValue] = {
        "name": column,
        "type": kind if kind in TABLE_SCHEMA_TYPES else "any",
    }
    if description is not None:
        field["description"] = description
    if column in written.binary_columns:
        field["format"] = "binary"  # base64 text of the bytes
    if field["type"] == "boolean" and written.fmt == "csv":
        field["trueValues"] = ["true"]
        field["falseValues"] = ["false"]
    return field


def _table(written: TableWritten, descriptions: Mapping[str, str]) -> dict[str, JsonValue]:
    """Private: the tabular part of a resource: format, Table Schema and (CSV) dialect.

    The encoding is the one :mod:`service.packets.tables` writes: UTF-8 text for CSV
    (a header, ``,``, ``"`` doubled, LF, the empty field for null) and JSON Lines
    (one object per row); any other format (Parquet) is binary and self-describing.
    """
    fields: list[JsonValue] = [
        _table_field(written, column, kind, descriptions.get(column))
        for column, kind in zip(written.columns, written.column_types, strict=True)
    ]
    table: dict[str, JsonValue] = {"type": "table", "format": written.fmt}
    if written.fmt in _TEXT_FORMATS:
        table["encoding"] = "utf-8"
    table["schema"] = {
        "$schema": _TABLE_SCHEMA,
        "fields": fields,
        "missingValues": [""] if written.fmt == "csv" else [],
    }
    if written.fmt == "csv":
        table["dialect"] = {
            "$schema": _TABLE_DIALECT,
            "header": True,
            "delimiter": ",",
            "lineTerminator": "\n",
            "quoteChar": '"',
            "doubleQuote": True,
        }
    return table


def render_datapackage(
    packet_id: str,
    created_at: str,
    written: Sequence[TableWritten | BlobWritten],
    descriptions: Mapping[str, Mapping[str, str]] | None = None,
) -> bytes:
    """datapackage.json (Frictionless Data Package v2) describing the payload files.

    One resource per file with ``bytes`` and ``"hash": "sha256:<hex>"``; a table
    also gets its Table Schema (field types as the table writer reports them; a
    type Table Schema v2 does not define becomes ``any``) and, for CSV, its
    dialect. ``descriptions`` maps a file's path to descriptions of its columns
    (Table Schema ``description``), such as how a sensitive column was masked.
    """
    taken: set[str] = set()
    resources: list[JsonValue] = []
    for item in written:
        record = item.record
        resource: dict[str, JsonValue] = {
            "name": _resource_name(record.path, taken),
            "path": record.path,
            "mediatype": record.media_type,
            "bytes": record.bytes,
            "hash": record.digest.text("sha256"),
        }
        if isinstance(item, TableWritten):
            resource |= _table(item, (descriptions or {}).get(record.path, {}))
        resources.append(resource)
    descriptor = {
        "$schema": _DATA_PACKAGE,
        "id": packet_id,
        "created": created_at,
        "resources": resources,
    }
    # orjson's two-space indent is json.dumps(indent=2)'s layout, without its pure-Python encoder.
    return orjson.dumps(descriptor, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)


class PacketBuilder:
    """Stages one packet under ``packet_root/.staging`` and publishes it atomically."""

    def __init__(
        self, packet_root: Path, packet_id: str, *, chunk_bytes: int = DEFAULT_CHUNK_BYTES
    ) -> None:
        """Create the staging folder; refuses a bad id or one already staged or published."""
        if not is_opaque_id(packet_id):
            raise PacketBuildError(path=packet_id, detail="not an opaque packet id")
        self.packet_id = packet_id
        self.packet_root = packet_root
        self.staging = packet_root / STAGING
        self.bag = self.staging / packet_id
        self.zip_path = self.staging / f"{packet_id}.zip"
        self.final_path = packet_root / f"{packet_id}.zip"
        self._chunk_bytes = chunk_bytes
        self._written: dict[str, TableWritten | BlobWritten] = {}
        self._in_memory: dict[str, bytes] = {}  # payload files that never reached the bag
        self._descriptions: dict[str, Mapping[str, str]] = {}
        self._state = "open"
        if self.final_path.exists():
            raise PacketBuildError(path=self.final_path.name, detail="packet already published")
        # Held until publish or discard: a worker starting meanwhile leaves these files alone.
        # A new lock file, or the id is taken: whatever a builder stages (bag, zip) exists
        # only while its lock file does (discard and publish release the lock last, and a
        # dead builder's lock file stays until start-up recovery settles what it left).
        lock_path = self.staging / f"{packet_id}{LOCK_SUFFIX}"
        try:
            lock = StagingLock.create(lock_path)
        except FileNotFoundError:  # the packet root's first packet: no staging folder yet
            self.staging.mkdir(parents=True, exist_ok=True)
            lock = StagingLock.create(lock_path)
        if lock is None:
            raise PacketBuildError(path=packet_id, detail="packet already staged")
        self._lock = lock

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Discard the staging files unless the packet was published."""
        if self._state != "published":
            self.discard()

    def _require(self, state: str, action: str) -> None:
        if self._state != state:
            raise PacketBuildError(
                path=self.packet_id, detail=f"cannot {action}: packet is {self._state}"
            )

    def _open_payload(self, path: str) -> _Spool:
        self._require("open", f"write {path}")
        problem = name_problem(path)
        if problem is not None or not path.startswith("data/"):
            raise PacketBuildError(path=path, detail=problem or "payload paths start with 'data/'")
        if path in self._written:
            raise PacketBuildError(path=path, detail="already written")
        return _Spool(self.bag / path, SPOOL_BYTES)

    def _keep(self, path: str, out: _Spool) -> None:
        data = out.in_memory
        if data is not None:
            self._in_memory[path] = data

    def write_table(  # noqa: PLR0913 - write_table's description, all keyword-only
        self,
        *,
        path: str,
        fmt: TableFormat,
        columns: Sequence[str],
        rows: Iterable[Sequence[RowValue]] | EncodedRows,
        max_bytes: int | None,
        max_rows: int | None = None,
        descriptions: Mapping[str, str] | None = None,
        column_types: Sequence[ColumnType | None] | None = None,
        progress: Progress | None = None,
    ) -> TableWritten:
        """Stream a table into the bag; see :func:`service.packets.tables.write_table`.

        ``descriptions`` (column -> text) go to the columns' datapackage.json fields;
        ``column_types`` (the engine's) to their types.
        """
        with self._open_payload(path) as out:
            written = write_table(
                out,
                path=path,
                fmt=fmt,
                columns=columns,
                rows=rows,
                max_bytes=max_bytes,
                max_rows=max_rows,
                chunk_bytes=self._chunk_bytes,
                column_types=column_types,
                progress=progress,
            )
        self._keep(path, out)
        self._written[path] = written
        described = describe_columns(
            written.columns, column_types, written.column_types, descriptions
        )
        if described:
            self._descriptions[path] = described
        return written

    def write_blob(
        self, *, path: str, data: Iterable[bytes], media_type: str, max_bytes: int | None
    ) -> BlobWritten:
        """Stream raw bytes (command stdout, stderr) into the bag, cut at ``max_bytes``."""
        with self._open_payload(path) as out:
            written = write_blob(
                out,
                path=path,
                data=data,
                media_type=media_type,
                max_bytes=max_bytes,
                chunk_bytes=self._chunk_bytes,
            )
        self._keep(path, out)
        self._written[path] = written
        return written

    def finish(  # noqa: PLR0913 - the manifest's fields, all keyword-only
        self,
        *,
        created_at: datetime,
        authority_status: AuthorityStatus,
        catalog: CatalogRef,
        entry: EntryRef,
        contract: Mapping[str, JsonValue],
        complete: bool,
        claim: Claim | None,
        ledger: LedgerRef,
        service: ServiceRef,
        entry_title: str | None = None,
    ) -> StagedPacket:
        """Write the tag files and the deterministic zip; nothing is published yet.

        Refuses ``complete=True`` when a payload file was cut at its limit.
        The staged bag folder is removed once the zip is durable. ``report.html``
        (:mod:`service.packets.report_html`) shows ``entry_title``; it is written after
        ``packet.json``, so it can show the manifest hash.
        """
        self._require("open", "finish")
        cut = sorted(path for path, item in self._written.items() if not item.complete)
        if complete and cut:
            raise PacketBuildError(
                path=cut[0], detail="complete=True but this file was cut at its limit"
            )
        written = [self._written[path] for path in sorted(self._written)]
        stamp = format_time(created_at)
        manifest = PacketManifest(
            format="govex.packet/v1",
            packet_id=self.packet_id,
            created_at=stamp,
            authority_status=authority_status,
            catalog=catalog,
            entry=entry,
            contract=dict(contract),
            files=tuple(item.record for item in written),
            complete=complete,
            claim=claim,
            ledger=ledger,
            service=service,
        )
        payload = {item.record.path: item.record.digest.sha256 for item in written}
        packet_json = manifest_bytes(manifest)
        packet_hash = digest_bytes(packet_json)
        tags: dict[str, bytes] = {
            "bagit.txt": BAGIT_TXT,
            "bag-info.txt": render_bag_info(
                bagging_date=created_at.astimezone(UTC).date().isoformat(),
                payload_bytes=sum(item.record.bytes for item in written),
                payload_files=len(written),
                external_identifier=self.packet_id,
                software_agent=f"govex {service.version}",
            ),
            "manifest-sha256.txt": render_manifest(payload),
            "packet.json": packet_json,
            "datapackage.json": render_datapackage(
                self.packet_id, stamp, written, self._descriptions
            ),
        }
        # A tag file, covered by tagmanifest-sha256.txt; packet.json does not list it.
        tags[REPORT_NAME] = render_report_html(manifest, packet_hash, entry_title=entry_title)
        tag_digests = {name: hashlib.sha256(data).hexdigest() for name, data in tags.items()}
        tags["tagmanifest-sha256.txt"] = render_manifest(tag_digests)
        crash_point("packet.bag.written")
        # The tag files (and small payload files) go from memory into the zip; only the zip
        # is made durable.
        contents = {**self._in_memory, **tags}
        spilled = len(self._in_memory) < len(payload)  # a payload file went to the bag
        write_zip(self.bag, self.packet_id, [*tags, *payload], self.zip_path, contents=contents)
        self._in_memory.clear()
        crash_point("packet.zip.synced")
        fsync_dir(self.staging)
        if spilled:  # scratch; none was made for a packet held in memory
            shutil.rmtree(self.bag, ignore_errors=True)
        crash_point("packet.staged")
        self._state = "finished"
        return StagedPacket(self.packet_id, manifest, packet_hash, self.zip_path)

    def publish(self, staged: StagedPacket) -> Path:
        """Rename the staged zip to ``packet_root/<packet_id>.zip`` (atomic, visible at once).

        Call only once the ledger entry issuing ``staged.manifest_hash`` is durable: from
        then on the staged zip is as good as published, so the rename is not fsynced (after
        a power loss that undid it, start-up recovery publishes the staged zip).
        """
        self._require("finished", "publish")
        if staged.packet_id != self.packet_id or staged.zip_path != self.zip_path:
            raise PacketBuildError(path=staged.packet_id, detail="not staged by this builder")
        self.zip_path.replace(self.final_path)
        crash_point("packet.renamed")
        self._state = "published"
        self._lock.release()
        crash_point("packet.published")
        return self.final_path

    def discard(self) -> None:
        """Remove everything this builder staged; idempotent, refused after publish."""
        if self._state == "published":
            raise PacketBuildError(
                path=self.packet_id, detail="cannot discard: packet is published"
            )
        shutil.rmtree(self.bag, ignore_errors=True)
        self.zip_path.unlink(missing_ok=True)
        self._state = "discarded"
        self._lock.release()


def staging_owner(name: str) -> str:
    """The packet id a staging entry belongs to (``<id>``, ``<id>.zip``, ``<id>.lock``)."""
    for suffix in (".zip", LOCK_SUFFIX):
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name
