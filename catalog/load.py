"""Load ``catalog.toml`` and its SQL files into a :class:`ResolvedCatalog`.

:func:`parse_catalog` is pure: it gets the TOML text and a ``read_sql``
callable, checks everything (structure, ids, parameters, the static SQL
check, command templates) and reports ALL problems at once, each naming the
file, line where knowable, entry and key. :func:`load_catalog_dir`,
:func:`read_seal` and :func:`write_seal` are the only functions here that
touch the file system, with :func:`read_executable_file`, the file-system reader that pins
a command's executable.
"""

from __future__ import annotations

import json
import os
import re
import stat
import tomllib
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from catalog._toml_lines import TomlLines
from catalog.errors import CatalogError, CatalogErrors, CatalogLoadError, SealError
from catalog.ids import ENTRY_ID_PATTERN, is_entry_id
from catalog.model import CommandEntry, Engine, QueryEntry, ResolvedCatalog, Seal
from catalog.resolve import Problem, from_validation, resolve_command, resolve_query

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping
    from pathlib import Path

CATALOG_FILE = "catalog.toml"
SEAL_FILE = "catalog.seal.json"

_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")
_TOP_LEVEL_KEYS = ("catalog", "sources", "query", "command")
_ARRAYS = ("query", "command")
_STRICT = ConfigDict(frozen=True, extra="forbid", strict=True)
_READ_BLOCK = 1 << 20


class _RawHeader(BaseModel):
    model_config = _STRICT

    name: str = Field(min_length=1)
    version: str = Field(min_length=1)


class _RawSource(BaseModel):
    model_config = _STRICT

    engine: Engine


class _Problems:
    """Collects the problems of one catalog.toml, adding catalog.toml line numbers."""

    def __init__(self, source_name: str, text: str) -> None:
        self.source_name = source_name
        self.lines = TomlLines(text)
        self.errors: list[CatalogError] = []

    def add(
        self,
        problem: Problem,
        *,
        entry: str | None = None,
        array: str | None = None,
        index: int = 0,
    ) -> None:
        self.errors.append(
            CatalogLoadError(
                problem.detail,
                file=self.source_name,
                line=self.lines.line_of(problem.key, array=array, index=index),
                entry=entry,
                key=".".join(problem.key) or None,
            )
        )

    def extend(
        self,
        found: Iterable[Problem | CatalogError],
        *,
        entry: str | None = None,
        array: str | None = None,
        index: int = 0,
    ) -> None:
        for item in found:
            if isinstance(item, CatalogError):
                self.errors.append(item)  # already placed, in its SQL file
            else:
                self.add(item, entry=entry, array=array, index=index)


def parse_catalog(
    toml_text: str,
    read_sql: Callable[[str], bytes],
    *,
    source_name: str = CATALOG_FILE,
    read_executable: Callable[[str], Iterable[bytes]] | None = None,
) -> ResolvedCatalog:
    """Parse and check a catalog; pure apart from calling ``read_sql`` and ``read_executable``.

    ``read_sql(path)`` returns the bytes of a catalog-relative SQL path and
    may raise ``OSError`` or ``ValueError``. ``read_executable(path)`` yields the
    bytes of a command's absolute ``argv[0]``, which are pinned by their SHA-256;
    ``None`` means :func:`read_executable_file` (the file system: an executable is a
    file of the host, not of the catalog folder). Raises :class:`CatalogLoadError`
    or :class:`SqlRejected` for a single problem, :class:`CatalogErrors` for
    several (every problem found, in file order).
    """
    try:
        doc = tomllib.loads(toml_text)
    except tomllib.TOMLDecodeError as exc:
        raise _toml_error(exc, source_name, toml_text) from exc
    problems = _Problems(source_name, toml_text)
    problems.extend(
        Problem((key,), f"unknown top-level key (allowed: {', '.join(_TOP_LEVEL_KEYS)})")
        for key in doc
        if key not in _TOP_LEVEL_KEYS
    )
    header = _header(doc, problems)
    engines = _sources(doc, problems)
    entries: list[QueryEntry | CommandEntry] = []
    seen: dict[str, str] = {}
    for array in _ARRAYS:
        for index, raw in enumerate(_tables(doc, array, problems)):
            entry = _entry(
                raw,
                array,
                index,
                engines=engines,
                read_sql=read_sql,
                read_executable=read_executable or read_executable_file,
                problems=problems,
                seen=seen,
            )
            if entry is not None:
                entries.append(entry)
    if header is not None and not problems.errors:
        try:
            return ResolvedCatalog(
                name=header.name,
                version=header.version,
                entries=tuple(sorted(entries, key=lambda e: e.id)),
            )
        except ValidationError as exc:  # defensive: the checks above cover the invariants
            problems.extend(from_validation(exc))
    raise problems.errors[0] if len(problems.errors) == 1 else CatalogErrors(problems.errors)


