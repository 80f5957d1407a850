"""Errors of the packet package (service/packets).

    PacketError                    every packet failure; ``where`` names the place
    ├── PacketLayoutError          an unsafe or unexpected bag member (``path``, ``detail``):
    │                              absolute, ``..``, backslash, link, duplicate, non-NFC,
    │                              zip bomb, missing or extra file
    ├── BagInvalidError            a BagIt bag refused by ``verify_bag`` (``problems``,
    │                              first ``reason`` and ``path`` on the error itself)
    ├── PacketCheckFailed          one consumption check failed (``check``, ``where``,
    │                              ``expected``, ``actual``)
    ├── PacketUploadRefused        an uploaded packet not verified at all (``where``)
    │   ├── PacketTooLarge         over the upload bound (``limit``)
    │   └── NotAPacketZip          not ``application/zip``, or not a zip archive
    └── PacketBuildError           the builder was misused or cannot write (``path``, ``detail``)
        └── UnsupportedValueError  a value not writable (``path``, ``row``, ``column``)

Verification of a packet (``verify_packet``) does not raise for a bad packet:
it returns a report whose failed check names the place (each check raises
``PacketCheckFailed`` inside, and the verifier turns it into the report). The
other errors are for readers, builders, uploads and ``verify_bag``.
"""

from __future__ import annotations

from dataclasses import dataclass


class PacketError(Exception):
    """Base of every packet error. ``where`` is a short machine-readable place."""

    def __init__(self, message: str, *, where: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.where = where


class PacketLayoutError(PacketError):
    """A bag member that must not be read: ``path`` is the member name as found."""

    def __init__(self, *, path: str, detail: str) -> None:
        super().__init__(f"{path!r}: {detail}", where=path)
        self.path = path
        self.detail = detail


@dataclass(frozen=True)
class BagProblem:
    """One reason a BagIt bag is invalid: a stable ``reason`` id, the ``path`` and prose."""

    reason: str
    path: str
    detail: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}: {self.detail}"


class BagInvalidError(PacketError):
    """A BagIt bag with at least one problem; ``reason`` and ``path`` are the first one's."""

    def __init__(self, problems: list[BagProblem]) -> None:
        if not problems:
            raise ValueError("BagInvalidError needs at least one problem")
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"invalid bag: {first}{more}", where=first.path)
        self.problems = tuple(problems)
        self.reason = first.reason
        self.path = first.path


class PacketCheckFailed(PacketError):
    """A consumption check (FORMATS section 4) failed at ``where``, with both values."""

    def __init__(
        self,
        where: str,
        detail: str,
        expected: str | None = None,
        actual: str | None = None,
        *,
        check: str = "",
    ) -> None:
        super().__init__(f"{check or 'check'} failed at {where}: {detail}", where=where)
        self.check = check
        self.detail = detail
        self.expected = expected
        self.actual = actual


class PacketUploadRefused(PacketError):
    """An uploaded packet that is refused before any check runs (``where``: the request part)."""


class PacketTooLarge(PacketUploadRefused):
    """An upload over the configured bound; nothing of it is kept."""

    def __init__(self, *, limit: int) -> None:
        super().__init__(f"the packet is larger than the {limit} bytes bound", where="body")
        self.limit = limit


class NotAPacketZip(PacketUploadRefused):
    """A body that is not ``application/zip``, or whose bytes are not a zip archive."""

    def __init__(self, detail: str, *, where: str = "body") -> None:
        super().__init__(detail, where=where)


class PacketBuildError(PacketError):
    """The builder cannot go on: a bad path, a wrong state, or an I/O failure."""

    def __init__(self, *, path: str, detail: str) -> None:
        super().__init__(f"{path}: {detail}" if path else detail, where=path)
        self.path = path
        self.detail = detail


class UnsupportedValueError(PacketBuildError):
    """A row value the table writers cannot encode (row index from 0, column name)."""

    def __init__(self, *, path: str, row: int, column: str, detail: str) -> None:
        super().__init__(path=path, detail=f"row {row}, column {column!r}: {detail}")
        self.row = row
        self.column = column
        self.where = f"{path}#row={row}&column={column}"
