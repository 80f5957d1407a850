"""``govex gate``: the CI gate on a packet (FORMATS section 6), offline.

A packet passes the gate only when, in this order:

1. ``govex packet verify`` passes with the same trust options (the FORMATS section 4
   checks: layout through ledger inclusion, pins, proof and key included);
2. its authority is at least ``--require-authority`` (default ``sealed``);
3. its claim's verdict is positive: the verdict the claim's ``expect`` asks for, which
   is ``ABSENT`` for every claim (``expect = "empty"``: proven no row; a row bound:
   proven a count inside the bound). ``--accept VERDICT`` (repeatable) widens that set
   explicitly. A packet whose entry states no claim fails here unless
   ``--allow-no-claim`` says verification alone is enough.

Exit codes (:data:`GATE_EXIT`): 0 passed; 1 verification failed; 2 usage or I/O error;
3 the claim is not satisfied (or there is none); 4 the authority is below the required
level (the integrity checks before ``authority_status`` passed; ``catalog_pin`` and
``ledger_inclusion`` after it were not run). The first failure decides and is printed
in one or two lines; ``--json`` prints the whole result instead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from catalog.authority import AuthorityStatus
from service.cli.options import (
    ExpectManifestHash,
    PacketArgument,
    RequireAuthority,
    TrustCatalog,
    VerifierKeyOption,
)
from service.cli.output import usage
from service.problems import EXIT_CHECK_FAILED, EXIT_USAGE

if TYPE_CHECKING:
    from collections.abc import Collection

    from service.packets.manifest import Claim
    from service.packets.report import VerifyReport

GATE_FORMAT = "govex.gate-result/v1"
POSITIVE_VERDICT = "ABSENT"
"""The verdict every claim's ``expect`` asks for (see :mod:`service.claims`)."""

Outcome = Literal[
    "passed", "verification_failed", "authority_below_required", "claim_not_satisfied", "no_claim"
]
GATE_EXIT: dict[Outcome, int] = {
    "passed": 0,
    "verification_failed": EXIT_CHECK_FAILED,
    "claim_not_satisfied": 3,
    "no_claim": 3,
    "authority_below_required": 4,
}
"""Exit code of each outcome; 2 (``EXIT_USAGE``) is a command line or file that cannot work."""

_REASONS = {
    "scoped_surface": "the entry reads part of what the claim is about",
    "truncated": "a row or byte limit cut the result",
    "timed_out": "the statement stopped at its deadline",
    "row_security": "row security would filter rows",
    "error": "the run failed",
    "no_snapshot": "the run read no read-only snapshot",
    "bound_exceeded": "more rows than the claim allows",
    "bound_not_met": "fewer rows than the claim requires",
}


class AcceptVerdict(StrEnum):
    """A claim verdict ``--accept`` may name."""

    ABSENT = "ABSENT"
    EVIDENCE_PRESENT = "EVIDENCE_PRESENT"
    NOT_EVIDENCED = "NOT_EVIDENCED"


@dataclass(frozen=True)
class GateDecision:
    """What the gate decided, why (one or two lines), and the exit code that says it."""

    outcome: Outcome
    lines: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return self.outcome == "passed"

    @property
    def exit_code(self) -> int:
        return GATE_EXIT[self.outcome]


def describe_claim(claim: Claim) -> str:
    """``expect "empty", surface exhaustive``: the claim in a few words."""
    if isinstance(claim.expect, str):
        expect = 'expect "empty"'
    else:
        bounds = [
            f"{name} = {value}"
            for name, value in (
                ("min_rows", claim.expect.min_rows),
                ("max_rows", claim.expect.max_rows),
            )
            if value is not None
        ]
        expect = "expect { " + ", ".join(bounds) + " }"
    return f"{expect}, surface {claim.surface}"


def decide_gate(
    report: VerifyReport,
    claim: Claim | None,
    *,
    accept: Collection[str] = (),
    allow_no_claim: bool = False,
) -> GateDecision:
    """The gate's decision on a verified ``report`` and the packet's ``claim`` (pure).

    ``claim`` is read from the verified ``packet.json`` (ignored when verification
    failed). A verdict is positive when it is :data:`POSITIVE_VERDICT` or in ``accept``.
    """
    if not report.ok:
        failed = next(check for check in report.checks if check.status == "fail")
        place = f" at {failed.where}" if failed.where else ""
        if failed.name == "authority_status":
            return GateDecision(
                "authority_below_required",
                (f"FAIL authority: {failed.detail}{place}",),
            )
        lines = [f"FAIL verification: {failed.name} failed{place}: {failed.detail}"]
        if failed.expected is not None or failed.actual is not None:
            lines.append(f"  expected {failed.expected}, found {failed.actual}")
        return GateDecision("verification_failed", tuple(lines))
    packet = report.packet_id or "the packet"
    if claim is None:
        if allow_no_claim:
            return GateDecision(
                "passed", (f"PASS {packet}: verified; no claim (allowed by --allow-no-claim)",)
            )
        return GateDecision(
            "no_claim",
            (
                f"FAIL claim: {packet} states no claim (its entry has none)",
                "  gate on verification alone with --allow-no-claim",
            ),
        )
    positive = {POSITIVE_VERDICT, *accept}
    shown = claim.verdict + (f" ({claim.reason}: {_REASONS[claim.reason]})" if claim.reason else "")
    if claim.verdict in positive:
        how = "" if claim.verdict == POSITIVE_VERDICT else " (accepted by --accept)"
        return GateDecision(
            "passed", (f"PASS {packet}: verified; claim {describe_claim(claim)}: {shown}{how}",)
        )
    return GateDecision(
        "claim_not_satisfied",
        (
            f"FAIL claim: {shown}; the claim ({describe_claim(claim)}) needs {POSITIVE_VERDICT}",
            f"  accept it explicitly with --accept {claim.verdict}",
        ),
    )


