"""Read-only access to the members of a packet: a zip archive or an extracted bag.

Both readers present the bag's regular files by bag-relative name (the zip's
single top-level folder is stripped and kept as ``root``). Every name is
checked before any member is read; see :class:`PacketReader` for the rules.
"""

from __future__ import annotations

import io
import os
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Protocol, Self

from service.packets.bagit import name_problem
from service.packets.errors import PacketLayoutError

if TYPE_CHECKING:
    from pathlib import Path
    from types import TracebackType

_MiB = 1 << 20
_GiB = 1 << 30
_UTF8_FLAG = 0x800  # general purpose bit 11: the name is UTF-8
_UNSUPPORTED_FLAGS = 0x1 | 0x20 | 0x40  # encrypted, patched data, strong encryption
# What zipfile raises for damaged or exotic archives (it has no one base class for them).
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    OSError,
    NotImplementedError,
    ValueError,
    struct.error,
)
_NO_FOLLOW = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


@dataclass(frozen=True)
class ReadLimits:
    """Bounds that refuse a zip bomb from its central directory, before inflating it.

    ``max_ratio`` applies to each member declaring more than ``ratio_floor_bytes``
    (small files compress by odd ratios and are harmless anyway), and to the
    whole archive once its members declare more than that in total. Reading a
    member never yields more than its declared size (zipfile stops there and
    then checks the CRC), so declared sizes bound the work. ``max_read_bytes``
    bounds a tag file read whole (packet.json, the manifests): a legitimate one
    is well under 2 MiB even at ``max_members``.
    """

    max_members: int = 10_000
    max_member_bytes: int = 4 * _GiB
    max_total_bytes: int = 8 * _GiB
    max_ratio: float = 200.0
    ratio_floor_bytes: int = 16 * _MiB
    max_read_bytes: int = 16 * _MiB


class PacketReader(Protocol):
    """The members of one bag, by bag-relative name.

    An implementation MUST refuse, with :class:`PacketLayoutError` naming the
    member, from :meth:`names` and before any member is read: absolute names,
    ``..`` (and empty or ``.``) components, backslashes, control characters,
    links and other non-regular members, duplicate names (also names equal
    after case folding), non-NFC names, and members whose declared sizes or
    compression ratio exceed its :class:`ReadLimits`. Opening a member MUST
    NOT follow a link anywhere on its path.
    """

    @property
    def root(self) -> str:
        """The bag directory's name (the zip's single top-level folder)."""
        ...

    def names(self) -> tuple[str, ...]:
        """Every regular file of the bag, bag-relative, sorted."""
        ...

    def size(self, name: str) -> int:
        """Return the size in bytes of member ``name``."""
        ...

    def open(self, name: str) -> IO[bytes]:
        """Open member ``name`` as a binary stream; read errors raise PacketLayoutError."""
        ...

    def read(self, name: str) -> bytes:
        """All bytes of a small member (tag files); refuses members over ``max_read_bytes``."""
        ...

    def close(self) -> None:
        """Release what the reader holds open; idempotent."""
        ...


def _check_names(names: list[str]) -> None:
    seen: dict[str, str] = {}
    for name in names:
        problem = name_problem(name)
        if problem is not None:
            raise PacketLayoutError(path=name, detail=problem)
        folded = name.casefold()
        if folded in seen:
            other = seen[folded]
            detail = "duplicate name" if other == name else f"same name as {other!r} but for case"
            raise PacketLayoutError(path=name, detail=detail)
        seen[folded] = name


class _GuardedStream(io.RawIOBase):
    """A member stream whose archive errors become PacketLayoutError (internal)."""

    def __init__(self, inner: IO[bytes], name: str) -> None:
        super().__init__()
        self._inner = inner
        self._name = name

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        try:
            data = self._inner.read(len(buffer))
        except _ZIP_ERRORS as exc:
            raise PacketLayoutError(path=self._name, detail=f"unreadable member: {exc}") from exc
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._inner.close()
        super().close()


