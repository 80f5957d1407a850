"""The govex manifest ``packet.json`` (FORMATS section 4) and its hash.

``packet.json`` holds the JCS bytes of :class:`PacketManifest` dumped to JSON,
so the file's own digest and :func:`manifest_hash` agree byte for byte.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator, model_validator

from catalog.authority import AuthorityStatus
from catalog.canonical import jcs
from catalog.digest import DigestSet, digest_bytes
from catalog.ids import ENTRY_ID_PATTERN, OPAQUE_ID_PATTERN
from catalog.model import ClaimExpect, ClaimSurface
from catalog.times import TIME_FORMAT, TIME_PATTERN
from service.packets.bagit import name_problem

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


class Claim(BaseModel):
    """The entry's claim and the verdict this run gives it (see :mod:`service.claims`).

    ``reason`` says why the verdict is ``NOT_EVIDENCED``; it is ``None`` for the other two.
    """

    model_config = _STRICT

    expect: ClaimExpect
    surface: ClaimSurface
    verdict: ClaimVerdict
    reason: ClaimReason | None = Field(
        default=None, description="Why the claim is NOT_EVIDENCED; null for the other verdicts."
    )

    @model_validator(mode="after")
    def _reason_iff_not_evidenced(self) -> Claim:
        if (self.verdict == "NOT_EVIDENCED") != (self.reason is not None):
            raise ValueError("a reason goes with NOT_EVIDENCED, and only with it")
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
