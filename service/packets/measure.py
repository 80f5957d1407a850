"""Hash each file of a bag once, then compare it with what the bag and packet.json record.

:func:`measure` streams one member a single time: its size and SHA-256 (for the
BagIt manifests), and for a payload file recorded in ``packet.json`` its BLAKE3
and the BLAKE3 of each recorded chunk. :func:`compare` turns that into a
:class:`~service.packets.report.FileResult`: the first problem found (unreadable,
BagIt digest, size, ``packet.json`` digests, chunks) and every damaged chunk, so
a failure inside a large file is located by byte and row range. Compute, then
compare (STYLE G4): measuring never decides, comparing reads nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import blake3

from catalog.digest import DigestSet
from service.packets.errors import PacketLayoutError
from service.packets.report import MAX_DAMAGED_LISTED, ChunkDamage, FileResult

if TYPE_CHECKING:
    from service.packets.manifest import FileRecord
    from service.packets.readers import PacketReader

_BLOCK = 1 << 20


@dataclass(frozen=True)
class Measured:
    """What one read of a member gave: ``digest`` and ``chunks`` only for recorded files.

    ``chunks`` holds the BLAKE3 of each recorded chunk the file fully covers, in
    order; ``unreadable`` the reader's complaint when the member could not be read
    to its end (the digests are then of a prefix, and meaningless).
    """

    size: int
    sha256: str
    digest: DigestSet | None = None
    chunks: tuple[str, ...] = ()
    unreadable: str | None = None


def chunk_ends(record: FileRecord) -> tuple[int, ...] | None:
    """End offsets of the record's chunks; ``None`` unless consecutive from 0 to ``bytes``.

    The ``file_digests`` check names the place of malformed chunks.
    """
    ends: list[int] = []
    offset = 0
    for chunk in record.chunks:
        if chunk.offset != offset:
            return None
        offset += chunk.bytes
        ends.append(offset)
    return tuple(ends) if offset == record.bytes else None


def measure(reader: PacketReader, path: str, record: FileRecord | None) -> Measured:
    """Stream ``path`` once: size and SHA-256, and with a ``record`` BLAKE3 and chunk BLAKE3s.

    Never raises for a bad member: a read error ends the measurement with
    ``unreadable`` set.
    """
    sha = hashlib.sha256()
    whole = blake3.blake3() if record is not None else None
    ends = (chunk_ends(record) if record is not None else None) or ()
    chunks: list[str] = []
    current = blake3.blake3()
    size = 0
    unreadable = None
    try:
        with reader.open(path) as stream:
            while block := stream.read(_BLOCK):
                sha.update(block)
                if whole is None:
                    size += len(block)
                    continue
                whole.update(block)
                view = memoryview(block)
                while view and len(chunks) < len(ends) and size + len(view) >= ends[len(chunks)]:
                    cut = ends[len(chunks)] - size
                    current.update(view[:cut])
                    chunks.append(current.hexdigest())
                    current, view, size = blake3.blake3(), view[cut:], size + cut
                current.update(view)
                size += len(view)
    except PacketLayoutError as exc:
        unreadable = exc.detail
    while len(chunks) < len(ends) and ends[len(chunks)] == size:  # empty chunks at the end
        chunks.append(current.hexdigest())
        current = blake3.blake3()
    digest = None
    if whole is not None:
        digest = DigestSet(sha256=sha.hexdigest(), blake3=whole.hexdigest())
    return Measured(size, sha.hexdigest(), digest, tuple(chunks), unreadable)


def damaged_chunks(record: FileRecord, measured: Measured) -> list[ChunkDamage]:
    """Every recorded chunk whose BLAKE3 the bytes do not give (none when chunks are malformed)."""
    if chunk_ends(record) is None:
        return []
    damaged = []
    for number, chunk in enumerate(record.chunks):
        found = measured.chunks[number] if number < len(measured.chunks) else None
        if found != chunk.blake3:
            damaged.append(
                ChunkDamage(
                    offset=chunk.offset,
                    bytes=chunk.bytes,
                    first_row=chunk.first_row,
                    rows=chunk.rows,
                    expected=chunk.blake3,
                    found=found,
                )
            )
    return damaged


def _record_problem(
    record: FileRecord, measured: Measured, damaged: list[ChunkDamage]
) -> tuple[str, str | None, str | None] | None:
    """Private: the first difference from packet.json: (detail, expected, actual)."""
    if measured.size != record.bytes:
        return "size differs from packet.json", str(record.bytes), str(measured.size)
    if measured.digest is not None:
        for algorithm in record.digest.mismatches(measured.digest):
            return (
                f"{algorithm} differs from packet.json",
                record.digest.text(algorithm),
                measured.digest.text(algorithm),
            )
    if damaged:
        return "chunk blake3 differs from packet.json", None, None
    return None


def compare(
    path: str,
    measured: Measured,
    *,
    listed: str | None,
    manifest: str,
    record: FileRecord | None,
) -> FileResult:
    """The file's result: the first problem, in the order the checks meet them.

    ``listed`` is the SHA-256 hex the BagIt ``manifest`` lists; ``record`` the
    file's ``packet.json`` record, if it has one.
    """
    damaged = damaged_chunks(record, measured) if record is not None else []
    problem: tuple[str, str | None, str | None] | None = None
    if measured.unreadable is not None:
        problem = (f"unreadable member: {measured.unreadable}", None, None)
    elif listed is not None and measured.sha256 != listed:
        problem = (
            f"sha256 differs from {manifest}",
            f"sha256:{listed}",
            f"sha256:{measured.sha256}",
        )
    elif record is not None:
        problem = _record_problem(record, measured, damaged)
    detail, expected, actual = problem or ("matches", None, None)
    return FileResult(
        path=path,
        status="fail" if problem else "pass",
        bytes=measured.size,
        rows=record.rows if record is not None else None,
        detail=detail,
        expected=expected,
        actual=actual,
        damaged=tuple(damaged[:MAX_DAMAGED_LISTED]),
        damaged_chunks=len(damaged),
    )
