"""The resolved catalog: frozen entry models and the seal document (FORMATS section 2).

``ResolvedCatalog.model_dump(mode="json")`` is exactly the document that is
hashed: every field of every entry is always present, entries are sorted by
id. The models here hold already-checked values; :mod:`catalog.load` turns a
``catalog.toml`` into them and reports problems with file, line, entry and key.
"""

from __future__ import annotations

from enum import StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from catalog.digest import DigestSet
from catalog.errors import UnknownEntry
from catalog.ids import ENTRY_ID_PATTERN
from catalog.times import TIME_PATTERN

if TYPE_CHECKING:
    from collections.abc import Mapping

JsonScalar = str | int | float | bool | None
"""A normalized input or default value: what a bound parameter holds."""

CATALOG_FORMAT = "govex.catalog/v1"
SEAL_FORMAT = "govex.seal/v1"
# FORMATS section 1 time form, always with microseconds and Z.

DEFAULT_TIMEOUT_MS = 30_000
DEFAULT_MAX_ROWS = 1_000_000
DEFAULT_MAX_BYTES = 1_073_741_824
_MIB = 1024 * 1024
DEFAULT_MAX_STDERR_BYTES = _MIB
DEFAULT_CPU_SECONDS = 30
DEFAULT_MEMORY_BYTES = 1024 * _MIB
DEFAULT_FILE_SIZE_BYTES = 64 * _MIB
DEFAULT_OPEN_FILES = 64
SHA256_HEX_PATTERN = r"^[0-9a-f]{64}$"
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
COLUMN_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"

_FROZEN = ConfigDict(frozen=True, extra="forbid", strict=True)


class ParamType(StrEnum):
    """The parameter types a catalog entry may declare."""

    integer = "integer"
    number = "number"
    string = "string"
    boolean = "boolean"
    date = "date"
    timestamp = "timestamp"
    enum = "enum"


Engine = Literal["sqlite", "postgresql"]
ExitVerdict = Literal["ran_clean", "ran_with_drift", "error_running"]


class ParamSpec(BaseModel):
    """One declared parameter. Keys that do not apply to ``type`` are ``None``.

    ``default`` is already normalized (see :func:`catalog.params.bind_inputs`);
    ``required`` is false whenever a default exists.
    """

    model_config = _FROZEN

    type: ParamType
    required: bool = True
    default: JsonScalar = None
    min: int | float | None = None
    max: int | float | None = None
    max_length: int | None = None
    pattern: str | None = None
    choices: tuple[str, ...] | None = None
    description: str = ""


class RowBound(BaseModel):
    """A claimed row count: ``min_rows <= rows <= max_rows``; either may be left out, not both.

    Both are at least 1: ``max_rows = 0`` is the claim ``expect = "empty"`` (write that),
    and ``min_rows = 0`` claims nothing. Both fields are always present in the digested
    document (``None`` when left out).
    """

    model_config = _FROZEN

    min_rows: int | None = None
    max_rows: int | None = None

    @model_validator(mode="after")
    def _a_bound(self) -> RowBound:
        if self.min_rows is None and self.max_rows is None:
            raise ValueError("a row bound names min_rows, max_rows or both")
        if self.max_rows == 0:
            raise ValueError('max_rows = 0 is the claim expect = "empty": write that instead')
        if self.min_rows == 0:
            raise ValueError("min_rows = 0 claims nothing: leave it out")
        for name, value in (("min_rows", self.min_rows), ("max_rows", self.max_rows)):
            if value is not None and value < 0:
                raise ValueError(f"{name} must be a positive row count, not {value}")
        low, high = self.min_rows, self.max_rows
        if low is not None and high is not None and low > high:
            raise ValueError(f"min_rows ({low}) is above max_rows ({high})")
        return self


_EXPECT_SHAPE = 'expect is "empty" or a row-count bound such as { max_rows = 10 }'