def _entry(  # noqa: PLR0913 - the readers and collectors, all keyword-only
    raw: Mapping[str, object],
    array: str,
    index: int,
    *,
    engines: Mapping[str, Engine],
    read_sql: Callable[[str], bytes],
    read_executable: Callable[[str], Iterable[bytes]],
    problems: _Problems,
    seen: dict[str, str],
) -> QueryEntry | CommandEntry | None:
    raw_id = raw.get("id")
    label = raw_id if isinstance(raw_id, str) and is_entry_id(raw_id) else f"{array}[{index}]"
    if label != raw_id:
        detail = "required key missing" if raw_id is None else f"must match {ENTRY_ID_PATTERN}"
        problems.add(Problem(("id",), detail), entry=label, array=array, index=index)
        return None
    if label in seen:
        detail = f"duplicate entry id (already used by an earlier [[{seen[label]}]])"
        problems.add(Problem(("id",), detail), entry=label, array=array, index=index)
        return None
    seen[label] = array
    if array == "query":
        query, found = resolve_query(raw, engines, read_sql)
        problems.extend(found, entry=label, array=array, index=index)
        return query
    command, found = resolve_command(raw, read_executable)
    problems.extend(found, entry=label, array=array, index=index)
    return command


def _toml_error(exc: tomllib.TOMLDecodeError, source_name: str, text: str) -> CatalogLoadError:
    message = str(exc)
    position = _TOML_POSITION.search(message)
    if position is not None:
        detail = f"invalid TOML: {message[: position.start()]} (column {position.group(2)})"
        return CatalogLoadError(detail, file=source_name, line=int(position.group(1)))
    return CatalogLoadError(f"invalid TOML: {message}", file=source_name, line=text.count("\n") + 1)


def _header(doc: Mapping[str, object], problems: _Problems) -> _RawHeader | None:
    raw = doc.get("catalog")
    if raw is None:
        problems.add(Problem(("catalog",), "missing [catalog] table with name and version"))
        return None
    try:
        return _RawHeader.model_validate(raw)
    except ValidationError as exc:
        problems.extend(from_validation(exc, ("catalog",)))
        return None


def _sources(doc: Mapping[str, object], problems: _Problems) -> dict[str, Engine]:
    raw = doc.get("sources", {})
    if not isinstance(raw, dict):
        problems.add(Problem(("sources",), "must be a table of [sources.<name>] tables"))
        return {}
    engines: dict[str, Engine] = {}
    for name, table in raw.items():
        try:
            engines[name] = _RawSource.model_validate(table).engine
        except ValidationError as exc:
            problems.extend(from_validation(exc, ("sources", name)))
    return engines


def _tables(doc: Mapping[str, object], array: str, problems: _Problems) -> list[dict[str, object]]:
    raw = doc.get(array, [])
    if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
        problems.add(Problem((array,), f"must be an array of tables, written [[{array}]]"))
        return []
    return raw


def load_catalog_dir(path: Path) -> ResolvedCatalog:
    """Load ``path/catalog.toml`` and the SQL files it names (I/O).

    SQL paths that resolve outside ``path`` (through ``..`` or a symlink) or
    are not regular files are refused. Raises like :func:`parse_catalog`.
    """
    root = path.resolve()
    try:
        text = (root / CATALOG_FILE).read_bytes().decode("utf-8")
    except OSError as exc:
        detail = f"cannot read {root / CATALOG_FILE}: {exc.strerror or exc}"
        raise CatalogLoadError(detail, file=CATALOG_FILE) from exc
    except UnicodeDecodeError as exc:
        raise CatalogLoadError(f"not valid UTF-8 at byte {exc.start}", file=CATALOG_FILE) from exc

    def read_sql(relative: str) -> bytes:
        target = (root / relative).resolve()
        if not target.is_relative_to(root):
            raise ValueError(f"{relative} resolves outside the catalog directory")
        if not target.is_file():
            raise ValueError(f"{relative} is not a regular file")
        return target.read_bytes()

    return parse_catalog(text, read_sql, source_name=CATALOG_FILE)


def read_executable_file(path: str) -> Iterator[bytes]:
    """Yield the bytes of the executable at ``path`` in blocks (I/O), following links as exec does.

    Raises ``OSError`` when it cannot be opened or read, ``ValueError`` when it is not a
    regular file or has no execute permission. ``O_NONBLOCK`` keeps a FIFO from blocking.
    """
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise ValueError("not a regular file")
        if not mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH):
            raise ValueError("no execute permission")
        while block := os.read(fd, _READ_BLOCK):
            yield block
    finally:
        os.close(fd)


def read_seal(path: Path) -> Seal:
    """Read and validate a seal file; raises :class:`SealError` naming the file and field."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SealError(f"cannot read seal {path}: {exc.strerror or exc}", where=str(path)) from exc
    try:
        return Seal.model_validate_json(data)
    except ValidationError as exc:
        details = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(document)'}: {e['msg']}"
            for e in exc.errors()
        )
        raise SealError(f"{path} is not a valid seal: {details}", where=str(path)) from exc


def write_seal(path: Path, seal: Seal) -> None:
    """Write ``seal`` as pretty JSON, atomically (temporary file, fsync, rename)."""
    text = json.dumps(seal.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n"
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("w", encoding="utf-8") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    temporary.replace(path)
