"""The govex manifest ``packet.json`` (FORMATS section 4) and its hash.

``packet.json`` holds the JCS bytes of :class:`PacketManifest` dumped to JSON,
so the file's own digest and :func:`manifest_hash` agree byte for byte.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator, model_validator

from catalog.authority import AuthorityStatus
from catalog.digest import DigestSet, digest_bytes
from catalog.ids import ENTRY_ID_PATTERN, OPAQUE_ID_PATTERN
from catalog.model import ClaimSurface
from catalog.times import TIME_FORMAT, TIME_PATTERN
from ledger.canonical import jcs  # the fast encoder, pinned to rfc8785 by property tests
from service.packets.bagit import name_problem

if TYPE_CHECKING:
    from catalog.model import RowBound

PACKET_FORMAT = "govex.packet/v1"
_HEX64 = r"^[0-9a-f]{64}$"

_STRICT = ConfigDict(frozen=True, extra="forbid", strict=True)


class CatalogRef(BaseModel):
    """The catalog a packet's entry came from."""

    model_config = _STRICT

    name: str = Field(min_length=1)
    version: str = Field(min_length=1)
    catalog_digest: DigestSet


class EntryRef(BaseModel):
    """The entry that ran, with its digest."""

    model_config = _STRICT

    id: str = Field(pattern=ENTRY_ID_PATTERN)
    kind: Literal["query", "command"]
    entry_digest: DigestSet


class Chunk(BaseModel):
    """A consecutive byte range of a data file, on row boundaries for tables."""

    model_config = _STRICT

    offset: int = Field(ge=0)
    bytes: int = Field(ge=0)
    first_row: int | None = Field(ge=0)
    rows: int | None = Field(ge=0)
    blake3: str = Field(pattern=_HEX64)


class FileRecord(BaseModel):
    """One payload file: size, rows (``None`` for non-tabular), digests and chunks."""

    model_config = _STRICT

    path: str
    bytes: int = Field(ge=0)
    rows: int | None = Field(ge=0)
    media_type: str = Field(min_length=1)
    digest: DigestSet
    chunks: tuple[Chunk, ...]

    @field_validator("path")
    @classmethod
    def _payload_path(cls, value: str) -> str:
        problem = name_problem(value)
        if problem is not None:
            raise ValueError(problem)
        if not value.startswith("data/"):
            raise ValueError("a payload path starts with 'data/'")
        return value


ClaimVerdict = Literal["EVIDENCE_PRESENT", "ABSENT", "NOT_EVIDENCED"]
ClaimReason = Literal[
    "scoped_surface",
    "truncated",
    "timed_out",
    "row_security",
    "error",
    "no_snapshot",
    "bound_exceeded",
    "bound_not_met",
]
"""Why a claim is ``NOT_EVIDENCED``; the rules that give each are in :mod:`service.claims`."""
_BOUND_REASONS = ("bound_exceeded", "bound_not_met")


class ClaimBound(BaseModel):
    """A claimed row count as ``packet.json`` carries it: both keys, ``null`` where left out.

    Each is a count of at least 1, at least one is not ``null``, and ``min_rows <= max_rows``
    (the one rule JSON Schema cannot state). The catalog's ``RowBound`` is the same bound.
    """

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        strict=True,
        json_schema_extra={
            "not": {"properties": {"min_rows": {"type": "null"}, "max_rows": {"type": "null"}}}
        },
    )

    min_rows: int | None = Field(ge=1)
    max_rows: int | None = Field(ge=1)

    @classmethod
    def of(cls, bound: RowBound) -> ClaimBound:
        """The catalog's bound, as a packet records it."""
        return cls(min_rows=bound.min_rows, max_rows=bound.max_rows)

    @model_validator(mode="after")
    def _a_bound(self) -> ClaimBound:
        if self.min_rows is None and self.max_rows is None:
            raise ValueError("a row bound names min_rows, max_rows or both")
        if (
            self.min_rows is not None
            and self.max_rows is not None
            and self.min_rows > self.max_rows
        ):
            raise ValueError(f"min_rows ({self.min_rows}) is above max_rows ({self.max_rows})")
        return self