def gate_result_json(
    decision: GateDecision,
    report: VerifyReport,
    claim: Claim | None,
    *,
    accept: Collection[str],
    allow_no_claim: bool,
) -> dict[str, Any]:
    """The ``--json`` document: the decision, the claim, and the whole verify report."""
    return {
        "format": GATE_FORMAT,
        "passed": decision.passed,
        "outcome": decision.outcome,
        "exit_code": decision.exit_code,
        "reason": " ".join(line.strip() for line in decision.lines),
        "packet_id": report.packet_id,
        "manifest_hash": None
        if report.manifest_hash is None
        else report.manifest_hash.model_dump(),
        "claim": None if claim is None else claim.model_dump(mode="json"),
        "positive_verdicts": sorted({POSITIVE_VERDICT, *accept}),
        "allow_no_claim": allow_no_claim,
        "verification": report.to_json(),
    }


def gate(
    packet: PacketArgument,
    expect_manifest_hash: ExpectManifestHash = None,
    require_authority: RequireAuthority = AuthorityStatus.sealed,
    trust_catalog: TrustCatalog = None,
    proof: Annotated[
        Path | None,
        typer.Option(help="C2SP tlog-proof of the packet's ledger entry; runs ledger_inclusion."),
    ] = None,
    checkpoint: Annotated[
        Path | None,
        typer.Option(help="A signed checkpoint you trust: the proof must be against its tree."),
    ] = None,
    key: VerifierKeyOption = None,
    accept: Annotated[
        list[AcceptVerdict] | None,
        typer.Option(help="Also accept this claim verdict (repeat); ABSENT always passes."),
    ] = None,
    allow_no_claim: Annotated[
        bool,
        typer.Option(
            "--allow-no-claim", help="Pass a verified packet whose entry states no claim."
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable result.")] = False,
) -> None:
    """Gate CI on a packet: verified, authority high enough, claim verdict positive.

    Exit: 0 passed, 1 not verified, 2 usage or I/O, 3 claim not satisfied, 4 authority too low.
    """
    from service.cli.packets import _inclusion_evidence  # noqa: PLC0415 - same trust options
    from service.packets.verify import verify_packet_file  # noqa: PLC0415

    if not packet.exists():
        typer.echo(f"error [io_error]: {packet} does not exist", err=True)
        raise typer.Exit(EXIT_USAGE)
    accepted = tuple(verdict.value for verdict in accept or ())
    inclusion = _inclusion_evidence(proof, checkpoint, key)
    try:
        report = verify_packet_file(
            packet,
            expect_manifest_hash=expect_manifest_hash,
            require_authority=require_authority,
            trusted_catalog_digests=tuple(trust_catalog or ()),
            inclusion=inclusion,
        )
    except ValueError as exc:  # a malformed pin or digest given on the command line
        usage(str(exc))
    claim, changed = _verified_claim(packet, report) if report.ok else (None, None)
    decision = (
        GateDecision("verification_failed", (f"FAIL verification: {changed}",))
        if changed
        else decide_gate(report, claim, accept=accepted, allow_no_claim=allow_no_claim)
    )
    if as_json:
        document = gate_result_json(
            decision, report, claim, accept=accepted, allow_no_claim=allow_no_claim
        )
        typer.echo(json.dumps(document, indent=2, ensure_ascii=False))
    else:
        for line in decision.lines:
            typer.echo(line)
    raise typer.Exit(decision.exit_code)


def _verified_claim(packet: Path, report: VerifyReport) -> tuple[Claim | None, str | None]:
    """The claim of the ``packet.json`` that verification hashed: ``(claim, None)``.

    ``packet.json`` is read again, so its digest must equal the verified manifest hash;
    otherwise ``(None, why)``: the file changed while it was gated.
    """
    from catalog.digest import digest_bytes  # noqa: PLC0415
    from service.packets.errors import PacketLayoutError  # noqa: PLC0415
    from service.packets.manifest import PacketManifest  # noqa: PLC0415
    from service.packets.readers import open_packet  # noqa: PLC0415

    changed = "packet.json changed while it was gated: verify it again"
    try:
        reader = open_packet(packet)
        try:
            data = reader.read("packet.json")
        finally:
            reader.close()
    except (PacketLayoutError, OSError):
        return None, changed
    if report.manifest_hash is None or digest_bytes(data) != report.manifest_hash:
        return None, changed
    return PacketManifest.model_validate_json(data, strict=True).claim, None