def _claim_expect(value: object) -> object:
    """Private: check ``expect``'s shape first, so a mistake gets one clear message.

    A table becomes a :class:`RowBound` here; its problems are re-raised as one error
    naming the key, instead of one error per member of the union.
    """
    if isinstance(value, RowBound) or value == "empty":
        return value
    if not isinstance(value, dict):
        raise PydanticCustomError("claim_expect", _EXPECT_SHAPE)
    try:
        return RowBound.model_validate(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        if first["type"] == "extra_forbidden":
            detail = "unknown key (a bound takes min_rows and max_rows)"
        else:
            detail = first["msg"].removeprefix("Value error, ")
        raise PydanticCustomError(
            "claim_expect", "{detail}", {"detail": f"{key}: {detail}" if key else detail}
        ) from None


ClaimExpect = Annotated[Literal["empty"] | RowBound, BeforeValidator(_claim_expect)]
"""``"empty"`` (no row at all) or a :class:`RowBound` (a row count within bounds)."""

ClaimSurface = Literal["exhaustive", "scoped"]


class Claim(BaseModel):
    """What a query claims about its result, and over which surface.

    ``expect`` is ``"empty"`` (the query finds no row) or a :class:`RowBound`.
    ``surface`` is ``exhaustive`` (the query reads everything the claim is about: zero
    rows, or a count, can prove something) or ``scoped`` (it reads part of it: its rows
    are evidence, its silence is not). How a run judges a claim: :mod:`service.claims`.
    """

    model_config = _FROZEN

    expect: ClaimExpect
    surface: ClaimSurface


def claim_bound_problem(claim: Claim, entry_max_rows: int) -> tuple[str, str] | None:
    """Why ``claim`` cannot be judged under the entry's row limit: ``(key, detail)``, or None.

    A result cut at the entry's ``max_rows`` proves no count, so a bound's ``max_rows``
    must be below it (a count past the bound is then seen before the cut), and its
    ``min_rows`` at most it.
    """
    bound = claim.expect
    if not isinstance(bound, RowBound):
        return None
    if bound.max_rows is not None and bound.max_rows >= entry_max_rows:
        why = "a result cut at that limit proves no count"
        return "max_rows", f"must be below the entry's max_rows ({entry_max_rows}): {why}"
    if bound.min_rows is not None and bound.min_rows > entry_max_rows:
        return ("min_rows", f"must be at most the entry's max_rows ({entry_max_rows})")
    return None


class LeaseSpec(BaseModel):
    """At most ``max_concurrent`` runs of the entry at once (per value of ``resource_param``).

    A run holds its lease for the entry's timeout plus ``grace_ms``; a holder
    that crashed is reclaimed once that passes.
    """

    model_config = _FROZEN

    max_concurrent: int = Field(ge=1, le=10_000)
    resource_param: str | None = None
    grace_ms: int = Field(default=5_000, ge=0, le=3_600_000)


class _EntryBase(BaseModel):
    model_config = _FROZEN

    id: str = Field(pattern=ENTRY_ID_PATTERN)
    title: str
    description: str = ""
    params: dict[str, ParamSpec] = Field(default_factory=dict)
    timeout_ms: int = Field(default=DEFAULT_TIMEOUT_MS, gt=0)
    max_bytes: int = Field(default=DEFAULT_MAX_BYTES, gt=0)
    tags: tuple[str, ...] = ()
    sensitive: bool = False
    requires_approval: bool = False
    tenant_scoped: bool = False
    tenant_param: str | None = None
    lease: LeaseSpec | None = None


class QueryEntry(_EntryBase):
    """A read-only SQL query: ``sql`` is the checked file text, CRLF normalized to LF."""

    kind: Literal["query"] = "query"
    source: str
    engine: Engine
    sql_file: str
    sql: str
    max_rows: int = Field(default=DEFAULT_MAX_ROWS, gt=0)
    claim: Claim | None = None
    # Result columns masked in packets (a keyed digest) unless policy allows ``unmask``.
    sensitive_columns: tuple[Annotated[str, Field(pattern=COLUMN_NAME_PATTERN)], ...] = ()

    @model_validator(mode="after")
    def _claim_within_limits(self) -> QueryEntry:
        problem = None if self.claim is None else claim_bound_problem(self.claim, self.max_rows)
        if problem is not None:
            key, detail = problem
            raise ValueError(f"claim.expect.{key} {detail}")
        return self


def default_exit_codes() -> dict[str, ExitVerdict]:
    """Exit 0 means ``ran_clean``; every other code ``error_running``."""
    return {"0": "ran_clean"}


class CommandLimits(BaseModel):
    """Resource limits a command runs under (set in the child before exec), with defaults.

    ``cpu_seconds`` of CPU time, ``memory_bytes`` of address space, ``file_size_bytes`` per
    file written (in its working folder), ``open_files`` descriptors.
    """

    model_config = _FROZEN

    cpu_seconds: int = Field(default=DEFAULT_CPU_SECONDS, ge=1, le=86_400)
    memory_bytes: int = Field(default=DEFAULT_MEMORY_BYTES, ge=16 * _MIB, le=64 * 1024 * _MIB)
    file_size_bytes: int = Field(default=DEFAULT_FILE_SIZE_BYTES, ge=1, le=DEFAULT_MAX_BYTES)
    open_files: int = Field(default=DEFAULT_OPEN_FILES, ge=4, le=65_536)


class CommandEntry(_EntryBase):
    """A non-mutating command: ``argv`` template with ``{param}`` whole-item placeholders.

    ``exit_codes`` maps decimal exit codes to verdicts; unmapped codes mean
    ``error_running``. ``executable_sha256`` pins ``argv[0]`` (read when the catalog is
    loaded, so the seal covers the executable's bytes). ``env`` names the variables passed
    from the service's environment (nothing else is); stdout is capped at ``max_bytes``,
    stderr at ``max_stderr_bytes``.
    """

    kind: Literal["command"] = "command"
    argv: tuple[str, ...] = Field(min_length=1)
    executable_sha256: str = Field(pattern=SHA256_HEX_PATTERN)
    mutating: Literal[False] = False
    exit_codes: dict[str, ExitVerdict] = Field(default_factory=default_exit_codes)
    env: tuple[Annotated[str, Field(pattern=ENV_NAME_PATTERN)], ...] = ()
    max_stderr_bytes: int = Field(default=DEFAULT_MAX_STDERR_BYTES, ge=0, le=DEFAULT_MAX_BYTES)
    limits: CommandLimits = Field(default_factory=CommandLimits)


Entry = Annotated[QueryEntry | CommandEntry, Field(discriminator="kind")]


class ResolvedCatalog(BaseModel):
    """The resolved catalog document; ``entries`` sorted by id, ids unique."""

    model_config = _FROZEN

    format: Literal["govex.catalog/v1"] = "govex.catalog/v1"
    name: str = Field(min_length=1)
    version: str = Field(min_length=1)
    entries: tuple[Entry, ...] = ()

    @model_validator(mode="after")
    def _sorted_unique(self) -> ResolvedCatalog:
        ids = [e.id for e in self.entries]
        if ids != sorted(set(ids)):
            raise ValueError("entries must be sorted by id and ids must be unique")
        return self

    @property
    def by_id(self) -> Mapping[str, QueryEntry | CommandEntry]:
        """Read-only view of the entries keyed by id."""
        return MappingProxyType({e.id: e for e in self.entries})

    def entry(self, entry_id: str) -> QueryEntry | CommandEntry:
        """Return the entry ``entry_id``; raise :class:`UnknownEntry` when there is none."""
        for e in self.entries:
            if e.id == entry_id:
                return e
        raise UnknownEntry(entry_id)


class SealCatalog(BaseModel):
    model_config = _FROZEN

    name: str
    version: str


class SealSignature(BaseModel):
    """Ed25519 signature over ``catalog_digest.sha256`` raw bytes; checked in service/."""

    model_config = _FROZEN

    key: str = Field(min_length=1)
    sig: str = Field(min_length=1)


class Seal(BaseModel):
    """The ``catalog.seal.json`` document (FORMATS section 2). Not itself hashed."""

    model_config = _FROZEN

    format: Literal["govex.seal/v1"] = "govex.seal/v1"
    catalog: SealCatalog
    catalog_digest: DigestSet
    entries: dict[str, DigestSet]
    authority: Literal["sealed", "governed"] = "sealed"
    sealed_at: str = Field(pattern=TIME_PATTERN)
    signature: SealSignature | None = None
