"""Read-only access to the members of a packet: a zip archive or an extracted bag.

Both readers present the bag's regular files by bag-relative name (the zip's
single top-level folder is stripped and kept as ``root``). Every name is
checked before any member is read; see :class:`PacketReader` for the rules.
"""

from __future__ import annotations

import io
import os
import stat
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


@dataclass(frozen=True)
class ReadLimits:
    """Bounds that refuse a zip bomb from its central directory, before inflating it.

    ``max_ratio`` applies to members declaring more than ``ratio_floor_bytes``
    (small files compress by odd ratios and are harmless anyway). Reading a
    member never yields more than its declared size, so declared sizes bound
    the work.
    """

    max_members: int = 10_000
    max_member_bytes: int = 4 * _GiB
    max_total_bytes: int = 8 * _GiB
    max_ratio: float = 200.0
    ratio_floor_bytes: int = 16 * _MiB
    max_read_bytes: int = 64 * _MiB


class PacketReader(Protocol):
    """The members of one bag, by bag-relative name.

    An implementation MUST refuse, with :class:`PacketLayoutError` naming the
    member, from :meth:`names` and before any member is read: absolute names,
    ``..`` (and empty or ``.``) components, backslashes, control characters,
    links and other non-regular members, duplicate names (also names equal
    after case folding), non-NFC names, and members whose declared sizes or
    compression ratio exceed its :class:`ReadLimits`.
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
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
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
        try:
            self._zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as exc:
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
        if info.flag_bits & 0x1:
            raise PacketLayoutError(path=info.filename, detail="encrypted member")
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
        roots = {info.filename.split("/", 1)[0] for info in infos}
        if len(roots) != 1:
            raise PacketLayoutError(path=min(roots), detail="not a single top-level folder")
        root = roots.pop()
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
        except (zipfile.BadZipFile, zlib.error, OSError) as exc:
            raise PacketLayoutError(path=name, detail=f"unreadable member: {exc}") from exc
        return io.BufferedReader(_GuardedStream(inner, name), buffer_size=_MiB)

    def read(self, name: str) -> bytes:
        return _read_small(self, name, self._limits.max_read_bytes)


def _read_small(reader: PacketReader, name: str, limit: int) -> bytes:
    if reader.size(name) > limit:
        raise PacketLayoutError(path=name, detail=f"over the {limit} bytes bound for tag files")
    with reader.open(name) as stream:
        return stream.read(limit + 1)


class DirPacketReader:
    """An extracted bag directory; links and non-regular files are refused."""

    def __init__(self, path: Path, limits: ReadLimits | None = None) -> None:
        self._path = path
        self._limits = limits or ReadLimits()
        self._members: dict[str, int] | None = None

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
                else:
                    raise PacketLayoutError(path=name, detail="not a regular file")

    def _index(self) -> dict[str, int]:
        if self._members is None:
            if self._path.is_symlink() or not self._path.is_dir():
                raise PacketLayoutError(path=self._path.name, detail="not a bag directory")
            found: dict[str, int] = {}
            self._walk(self._path, "", found)
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
        self.size(name)
        try:
            fd = os.open(self._path / name, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError as exc:
            raise PacketLayoutError(path=name, detail=f"unreadable member: {exc}") from exc
        return os.fdopen(fd, "rb")

    def read(self, name: str) -> bytes:
        return _read_small(self, name, self._limits.max_read_bytes)


def open_packet(path: Path, limits: ReadLimits | None = None) -> ZipPacketReader | DirPacketReader:
    """Return a reader for ``path``: a bag directory, or else a packet zip."""
    if path.is_dir() and not path.is_symlink():
        return DirPacketReader(path, limits)
    return ZipPacketReader(path, limits)
