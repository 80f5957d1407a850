"""The packet consumption contract of FORMATS section 4, checked in order.

    1. layout            bag structure: safe names, no link, required tag files (each
                         within the tag-file bound), nothing outside data/ but tag
                         files, no file missing or extra
    2. schema            packet.json against PacketManifest (strict), in its canonical
                         (RFC 8785) form, and its packet_id against bag-info.txt and
                         the bag folder
    3. bagit_manifest    manifest-sha256.txt and tagmanifest-sha256.txt against the
                         bytes, Payload-Oxum against the payload
    4. file_digests      files[] covers exactly the payload; size, sha256, blake3
                         and every chunk of every file
    5. manifest_hash     digest(JCS(packet.json)) equals the pinned value, when given
    6. authority_status  at least the required level (default ``sealed``)
    7. catalog_pin       catalog digest among the trusted ones, when given
    8. ledger_inclusion  with a tlog-proof and a trusted key (and optionally a trusted
                         checkpoint): see :mod:`service.packets.inclusion`

A check that fails names the place (file path, ``packet.json#<JSON pointer>``),
and the expected and actual values; the checks after it are reported as
skipped, not run. Every file hashed gets its own line in the report, a damaged
one with the byte and row ranges of its damaged chunks.

The BagIt checks alone, for any bag, are in :mod:`service.packets.bag_checks`.
Reads only through a :class:`PacketReader`; no I/O of its own beyond
:func:`verify_packet_file`, which opens one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from pydantic import ValidationError

from catalog.authority import AuthorityStatus
from catalog.canonical import jcs
from catalog.digest import DigestSet, digest_bytes
from catalog.errors import CatalogError
from ledger.canonical import parse_json_int
from service.packets.bagit import parse_bag_info, parse_bagit_txt, parse_manifest, parse_oxum
from service.packets.errors import BagInvalidError, PacketCheckFailed, PacketLayoutError
from service.packets.inclusion import InclusionEvidence, check_inclusion
from service.packets.manifest import PacketManifest
from service.packets.measure import Measured, compare, measure
from service.packets.options import digest_matches, enforced_options, pin_text
from service.packets.readers import PacketReader, ReadLimits, open_packet
from service.packets.report import (
    CheckResult,
    FileResult,
    VerifyReport,
    chunk_place,
    refused_report,
    skipped_checks,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path

__all__ = ["CHECKS", "InclusionEvidence", "verify_packet", "verify_packet_file"]

CHECKS = (
    "layout",
    "schema",
    "bagit_manifest",
    "file_digests",
    "manifest_hash",
    "authority_status",
    "catalog_pin",
    "ledger_inclusion",
)
REQUIRED_TAG_FILES = (
    "bagit.txt",
    "bag-info.txt",
    "manifest-sha256.txt",
    "tagmanifest-sha256.txt",
    "packet.json",
    "datapackage.json",
)
OPTIONAL_TAG_FILES = ("report.html",)
# Tag files read whole (each refused over ReadLimits.max_read_bytes by the reader).
_READ_WHOLE = (
    "bagit.txt",
    "bag-info.txt",
    "manifest-sha256.txt",
    "tagmanifest-sha256.txt",
    "packet.json",
)
_Fail = PacketCheckFailed


@dataclass
class _State:
    reader: PacketReader
    expect: str | DigestSet | None
    require: AuthorityStatus
    trusted: Sequence[str | DigestSet]
    inclusion: InclusionEvidence | None = None
    names: tuple[str, ...] = ()
    tag_bytes: dict[str, bytes] = field(default_factory=dict)
    payload: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    manifest: PacketManifest | None = None
    manifest_hash: DigestSet | None = None
    measured: dict[str, Measured] = field(default_factory=dict)
    files: dict[str, FileResult] = field(default_factory=dict)

    def packet(self) -> PacketManifest:
        if self.manifest is None:  # pragma: no cover - schema runs first or nothing does
            raise _Fail("packet.json", "no valid packet.json")
        return self.manifest


def _bag_problem(exc: BagInvalidError) -> _Fail:
    return _Fail(exc.path, exc.problems[0].detail if exc.problems else str(exc))


def _layout(state: _State) -> str:
    state.names = state.reader.names()
    names = set(state.names)
    for name in REQUIRED_TAG_FILES:
        if name not in names:
            raise _Fail(name, "required tag file missing")
    allowed = set(REQUIRED_TAG_FILES) | set(OPTIONAL_TAG_FILES)
    for name in state.names:
        if not name.startswith("data/") and name not in allowed:
            raise _Fail(name, "unexpected file outside data/")
    for name in _READ_WHOLE:
        state.tag_bytes[name] = state.reader.read(name)
    try:
        version = parse_bagit_txt(state.tag_bytes["bagit.txt"])
        for name, target in (
            ("manifest-sha256.txt", state.payload),
            ("tagmanifest-sha256.txt", state.tags),
        ):
            target.update(parse_manifest(state.tag_bytes[name], name=name, algorithm="sha256"))
    except BagInvalidError as exc:
        raise _bag_problem(exc) from exc
    if version != "1.0":
        raise _Fail("bagit.txt", f"BagIt-Version {version}, not 1.0", "1.0", version)
    _same_set(
        set(state.payload), {n for n in names if n.startswith("data/")}, "manifest-sha256.txt"
    )
    tag_files = {n for n in names if not n.startswith("data/")} - {"tagmanifest-sha256.txt"}
    _same_set(set(state.tags), tag_files, "tagmanifest-sha256.txt")
    return f"{len(state.payload)} payload files, {len(state.tags) + 1} tag files"


def _same_set(listed: set[str], present: set[str], manifest: str) -> None:
    for path in sorted(listed - present):
        raise _Fail(path, f"listed in {manifest} but missing from the bag")
    for path in sorted(present - listed):
        raise _Fail(path, f"extra file: not listed in {manifest}")


def _pointer(loc: tuple[int | str, ...]) -> str:
    parts = (str(part).replace("~", "~0").replace("/", "~1") for part in loc)
    return "packet.json#" + "".join(f"/{part}" for part in parts)


def _schema(state: _State) -> str:
    data = state.tag_bytes["packet.json"]
    try:
        manifest = PacketManifest.model_validate_json(data, strict=True)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise _Fail(_pointer(first["loc"]), f"{first['msg']} ({first['type']})") from exc
    try:
        # An integral double past 2**53 is JCS digits: read it back as that double.
        canonical = jcs(json.loads(data, parse_int=parse_json_int), "packet.json")
    except (ValueError, RecursionError, CatalogError) as exc:
        detail = exc.message if isinstance(exc, CatalogError) else f"{type(exc).__name__}"
        raise _Fail("packet.json", f"cannot be canonicalized: {detail}") from exc
    if canonical != data:
        raise _Fail(
            "packet.json",
            "not in its canonical RFC 8785 form (duplicate keys, spacing, escapes or key order)",
            f"sha256:{hashlib.sha256(canonical).hexdigest()}",
            f"sha256:{hashlib.sha256(data).hexdigest()}",
        )
    state.manifest_hash = digest_bytes(canonical)
    try:
        info = dict(parse_bag_info(state.tag_bytes["bag-info.txt"]))
    except BagInvalidError as exc:
        raise _bag_problem(exc) from exc
    declared = info.get("External-Identifier")
    for expected, source in (
        (declared, "bag-info.txt External-Identifier"),
        (state.reader.root, "bag folder"),
    ):
        if expected != manifest.packet_id:
            raise _Fail(
                "packet.json#/packet_id",
                f"packet_id differs from the {source}",
                expected,
                manifest.packet_id,
            )
    state.manifest = manifest
    return f"govex.packet/v1, packet {manifest.packet_id}"


def _first_damage(result: FileResult) -> str:
    """Private: ``; first damaged chunk: data/r.csv bytes 0-255 (rows 0-9)``, or nothing."""
    if not result.damaged:
        return ""
    return f"; first damaged chunk: {chunk_place(result.path, result.damaged[0])}"


def _bagit_manifest(state: _State) -> str:
    """Hash every listed file once (every file gets its line), then fail at the first mismatch."""
    records = {record.path: record for record in state.packet().files}
    failure: _Fail | None = None
    for manifest, listed in (
        ("manifest-sha256.txt", state.payload),
        ("tagmanifest-sha256.txt", state.tags),
    ):
        for path, expected in sorted(listed.items()):
            data = state.tag_bytes.get(path)
            measured = (
                Measured(len(data), hashlib.sha256(data).hexdigest())
                if data is not None
                else measure(state.reader, path, records.get(path))
            )
            state.measured[path] = measured
            result = compare(
                path, measured, listed=expected, manifest=manifest, record=records.get(path)
            )
            state.files[path] = result
            if failure is not None:
                continue
            if measured.unreadable is not None:
                failure = _Fail(path, result.detail)
            elif measured.sha256 != expected:
                detail = f"sha256 listed in {manifest} does not match the bytes"
                failure = _Fail(
                    path,
                    detail + _first_damage(result),
                    f"sha256:{expected}",
                    f"sha256:{measured.sha256}",
                )
    if failure is not None:
        raise failure
    info = dict(parse_bag_info(state.tag_bytes["bag-info.txt"]))
    oxum = info.get("Payload-Oxum")
    actual = f"{sum(state.measured[p].size for p in state.payload)}.{len(state.payload)}"
    try:
        if oxum is None or parse_oxum(oxum) != tuple(int(x) for x in actual.split(".")):
            raise _Fail("bag-info.txt", "Payload-Oxum does not match the payload", oxum, actual)
    except BagInvalidError as exc:
        raise _bag_problem(exc) from exc
    return f"{len(state.payload)} payload and {len(state.tags)} tag digests match"


def _file_digests(state: _State) -> str:
    files = state.packet().files  # paths are unique: the schema check refused duplicates
    _same_set({record.path for record in files}, set(state.payload), "packet.json files[]")
    for index, record in enumerate(files):
        offset = 0
        for number, chunk in enumerate(record.chunks):
            if chunk.offset != offset:
                where = f"packet.json#/files/{index}/chunks/{number}/offset"
                raise _Fail(where, "chunks are not consecutive", str(offset), str(chunk.offset))
            offset += chunk.bytes
        if offset != record.bytes:
            where = f"packet.json#/files/{index}/chunks"
            raise _Fail(where, "chunks do not cover the file", str(record.bytes), str(offset))
    for record in files:
        result = state.files[record.path]
        if result.status == "fail":
            raise _Fail(
                record.path, result.detail + _first_damage(result), result.expected, result.actual
            )
    return f"{len(files)} files: sizes, sha256, blake3 and chunks match"


def _manifest_hash(state: _State) -> str | None:
    if state.manifest_hash is None:  # pragma: no cover - computed by the schema check
        raise _Fail("packet.json", "manifest hash not computed")
    computed = state.manifest_hash.text("sha256")
    if state.expect is None:
        return None
    if not digest_matches(state.expect, state.manifest_hash):
        raise _Fail(
            "packet.json",
            "manifest_hash differs from the pinned value",
            pin_text(state.expect),
            computed,
        )
    return f"{computed} equals the pinned value"


def _authority_status(state: _State) -> str:
    actual = state.packet().authority_status
    if not actual.at_least(state.require):
        where = "packet.json#/authority_status"
        raise _Fail(
            where,
            f"{actual} is below the required {state.require}",
            state.require.value,
            actual.value,
        )
    return f"{actual} (required: {state.require})"


def _catalog_pin(state: _State) -> str | None:
    if not state.trusted:
        return None
    digest = state.packet().catalog.catalog_digest
    if not any(digest_matches(trusted, digest) for trusted in state.trusted):
        where = "packet.json#/catalog/catalog_digest"
        trusted = ", ".join(pin_text(t) for t in state.trusted)
        raise _Fail(
            where, "catalog digest is not among the trusted ones", trusted, digest.text("sha256")
        )
    return f"{digest.text('sha256')} is trusted"


def _ledger_inclusion(state: _State) -> str | None:
    if state.inclusion is None:
        return None
    packet = state.packet()
    if state.manifest_hash is None:  # pragma: no cover - computed by the schema check
        raise _Fail("packet.json", "manifest hash not computed")
    return check_inclusion(
        state.inclusion,
        packet_id=packet.packet_id,
        origin=packet.ledger.origin,
        manifest_hash=state.manifest_hash,
    )


_SKIP_REASONS = {
    "manifest_hash": "no pinned manifest_hash given",
    "catalog_pin": "no trusted catalog digests given",
    "ledger_inclusion": "no proof given",
}
_STEPS: tuple[tuple[str, Callable[[_State], str | None]], ...] = (
    ("layout", _layout),
    ("schema", _schema),
    ("bagit_manifest", _bagit_manifest),
    ("file_digests", _file_digests),
    ("manifest_hash", _manifest_hash),
    ("authority_status", _authority_status),
    ("catalog_pin", _catalog_pin),
    ("ledger_inclusion", _ledger_inclusion),
)


def verify_packet(
    reader: PacketReader,
    *,
    expect_manifest_hash: str | DigestSet | None = None,
    require_authority: AuthorityStatus = AuthorityStatus.sealed,
    trusted_catalog_digests: Sequence[str | DigestSet] = (),
    inclusion: InclusionEvidence | None = None,
) -> VerifyReport:
    """Run the FORMATS section 4 checks in order and report each one, and each file.

    ``expect_manifest_hash`` and each trusted catalog digest is a DigestSet
    (every algorithm must match) or text ``sha256:<hex>``, ``blake3:<hex>``
    or bare sha256 hex. ``ledger_inclusion`` runs with ``inclusion`` and is
    skipped without it. Never raises for a bad packet (or a bad proof): the
    first failing check names the place, and the checks after it are skipped.
    Raises ``ValueError`` for a malformed expectation (see
    :func:`~service.packets.options.parse_pin`).
    """
    enforced = enforced_options(
        expect_manifest_hash=expect_manifest_hash,
        require_authority=require_authority,
        trusted_catalog_digests=trusted_catalog_digests,
        inclusion=inclusion,
    )
    state = _State(
        reader, expect_manifest_hash, require_authority, trusted_catalog_digests, inclusion
    )
    results: list[CheckResult] = []
    for number, (name, step) in enumerate(_STEPS):
        try:
            detail = step(state)
        except (PacketCheckFailed, PacketLayoutError) as exc:
            fail = (
                exc
                if isinstance(exc, PacketCheckFailed)
                else _Fail(exc.path, exc.detail, check=name)
            )
            results.append(
                CheckResult(
                    name=name,
                    status="fail",
                    detail=fail.detail,
                    where=fail.where,
                    expected=fail.expected,
                    actual=fail.actual,
                )
            )
            results.extend(skipped_checks([later for later, _ in _STEPS[number + 1 :]], name))
            break
        status: Literal["pass", "skip"] = "skip" if detail is None else "pass"
        results.append(CheckResult(name=name, status=status, detail=detail or _SKIP_REASONS[name]))
    return VerifyReport.of(
        enforced=enforced,
        checks=tuple(results),
        files=tuple(state.files.values()),
        packet_id=state.manifest.packet_id if state.manifest else None,
        manifest_hash=state.manifest_hash,
    )


def verify_packet_file(
    path: Path,
    *,
    expect_manifest_hash: str | DigestSet | None = None,
    require_authority: AuthorityStatus = AuthorityStatus.sealed,
    trusted_catalog_digests: Sequence[str | DigestSet] = (),
    inclusion: InclusionEvidence | None = None,
    limits: ReadLimits | None = None,
) -> VerifyReport:
    """Open ``path`` (a packet zip or a bag directory) and :func:`verify_packet` it.

    A file that cannot be opened as a packet is a ``layout`` failure in the
    report, with every later check skipped.
    """
    enforced = enforced_options(
        expect_manifest_hash=expect_manifest_hash,
        require_authority=require_authority,
        trusted_catalog_digests=trusted_catalog_digests,
        inclusion=inclusion,
    )
    try:
        reader = open_packet(path, limits)
    except PacketLayoutError as exc:
        return refused_report(enforced, CHECKS, exc.path, exc.detail)
    try:
        return verify_packet(
            reader,
            expect_manifest_hash=expect_manifest_hash,
            require_authority=require_authority,
            trusted_catalog_digests=trusted_catalog_digests,
            inclusion=inclusion,
        )
    finally:
        reader.close()
