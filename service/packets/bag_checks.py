"""The BagIt-level checks alone (``layout``, ``bagit_manifest``), on any BagIt 1.0 bag.

A bag that is not a govex packet (the BagIt conformance suite's, which have no
packet.json) gets the checks that apply to every bag, judged by
:func:`~service.packets.bagit.verify_bag` and named as the consumption contract
names them. ``govex packet verify --bag-only`` and ``bag_only=true`` run these.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from service.packets.bagit import verify_bag
from service.packets.errors import BagInvalidError, BagProblem, PacketLayoutError
from service.packets.readers import ReadLimits, open_packet
from service.packets.report import (
    CheckResult,
    Enforced,
    FileResult,
    Finding,
    VerifyReport,
    refused_report,
    skipped_checks,
)

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from service.packets.readers import PacketReader

BAG_CHECKS = ("layout", "bagit_manifest")

# verify_bag's reasons that mean the bytes are not what a manifest says; the rest are layout.
_MANIFEST_REASONS = frozenset({"digest_mismatch", "payload_oxum", "unreadable"})
_BAG_ENFORCED = Enforced(mode="bag", require_authority=None)


def _bag_check(name: str, problems: Sequence[BagProblem], passed: str) -> CheckResult:
    if not problems:
        return CheckResult(name=name, status="pass", detail=passed)
    first, *rest = problems
    return CheckResult(
        name=name,
        status="fail",
        detail=f"{first.reason}: {first.detail}",
        where=first.path,
        more=tuple(Finding(where=p.path, detail=f"{p.reason}: {p.detail}") for p in rest),
    )


def verify_bag_only(reader: PacketReader) -> VerifyReport:
    """Only the BagIt-level checks, ``layout`` then ``bagit_manifest``, on any BagIt 1.0 bag.

    Runs :func:`~service.packets.bagit.verify_bag` (any of its manifest
    algorithms, tag manifests and bag-info.txt optional) and reports each of
    its problems under the check it belongs to: structure, declarations,
    manifest syntax and coverage under ``layout``; digests and Payload-Oxum
    under ``bagit_manifest``. Every problem is listed (``more``), not only the
    first. Never raises for a bad bag.
    """
    try:
        summary = verify_bag(reader)
        problems: tuple[BagProblem, ...] = ()
    except BagInvalidError as exc:
        summary, problems = None, exc.problems
    layout = [p for p in problems if p.reason not in _MANIFEST_REASONS]
    content = [p for p in problems if p.reason in _MANIFEST_REASONS]
    described = (
        f"BagIt {summary.version}, {summary.payload_files} payload files, manifests "
        + ", ".join(summary.algorithms)
        if summary is not None
        else ""
    )
    checks: tuple[CheckResult, ...] = (_bag_check("layout", layout, described or "bag layout"),)
    if layout:
        checks += skipped_checks(["bagit_manifest"], "layout")
        return VerifyReport.of(enforced=_BAG_ENFORCED, checks=checks)
    checks += (_bag_check("bagit_manifest", content, "every listed digest and the oxum match"),)
    files = tuple(
        FileResult(
            path=name,
            status="fail" if bad else "pass",
            bytes=reader.size(name),
            detail=bad[0].detail if bad else "matches",
        )
        for name in reader.names()
        for bad in [[p for p in content if p.path == name]]
    )
    return VerifyReport.of(enforced=_BAG_ENFORCED, checks=checks, files=files)


def verify_bag_file(path: Path, limits: ReadLimits | None = None) -> VerifyReport:
    """Open ``path`` (a bag directory or a zip of one) and :func:`verify_bag_only` it."""
    try:
        reader = open_packet(path, limits)
    except PacketLayoutError as exc:
        return refused_report(_BAG_ENFORCED, BAG_CHECKS, exc.path, exc.detail)
    try:
        return verify_bag_only(reader)
    finally:
        reader.close()
