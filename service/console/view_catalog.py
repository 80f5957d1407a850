"""What the catalog pages show: the seal and every entry, and one entry with its call form.

Built from the runtime's sealed catalog, as ``GET /v1/catalog`` and
``GET /v1/catalog/{id}`` are: every signed-in principal may read the catalog (calling an
entry is what policy decides, on the dry run and the run).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, get_args

from catalog.model import CommandEntry, ParamSpec, ParamType, QueryEntry, RowBound
from catalog.seal import entry_digest
from service.contract import OutputFormat
from service.packets.tables import parquet_available

if TYPE_CHECKING:
    from catalog.digest import DigestSet
    from catalog.model import Entry
    from service.runtime import Runtime

_INPUT_TYPES = {
    ParamType.integer: "number",
    ParamType.number: "number",
    ParamType.date: "date",
    ParamType.timestamp: "text",
    ParamType.string: "text",
}


@dataclass(frozen=True)
class SealView:
    catalog_name: str
    catalog_version: str
    catalog_digest: DigestSet
    authority_status: str
    provisional_reason: str | None
    sealed: bool
    sealed_at: str | None
    seal_authority: str | None
    signature_key: str | None


@dataclass(frozen=True)
class EntryRow:
    id: str
    kind: str
    title: str
    digest: DigestSet
    matches_seal: bool | None  # None: provisional, no seal to compare with
    attributes: tuple[str, ...]


@dataclass(frozen=True)
class ParamView:
    name: str
    type: str
    required: bool
    default: str
    bounds: tuple[str, ...]
    description: str
    control: str  # "input", "select"
    input_type: str  # for inputs: number, date, text
    choices: tuple[str, ...]  # for selects
    min: str | None
    max: str | None
    step: str | None
    max_length: int | None
    value: str  # the value to show in the form (a default, or what was sent)


@dataclass(frozen=True)
class EntryView:
    id: str
    kind: str
    title: str
    description: str
    digest: DigestSet
    matches_seal: bool | None
    attributes: tuple[tuple[str, str], ...]
    params: tuple[ParamView, ...]
    sql: str | None
    argv: tuple[str, ...] | None
    formats: tuple[str, ...]


@dataclass(frozen=True)
class CatalogPage:
    seal: SealView
    entries: tuple[EntryRow, ...]


def seal_view(runtime: Runtime) -> SealView:
    sealed = runtime.sealed
    seal = sealed.seal
    return SealView(
        catalog_name=sealed.catalog.name,
        catalog_version=sealed.catalog.version,
        catalog_digest=sealed.digest,
        authority_status=sealed.authority.value,
        provisional_reason=sealed.provisional_reason,
        sealed=seal is not None,
        sealed_at=None if seal is None else seal.sealed_at,
        seal_authority=None if seal is None else seal.authority,
        signature_key=None if seal is None or seal.signature is None else seal.signature.key,
    )


def catalog_page(runtime: Runtime) -> CatalogPage:
    """The seal and every entry with its digest and whether it still matches the seal."""
    rows = []
    for entry in runtime.sealed.catalog.entries:
        digest = entry_digest(entry)
        rows.append(
            EntryRow(
                id=entry.id,
                kind=entry.kind,
                title=entry.title,
                digest=digest,
                matches_seal=_matches_seal(runtime, entry.id, digest),
                attributes=tuple(label for label, on in _flags(entry) if on),
            )
        )
    return CatalogPage(seal=seal_view(runtime), entries=tuple(rows))


def entry_view(runtime: Runtime, entry_id: str, values: dict[str, str] | None = None) -> EntryView:
    """One entry as sealed; ``values`` pre-fill its form. Raises ``UnknownEntry`` (404)."""
    entry = runtime.sealed.catalog.entry(entry_id)
    digest = entry_digest(entry)
    sent = values or {}
    formats = tuple(f for f in get_args(OutputFormat) if f != "parquet" or parquet_available())
    return EntryView(
        id=entry.id,
        kind=entry.kind,
        title=entry.title,
        description=entry.description,
        digest=digest,
        matches_seal=_matches_seal(runtime, entry.id, digest),
        attributes=_attributes(entry),
        params=tuple(_param(name, spec, sent.get(name)) for name, spec in entry.params.items()),
        sql=entry.sql if isinstance(entry, QueryEntry) else None,
        argv=entry.argv if isinstance(entry, CommandEntry) else None,
        formats=formats,
    )


def _matches_seal(runtime: Runtime, entry_id: str, digest: DigestSet) -> bool | None:
    seal = runtime.sealed.seal
    if seal is None:
        return None
    sealed = seal.entries.get(entry_id)
    return sealed is not None and not sealed.mismatches(digest)


def _flags(entry: Entry) -> list[tuple[str, bool]]:
    claim = isinstance(entry, QueryEntry) and entry.claim is not None
    return [
        ("sensitive", entry.sensitive),
        ("requires approval", entry.requires_approval),
        ("tenant scoped", entry.tenant_scoped),
        ("claim", claim),
    ]


def _attributes(entry: Entry) -> tuple[tuple[str, str], ...]:
    """Private: every attribute a reader of the entry needs, as label and text."""
    rows: list[tuple[str, str]] = [
        ("sensitive", _yes(entry.sensitive)),
        ("requires approval", _yes(entry.requires_approval)),
        (
            "tenant scoped",
            f"yes, by parameter {entry.tenant_param}" if entry.tenant_scoped else "no",
        ),
        ("timeout", f"{entry.timeout_ms:,} ms"),
        ("max bytes", f"{entry.max_bytes:,}"),
    ]
    if entry.tags:
        rows.append(("tags", ", ".join(entry.tags)))
    if entry.lease is not None:
        per = f" per {entry.lease.resource_param}" if entry.lease.resource_param else ""
        rows.append(("lease", f"at most {entry.lease.max_concurrent} at once{per}"))
    if isinstance(entry, QueryEntry):
        rows += [
            ("source", f"{entry.source} ({entry.engine})"),
            ("SQL file", entry.sql_file),
            ("max rows", f"{entry.max_rows:,}"),
            ("claim", _claim(entry)),
        ]
        if entry.sensitive_columns:
            rows.append(("sensitive columns", ", ".join(entry.sensitive_columns)))
    else:
        rows += [
            ("executable sha256", entry.executable_sha256),
            ("exit codes", ", ".join(f"{c}: {v}" for c, v in sorted(entry.exit_codes.items()))),
            ("environment", ", ".join(entry.env) or "none"),
        ]
    return tuple(rows)


def _claim(entry: QueryEntry) -> str:
    claim = entry.claim
    if claim is None:
        return "none"
    expect = claim.expect
    if isinstance(expect, RowBound):
        low = "" if expect.min_rows is None else f"at least {expect.min_rows:,} rows"
        high = "" if expect.max_rows is None else f"at most {expect.max_rows:,} rows"
        what = " and ".join(part for part in (low, high) if part)
    else:
        what = "no row at all"
    return f"{what} ({claim.surface} surface)"


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _param(name: str, spec: ParamSpec, sent: str | None) -> ParamView:
    """Private: a parameter's description and form control."""
    bounds = []
    if spec.min is not None:
        bounds.append(f"min {spec.min}")
    if spec.max is not None:
        bounds.append(f"max {spec.max}")
    if spec.max_length is not None:
        bounds.append(f"at most {spec.max_length} characters")
    if spec.pattern is not None:
        bounds.append(f"pattern {spec.pattern}")
    if spec.type is ParamType.timestamp:
        bounds.append("RFC 3339 with offset, e.g. 2026-01-31T12:00:00Z")
    default = "" if spec.default is None else _text(spec.default)
    choices: tuple[str, ...] = ()
    if spec.type is ParamType.enum:
        choices = spec.choices or ()
    elif spec.type is ParamType.boolean:
        choices = ("true", "false")
    return ParamView(
        name=name,
        type=spec.type.value,
        required=spec.required,
        default=default,
        bounds=tuple(bounds),
        description=spec.description,
        control="select" if choices else "input",
        input_type=_INPUT_TYPES.get(spec.type, "text"),
        choices=choices,
        min=None if spec.min is None else _text(spec.min),
        max=None if spec.max is None else _text(spec.max),
        step="1" if spec.type is ParamType.integer else "any",
        max_length=spec.max_length,
        value=sent if sent is not None else default,
    )


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