def _if(when: dict[str, JsonValue], then: dict[str, JsonValue]) -> dict[str, JsonValue]:
    """Private: a JSON Schema ``if``/``then`` over the claim's properties."""
    return {"if": {"properties": when}, "then": {"properties": then}}


class Claim(BaseModel):
    """The entry's claim and the verdict this run gives it (see :mod:`service.claims`).

    ``reason`` says why the verdict is ``NOT_EVIDENCED``; it is ``None`` for the other two.
    ``EVIDENCE_PRESENT`` goes only with ``expect = "empty"`` (rows against a bound are
    ``bound_exceeded``), and the ``bound_*`` reasons only with a bound. The JSON Schema
    states each of these rules (``allOf``), as the validator does.
    """

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        strict=True,
        json_schema_extra={
            "allOf": [
                {
                    **_if({"verdict": {"const": "NOT_EVIDENCED"}}, {"reason": {"type": "string"}}),
                    "else": {"properties": {"reason": {"type": "null"}}},
                },
                _if({"verdict": {"const": "EVIDENCE_PRESENT"}}, {"expect": {"const": "empty"}}),
                _if({"reason": {"enum": list(_BOUND_REASONS)}}, {"expect": {"type": "object"}}),
            ]
        },
    )

    expect: Literal["empty"] | ClaimBound
    surface: ClaimSurface
    verdict: ClaimVerdict
    reason: ClaimReason | None = Field(
        description="Why the claim is NOT_EVIDENCED; null for the other verdicts."
    )

    @model_validator(mode="after")
    def _consistent(self) -> Claim:
        if (self.verdict == "NOT_EVIDENCED") != (self.reason is not None):
            raise ValueError("a reason goes with NOT_EVIDENCED, and only with it")
        if self.verdict == "EVIDENCE_PRESENT" and self.expect != "empty":
            raise ValueError('EVIDENCE_PRESENT goes with expect "empty" only')
        if self.reason in _BOUND_REASONS and self.expect == "empty":
            raise ValueError(f'{self.reason} goes with a row bound, not expect "empty"')
        return self


class LedgerRef(BaseModel):
    """Where the call that made this packet is recorded."""

    model_config = _STRICT

    origin: str = Field(min_length=1)
    call_seq: int = Field(ge=0)


class ServiceRef(BaseModel):
    """The service build that made the packet."""

    model_config = _STRICT

    version: str = Field(min_length=1)
    module_sha256: str = Field(pattern=_HEX64)


class PacketManifest(BaseModel):
    """``packet.json``, exactly the fields of FORMATS section 4 and no others."""

    model_config = _STRICT

    format: Literal["govex.packet/v1"]
    packet_id: str = Field(pattern=OPAQUE_ID_PATTERN)
    created_at: str = Field(pattern=TIME_PATTERN)
    authority_status: AuthorityStatus
    catalog: CatalogRef
    entry: EntryRef
    contract: dict[str, JsonValue]
    files: tuple[FileRecord, ...]
    complete: bool
    claim: Claim | None
    ledger: LedgerRef
    service: ServiceRef

    @field_validator("created_at")
    @classmethod
    def _real_time(cls, value: str) -> str:
        datetime.strptime(value, TIME_FORMAT)  # noqa: DTZ007 - the pattern pins the Z suffix
        return value

    @field_validator("files")
    @classmethod
    def _unique_paths(cls, value: tuple[FileRecord, ...]) -> tuple[FileRecord, ...]:
        seen: set[str] = set()
        for record in value:
            if record.path in seen:
                raise ValueError(f"path {record.path!r} listed twice")
            seen.add(record.path)
        return value


def manifest_bytes(manifest: PacketManifest) -> bytes:
    """Return the exact bytes of ``packet.json``: JCS of the manifest's JSON form."""
    return jcs(manifest.model_dump(mode="json"), "packet.json")


def manifest_hash(manifest: PacketManifest) -> DigestSet:
    """``digest(JCS(packet.json))``, the value the ledger records for the packet."""
    return digest_bytes(manifest_bytes(manifest))
