"""The result of verifying a packet, and its two renderings: JSON and lines a person reads.

A :class:`VerifyReport` says, in this order, what was enforced (:class:`Enforced`:
the required authority, pinned hashes, trusted keys and origin), one
:class:`CheckResult` per FORMATS section 4 check, one :class:`FileResult` per file
the verifier hashed (with the damaged chunks of a file located by byte and row
range), and a one-line summary. ``govex packet verify --json`` and
``POST /v1/packets/verify`` give :meth:`VerifyReport.to_json`; the CLI prints
:func:`render_text`. The JSON Schema is ``schemas/packet-verify-report.schema.json``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from catalog.authority import AuthorityStatus
from catalog.digest import DigestSet

if TYPE_CHECKING:
    from collections.abc import Sequence

REPORT_FORMAT: Literal["govex.packet-verify-report/v1"] = "govex.packet-verify-report/v1"
_STRICT = ConfigDict(frozen=True, extra="forbid", strict=True)


class Finding(BaseModel):
    """One more place where a check failed (bag-only mode lists every one it finds)."""

    model_config = _STRICT

    where: str
    detail: str


class CheckResult(BaseModel):
    """One named check: ``pass``, ``fail`` (with the place) or ``skip`` (not run, and why)."""

    model_config = _STRICT

    name: str
    status: Literal["pass", "fail", "skip"]
    detail: str
    where: str = ""
    expected: str | None = None
    actual: str | None = None
    more: tuple[Finding, ...] = Field(
        default=(), description="Further places where this check failed, after ``where``."
    )


class ChunkDamage(BaseModel):
    """A chunk of a payload file whose BLAKE3 differs from ``packet.json`` (FORMATS section 4).

    ``offset`` and ``bytes`` as recorded; ``first_row`` and ``rows`` count data rows
    from 0 (a CSV header is not a row). ``found`` is ``None`` when the file ends
    before the chunk does.
    """

    model_config = _STRICT

    offset: int = Field(ge=0)
    bytes: int = Field(ge=0)
    first_row: int | None
    rows: int | None
    expected: str
    found: str | None


class FileResult(BaseModel):
    """One file of the bag, as hashed: ``pass`` or ``fail`` with the first problem found.

    ``bytes`` is the size read; ``rows`` the recorded row count of a tabular file.
    ``damaged`` lists at most :data:`MAX_DAMAGED_LISTED` chunks; ``damaged_chunks``
    counts them all.
    """

    model_config = _STRICT

    path: str
    status: Literal["pass", "fail"]
    bytes: int = Field(ge=0)
    rows: int | None = None
    detail: str
    expected: str | None = None
    actual: str | None = None
    damaged: tuple[ChunkDamage, ...] = ()
    damaged_chunks: int = Field(default=0, ge=0)


MAX_DAMAGED_LISTED = 20


class TrustedKey(BaseModel):
    """A ledger verifier key the ``ledger_inclusion`` check trusts, and where it came from.

    ``source`` is ``given`` (the consumer named it) or ``service`` (the verifying
    service's own key, offered on request: it proves only that this service's
    ledger issued the packet, not an independent consumer's trust).
    """

    model_config = _STRICT

    name: str
    key_id: str = Field(pattern=r"^[0-9a-f]{8}$")
    key: str
    source: Literal["given", "service"]


class Enforced(BaseModel):
    """What the verifier enforces, stated before any result (so a reader knows what OK means).

    ``mode`` ``bag`` runs only the BagIt checks (``layout``, ``bagit_manifest``) on
    any BagIt 1.0 bag; ``packet`` runs the whole consumption contract.
    """

    model_config = _STRICT

    mode: Literal["packet", "bag"] = "packet"
    require_authority: AuthorityStatus | None = AuthorityStatus.sealed
    manifest_hash: str | None = Field(default=None, description="The pinned manifest hash.")
    trusted_catalogs: tuple[str, ...] = ()
    trusted_keys: tuple[TrustedKey, ...] = ()
    origin: str | None = Field(default=None, description="The ledger origin the key signs for.")
    proof: bool = False
    checkpoint: bool = Field(
        default=False, description="A checkpoint the consumer trusts was given."
    )


class VerifyReport(BaseModel):
    """Enforced options, every check in FORMATS order, every file hashed, and the verdict."""

    # ``summary`` in JSON; ``summary()`` is the method that returns it.
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, validate_by_name=True)

    format: Literal["govex.packet-verify-report/v1"] = REPORT_FORMAT
    ok: bool
    summary_text: str = Field(alias="summary")
    enforced: Enforced
    checks: tuple[CheckResult, ...]
    files: tuple[FileResult, ...] = ()
    packet_id: str | None
    manifest_hash: DigestSet | None

    @model_validator(mode="after")
    def _verdict_follows_the_checks(self) -> Self:
        if self.ok != _ok(self.checks) or self.summary_text != _summary(self.checks):
            raise ValueError("ok and summary must follow from the checks (use VerifyReport.of)")
        return self

    @classmethod
    def of(
        cls,
        *,
        enforced: Enforced,
        checks: tuple[CheckResult, ...],
        files: tuple[FileResult, ...] = (),
        packet_id: str | None = None,
        manifest_hash: DigestSet | None = None,
    ) -> VerifyReport:
        """The report of ``checks``, with ``ok`` and ``summary`` derived from them."""
        return cls(
            ok=_ok(checks),
            summary_text=_summary(checks),
            enforced=enforced,
            checks=checks,
            files=files,
            packet_id=packet_id,
            manifest_hash=manifest_hash,
        )

    def summary(self) -> str:
        """One line, e.g. ``6/6 checks passed, 2 skipped``, naming a failure's check and place."""
        return self.summary_text

    def check(self, name: str) -> CheckResult:
        return next(check for check in self.checks if check.name == name)

    def file(self, path: str) -> FileResult:
        return next(item for item in self.files if item.path == path)

    def to_json(self) -> dict[str, Any]:
        """The JSON form (``schemas/packet-verify-report.schema.json``)."""
        return self.model_dump(mode="json", by_alias=True)


def skipped_checks(names: Sequence[str], failed: str) -> tuple[CheckResult, ...]:
    """The checks ``names``, each skipped because ``failed`` failed before them."""
    return tuple(
        CheckResult(name=name, status="skip", detail=f"not run: {failed} failed") for name in names
    )


def refused_report(
    enforced: Enforced, names: Sequence[str], where: str, detail: str
) -> VerifyReport:
    """The report of a file that is not a bag at all: the first check failed, no other ran."""
    fail = CheckResult(name=names[0], status="fail", detail=detail, where=where)
    return VerifyReport.of(enforced=enforced, checks=(fail, *skipped_checks(names[1:], names[0])))


def _ok(checks: tuple[CheckResult, ...]) -> bool:
    """Private: passed when no check failed and at least one ran."""
    return bool(checks) and all(check.status != "fail" for check in checks)


def _summary(checks: tuple[CheckResult, ...]) -> str:
    """Private: ``6/6 checks passed, 2 skipped``, naming each failure's check and place."""
    passed = sum(check.status == "pass" for check in checks)
    failed = [check for check in checks if check.status == "fail"]
    skipped = sum(check.status == "skip" for check in checks)
    text = f"{passed}/{passed + len(failed)} checks passed"
    if skipped:
        text += f", {skipped} skipped"
    for check in failed:
        text += f"; {check.name} failed at {check.where or '(packet)'}"
    return text


# --- text ------------------------------------------------------------------------------------

_STATUS = {"pass": "OK", "fail": "FAIL", "skip": "SKIP"}
_INDENT = " " * 24


def _n(value: int) -> str:
    return f"{value:,}"


def chunk_place(path: str, chunk: ChunkDamage) -> str:
    """``data/r.csv bytes 3,145,728-4,194,303 (rows 41,002-54,880)``: offsets and rows from 0."""
    text = f"{path} bytes {_n(chunk.offset)}-{_n(chunk.offset + chunk.bytes - 1)}"
    if chunk.first_row is not None and chunk.rows:
        text += f" (rows {_n(chunk.first_row)}-{_n(chunk.first_row + chunk.rows - 1)})"
    return text


def _enforced_lines(enforced: Enforced) -> list[str]:
    if enforced.mode == "bag":
        return [
            "Enforcing: BagIt 1.0 only (layout, bagit_manifest); packet.json, authority, pins",
            "           and ledger inclusion are not checked in --bag-only mode",
        ]
    pin = (
        f"{enforced.manifest_hash} (pinned)"
        if enforced.manifest_hash
        else "not pinned: any manifest hash is accepted (--expect-manifest-hash)"
    )
    catalogs = (
        ", ".join(enforced.trusted_catalogs)
        if enforced.trusted_catalogs
        else "none given: any catalog is accepted (--trust-catalog)"
    )
    keys = [
        f"{k.key} ({'given' if k.source == 'given' else 'the verifying service own key'})"
        for k in enforced.trusted_keys
    ] or ["none given: ledger inclusion is not checked (--proof, --key)"]
    lines = [
        "Enforcing:",
        f"  authority         at least {enforced.require_authority}",
        f"  manifest hash     {pin}",
        f"  trusted catalogs  {catalogs}",
        f"  trusted keys      {keys[0]}",
        *(f"                    {key}" for key in keys[1:]),
    ]
    if enforced.origin is not None:
        lines.append(f"  ledger origin     {enforced.origin}")
    if enforced.proof:
        checkpoint = (
            "yours: the proof must be against its tree"
            if enforced.checkpoint
            else "none given: the proof's own checkpoint"
        )
        lines.append(f"  checkpoint        {checkpoint}")
    return lines


def _check_lines(check: CheckResult) -> list[str]:
    lines = [f"{_STATUS[check.status]:5} {check.name:17} {check.detail}"]
    if check.status == "fail":
        lines.append(f"{_INDENT}at {check.where or '(packet)'}")
        if check.expected is not None or check.actual is not None:
            lines.append(f"{_INDENT}expected {check.expected}, found {check.actual}")
        lines.extend(f"{_INDENT}also at {more.where}: {more.detail}" for more in check.more)
    return lines


def _file_lines(item: FileResult, width: int) -> list[str]:
    size = f"{_n(item.bytes)} bytes" + (f", {_n(item.rows)} rows" if item.rows is not None else "")
    detail = size if item.status == "pass" else f"{size}: {item.detail}"
    lines = [f"{_STATUS[item.status]:5} {item.path:{width}} {detail}"]
    if item.status == "fail" and (item.expected is not None or item.actual is not None):
        lines.append(f"{_INDENT}expected {item.expected}, found {item.actual}")
    for chunk in item.damaged:
        found = chunk.found if chunk.found is not None else "nothing (the file ends before it)"
        lines.append(
            f"{_INDENT}{chunk_place(item.path, chunk)} blake3 expected {chunk.expected} "
            f"found {found}"
        )
    if item.damaged_chunks > len(item.damaged):
        lines.append(f"{_INDENT}... {item.damaged_chunks - len(item.damaged)} more damaged chunks")
    return lines


def render_text(report: VerifyReport, packet: str) -> list[str]:
    """The lines a person reads: what is enforced, a line per check and per file, the verdict."""
    lines = [f"Verifying {packet}", *_enforced_lines(report.enforced), "Checks:"]
    for check in report.checks:
        lines.extend(_check_lines(check))
    if report.files:
        lines.append("Files:")
        width = max(17, *(len(item.path) for item in report.files))
        for item in report.files:
            lines.extend(_file_lines(item, width))
    lines.append(f"{'OK' if report.ok else 'FAIL'}: {report.summary()}")
    return lines
