"""Errors of the catalog package.

    CatalogError              every catalog failure; ``where`` names the place
    ├── CanonicalizationError a value JCS cannot encode (``where`` = JSON pointer)
    ├── CatalogLoadError      catalog.toml / .sql unreadable or invalid (file, line, entry, key)
    ├── SqlRejected           the static read-only check refused a query (entry, file, line, rule)
    ├── CatalogErrors         several of the above, collected (``errors``)
    ├── UnknownEntry          no entry with that id in the resolved catalog
    ├── SealError             seal file missing or malformed
    │   └── SealMismatch      digests differ from the seal (changed / added / removed, header)
    └── InputError            a call input refused (entry, parameter, reason)
        └── InputErrors       several input errors, collected (``errors``)

The names without an ``Error`` suffix are fixed by the shared plan.

Every error carries its place as constructor arguments, so tests and the
service's problem mapping read them as data, never parse the message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence


class CatalogError(Exception):
    """Base of every catalog error. ``where`` is a short machine-readable place."""

    def __init__(self, message: str, *, where: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.where = where


class CanonicalizationError(CatalogError):
    """A value that RFC 8785 cannot encode."""


def _place(file: str, line: int | None) -> str:
    return f"{file}:{line}" if line is not None else file


class CatalogLoadError(CatalogError):
    """catalog.toml or a file it names is unreadable or invalid.

    ``file`` is the catalog-relative file, ``line`` its 1-based line when
    knowable, ``entry`` the entry id (or ``query[2]`` when the id itself is
    missing or invalid), ``key`` the dotted key path inside the entry or file.
    """

    def __init__(
        self,
        detail: str,
        *,
        file: str,
        line: int | None = None,
        entry: str | None = None,
        key: str | None = None,
    ) -> None:
        parts = [_place(file, line)]
        if entry is not None:
            parts.append(f"entry {entry}")
        if key is not None:
            parts.append(f"key {key}")
        super().__init__(f"{': '.join(parts)}: {detail}", where=_place(file, line))
        self.detail = detail
        self.file = file
        self.line = line
        self.entry = entry
        self.key = key


class SqlRejected(CatalogError):
    """The static read-only check refused the SQL of a query entry.

    ``rule`` is one of the stable rule ids of :mod:`catalog.sqlcheck`.
    """

    def __init__(self, *, entry: str, file: str, line: int, rule: str, detail: str) -> None:
        super().__init__(
            f"{file}:{line}: entry {entry}: rule {rule}: {detail}", where=f"{file}:{line}"
        )
        self.entry = entry
        self.file = file
        self.line = line
        self.rule = rule
        self.detail = detail


class CatalogErrors(CatalogError):
    """Several catalog problems found in one pass, in the order they were found."""

    def __init__(self, errors: Sequence[CatalogError]) -> None:
        lines = "\n".join(f"  {e.message}" for e in errors)
        super().__init__(f"{len(errors)} catalog problems:\n{lines}", where="catalog")
        self.errors = list(errors)


class UnknownEntry(CatalogError):
    """The resolved catalog has no entry ``entry``."""

    def __init__(self, entry: str) -> None:
        super().__init__(f"no catalog entry {entry!r}", where=entry)
        self.entry = entry


class SealError(CatalogError):
    """The seal file is missing, unreadable or not a valid seal document."""


class SealMismatch(SealError):
    """The catalog's digests differ from its seal.

    ``changed``, ``added`` and ``removed`` name entry ids (sorted);
    ``header`` names what differs outside the entries (``name``, ``version``,
    ``catalog_digest``), so a mismatch always names something.
    """

    def __init__(
        self,
        *,
        changed: Sequence[str],
        added: Sequence[str],
        removed: Sequence[str],
        header: Sequence[str] = (),
    ) -> None:
        parts = [
            f"{label}: {', '.join(ids)}"
            for label, ids in (
                ("changed", changed),
                ("added", added),
                ("removed", removed),
                ("catalog", header),
            )
            if ids
        ]
        super().__init__(
            f"catalog does not match its seal: {'; '.join(parts)}", where="catalog.seal.json"
        )
        self.changed = list(changed)
        self.added = list(added)
        self.removed = list(removed)
        self.header = list(header)


class InputError(CatalogError):
    """One call input refused: ``parameter`` of ``entry``, and why.

    ``reason`` never contains the refused value when the value looks like a
    secret.
    """

    def __init__(self, *, entry: str, parameter: str, reason: str) -> None:
        super().__init__(
            f"entry {entry}: parameter {parameter}: {reason}", where=f"{entry}:{parameter}"
        )
        self.entry = entry
        self.parameter = parameter
        self.reason = reason


class InputErrors(InputError):
    """Every refused input of one call, collected (``errors``)."""

    def __init__(self, errors: Sequence[InputError]) -> None:
        first = errors[0]
        super().__init__(
            entry=first.entry,
            parameter=", ".join(e.parameter for e in errors),
            reason="; ".join(f"{e.parameter}: {e.reason}" for e in errors),
        )
        count = "1 input" if len(errors) == 1 else f"{len(errors)} inputs"
        self.message = f"entry {first.entry}: {count} refused: " + "; ".join(
            f"{e.parameter}: {e.reason}" for e in errors
        )
        self.args = (self.message,)
        self.errors = list(errors)