class ZipPacketReader:
    """A packet zip: one top-level folder holding the bag (FORMATS section 4)."""

    def __init__(self, path: Path, limits: ReadLimits | None = None) -> None:
        """Open ``path``; raises PacketLayoutError when it is not a readable zip."""
        self._limits = limits or ReadLimits()
        self._name = path.name
        try:
            if not stat.S_ISREG(path.stat().st_mode):
                raise PacketLayoutError(path=path.name, detail="not a regular file")
            self._zip = zipfile.ZipFile(path)
            self._archive_bytes = path.stat().st_size
        except _ZIP_ERRORS as exc:
            raise PacketLayoutError(path=path.name, detail=f"not a zip archive: {exc}") from exc
        self._members: dict[str, zipfile.ZipInfo] | None = None
        self._root = ""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._zip.close()

    @property
    def root(self) -> str:
        self._index()
        return self._root

    def _check_info(self, info: zipfile.ZipInfo) -> None:
        mode = info.external_attr >> 16
        kind = stat.S_IFMT(mode)
        if info.create_system == 3 and stat.S_ISLNK(mode):  # noqa: PLR2004 - 3 is Unix
            raise PacketLayoutError(path=info.filename, detail="symbolic link")
        if info.create_system == 3 and kind not in {0, stat.S_IFREG, stat.S_IFDIR}:  # noqa: PLR2004
            raise PacketLayoutError(path=info.filename, detail="not a regular file")
        if info.flag_bits & _UNSUPPORTED_FLAGS:
            detail = "encrypted member" if info.flag_bits & 0x41 else "patched-data member"
            raise PacketLayoutError(path=info.filename, detail=detail)
        if not info.filename.isascii() and not info.flag_bits & _UTF8_FLAG:
            detail = "non-ASCII name not marked UTF-8 (its encoding is ambiguous)"
            raise PacketLayoutError(path=info.filename, detail=detail)
        if info.compress_type not in {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED}:
            detail = f"compression method {info.compress_type} not allowed"
            raise PacketLayoutError(path=info.filename, detail=detail)
        limits = self._limits
        if info.file_size > limits.max_member_bytes:
            detail = f"declares {info.file_size} bytes, over the {limits.max_member_bytes} bound"
            raise PacketLayoutError(path=info.filename, detail=detail)
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > limits.ratio_floor_bytes and ratio > limits.max_ratio:
            detail = f"compression ratio {ratio:.0f} over the {limits.max_ratio:.0f} bound"
            raise PacketLayoutError(path=info.filename, detail=detail)

    def _index(self) -> dict[str, zipfile.ZipInfo]:
        if self._members is not None:
            return self._members
        infos = self._zip.infolist()
        if len(infos) > self._limits.max_members:
            detail = f"{len(infos)} members, over the {self._limits.max_members} bound"
            raise PacketLayoutError(path=infos[0].filename, detail=detail)
        _check_names([info.filename.removesuffix("/") for info in infos])
        root = infos[0].filename.split("/", 1)[0] if infos else ""
        for info in infos:
            if info.filename.split("/", 1)[0] != root:
                raise PacketLayoutError(path=info.filename, detail="not a single top-level folder")
        members: dict[str, zipfile.ZipInfo] = {}
        total = 0
        for info in infos:
            self._check_info(info)
            if info.filename.endswith("/"):
                continue
            if "/" not in info.filename:
                raise PacketLayoutError(path=info.filename, detail="file outside the bag folder")
            total += info.file_size
            if total > self._limits.max_total_bytes:
                detail = f"members declare over the {self._limits.max_total_bytes} bytes bound"
                raise PacketLayoutError(path=info.filename, detail=detail)
            members[info.filename.split("/", 1)[1]] = info
        ratio = total / max(self._archive_bytes, 1)
        if total > self._limits.ratio_floor_bytes and ratio > self._limits.max_ratio:
            detail = (
                f"members declare {total} bytes in a {self._archive_bytes}-byte archive: "
                f"compression ratio {ratio:.0f} over the {self._limits.max_ratio:.0f} bound"
            )
            raise PacketLayoutError(path=self._name, detail=detail)
        self._root = root
        self._members = dict(sorted(members.items()))
        return self._members

    def _info(self, name: str) -> zipfile.ZipInfo:
        info = self._index().get(name)
        if info is None:
            raise PacketLayoutError(path=name, detail="no such member")
        return info

    def names(self) -> tuple[str, ...]:
        return tuple(self._index())

    def size(self, name: str) -> int:
        return self._info(name).file_size

    def open(self, name: str) -> IO[bytes]:
        info = self._info(name)
        try:
            inner = self._zip.open(info)
        except _ZIP_ERRORS as exc:
            raise PacketLayoutError(path=name, detail=f"unreadable member: {exc}") from exc
        return io.BufferedReader(_GuardedStream(inner, name), buffer_size=_MiB)

    def read(self, name: str) -> bytes:
        return _read_small(self, name, self._limits.max_read_bytes)


def _read_small(reader: PacketReader, name: str, limit: int) -> bytes:
    if reader.size(name) > limit:
        raise PacketLayoutError(path=name, detail=f"over the {limit} bytes bound for tag files")
    with reader.open(name) as stream:
        data = stream.read(limit + 1)
    if len(data) > limit:  # a file that grew after it was listed
        raise PacketLayoutError(path=name, detail=f"over the {limit} bytes bound for tag files")
    return data


class DirPacketReader:
    """An extracted bag directory; links and non-regular files are refused."""

    def __init__(self, path: Path, limits: ReadLimits | None = None) -> None:
        self._path = path
        self._limits = limits or ReadLimits()
        self._members: dict[str, int] | None = None
        self._total = 0

    @property
    def root(self) -> str:
        return self._path.name

    def _walk(self, directory: Path, prefix: str, found: dict[str, int]) -> None:
        with os.scandir(directory) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                name = f"{prefix}{entry.name}"
                if entry.is_symlink():
                    raise PacketLayoutError(path=name, detail="symbolic link")
                if entry.is_dir(follow_symlinks=False):
                    self._walk(directory / entry.name, f"{name}/", found)
                elif entry.is_file(follow_symlinks=False):
                    found[name] = entry.stat(follow_symlinks=False).st_size
                    self._bound(name, found)
                else:
                    raise PacketLayoutError(path=name, detail="not a regular file")

    def _bound(self, name: str, found: dict[str, int]) -> None:
        """The same member count and size bounds as a zip's, so the work stays bounded."""
        limits = self._limits
        if len(found) > limits.max_members:
            detail = f"over the {limits.max_members} members bound"
            raise PacketLayoutError(path=name, detail=detail)
        if found[name] > limits.max_member_bytes:
            detail = f"{found[name]} bytes, over the {limits.max_member_bytes} bound"
            raise PacketLayoutError(path=name, detail=detail)
        self._total += found[name]
        if self._total > limits.max_total_bytes:
            detail = f"files hold over the {limits.max_total_bytes} bytes bound"
            raise PacketLayoutError(path=name, detail=detail)

    def _index(self) -> dict[str, int]:
        if self._members is None:
            if self._path.is_symlink() or not self._path.is_dir():
                raise PacketLayoutError(path=self._path.name, detail="not a bag directory")
            found: dict[str, int] = {}
            try:
                self._walk(self._path, "", found)
            except OSError as exc:  # an unreadable folder or a file gone while listing
                place = os.path.relpath(exc.filename, self._path) if exc.filename else "."
                raise PacketLayoutError(path=place, detail=f"unreadable: {exc.strerror}") from exc
            _check_names(list(found))
            self._members = dict(sorted(found.items()))
        return self._members

    def names(self) -> tuple[str, ...]:
        return tuple(self._index())

    def size(self, name: str) -> int:
        size = self._index().get(name)
        if size is None:
            raise PacketLayoutError(path=name, detail="no such member")
        return size

    def open(self, name: str) -> IO[bytes]:
        """Open ``name`` one component at a time, refusing a link at any step.

        Even a link swapped in after :meth:`names` looked is refused.
        """
        self.size(name)
        *folders, leaf = name.split("/")
        fd = -1
        try:
            fd = os.open(self._path, _NO_FOLLOW | os.O_DIRECTORY)
            for folder in folders:
                inner = os.open(folder, _NO_FOLLOW | os.O_DIRECTORY, dir_fd=fd)
                os.close(fd)
                fd = inner
            leaf_fd = os.open(leaf, _NO_FOLLOW, dir_fd=fd)
        except OSError as exc:
            raise PacketLayoutError(path=name, detail=f"unreadable member: {exc}") from exc
        finally:
            if fd >= 0:
                os.close(fd)
        stream = os.fdopen(leaf_fd, "rb")
        if not stat.S_ISREG(os.fstat(leaf_fd).st_mode):
            stream.close()
            raise PacketLayoutError(path=name, detail="not a regular file")
        return stream

    def read(self, name: str) -> bytes:
        return _read_small(self, name, self._limits.max_read_bytes)

    def close(self) -> None:
        """Nothing is held open between calls."""


def open_packet(path: Path, limits: ReadLimits | None = None) -> ZipPacketReader | DirPacketReader:
    """Return a reader for ``path``: a bag directory, or else a packet zip."""
    if path.is_dir() and not path.is_symlink():
        return DirPacketReader(path, limits)
    return ZipPacketReader(path, limits)
