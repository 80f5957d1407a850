"""The packet consumption contract of FORMATS section 4, checked in order.

    1. layout            bag structure: safe names, no link, required tag files,
                         nothing outside data/ but tag files, no file missing or extra
    2. schema            packet.json against PacketManifest (strict), and its
                         packet_id against bag-info.txt and the bag folder
    3. bagit_manifest    manifest-sha256.txt and tagmanifest-sha256.txt against the
                         bytes, Payload-Oxum against the payload
    4. file_digests      files[] covers exactly the payload; size, sha256, blake3
                         and every chunk of every file
    5. manifest_hash     digest(JCS(packet.json)) equals the pinned value, when given
    6. authority_status  at least the required level (default ``sealed``)
    7. catalog_pin       catalog digest among the trusted ones, when given
    8. ledger_inclusion  with a tlog-proof and a trusted key (and optionally a trusted
                         checkpoint): the proof's entry is the packet.issued entry of
                         this packet_id and manifest hash, its checkpoint is signed
                         by the key for the packet's origin, the inclusion proof
                         holds, and it is against the trusted checkpoint's tree

A check that fails names the place (file path, ``packet.json#<JSON pointer>``),
and the expected and actual values; the checks after it are reported as
skipped, not run. Reads only through a :class:`PacketReader`; no I/O of its own
beyond :func:`verify_packet_file`, which opens one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import blake3
from pydantic import ValidationError

from catalog.authority import AuthorityStatus
from catalog.canonical import jcs
from catalog.digest import DigestSet, digest_bytes
from catalog.errors import CatalogError
from ledger.checkpoint import open_checkpoint
from ledger.entry import Kind
from ledger.errors import LedgerVerifyError, MalformedProof, NoteError, ProofError, RootMismatch
from ledger.merkle import leaf_hash, verify_inclusion
from ledger.tlog_proof import parse_tlog_proof
from ledger.verify import parse_leaf_input
from service.packets.bagit import parse_bag_info, parse_bagit_txt, parse_manifest, parse_oxum
from service.packets.errors import BagInvalidError, PacketLayoutError
from service.packets.manifest import PacketManifest
from service.packets.readers import PacketReader, ReadLimits, open_packet
from service.packets.report import CheckResult, VerifyReport

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path

    from ledger.checkpoint import Checkpoint
    from ledger.keys import VerifierKey

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
_BLOCK = 1 << 20


@dataclass(frozen=True)
class InclusionEvidence:
    """What the ``ledger_inclusion`` check runs on (FORMATS section 4, "Inclusion proof file").

    ``proof`` is the tlog-proof file's bytes, ``key`` the trusted verifier key
    of the ledger (its name is the origin), ``checkpoint`` a signed checkpoint
    the consumer already trusts: the proof must then be against that very tree.
    """

    proof: bytes
    key: VerifierKey
    checkpoint: bytes | None = None


class _Fail(Exception):
    def __init__(
        self, where: str, detail: str, expected: str | None = None, actual: str | None = None
    ) -> None:
        super().__init__(detail)
        self.where, self.detail, self.expected, self.actual = where, detail, expected, actual


@dataclass(frozen=True)
class _Measured:
    size: int
    sha256: str
    digest: DigestSet | None
    chunks: tuple[str, ...]


@dataclass
class _State:
    reader: PacketReader
    expect: str | DigestSet | None
    require: AuthorityStatus
    trusted: Sequence[str | DigestSet]
    inclusion: InclusionEvidence | None = None
    names: tuple[str, ...] = ()
    payload: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    manifest: PacketManifest | None = None
    manifest_hash: DigestSet | None = None
    measured: dict[str, _Measured] = field(default_factory=dict)

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
    try:
        version = parse_bagit_txt(state.reader.read("bagit.txt"))
        for name, target in (
            ("manifest-sha256.txt", state.payload),
            ("tagmanifest-sha256.txt", state.tags),
        ):
            target.update(parse_manifest(state.reader.read(name), name=name, algorithm="sha256"))
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
    data = state.reader.read("packet.json")
    try:
        manifest = PacketManifest.model_validate_json(data, strict=True)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise _Fail(_pointer(first["loc"]), f"{first['msg']} ({first['type']})") from exc
    try:
        state.manifest_hash = digest_bytes(jcs(json.loads(data), "packet.json"))
    except CatalogError as exc:
        raise _Fail("packet.json", exc.message) from exc
    try:
        info = dict(parse_bag_info(state.reader.read("bag-info.txt")))
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


def _measure(reader: PacketReader, path: str, ends: Sequence[int], *, full: bool) -> _Measured:
    """Stream one member once: sha256, and with ``full`` blake3 and each chunk's blake3."""
    sha = hashlib.sha256()
    whole = blake3.blake3()
    chunks: list[str] = []
    current = blake3.blake3()
    pending = [end for end in ends if end > 0]
    size = 0
    with reader.open(path) as stream:
        while block := stream.read(_BLOCK):
            sha.update(block)
            if full:
                whole.update(block)
                view = memoryview(block)
                while view and pending and size + len(view) >= pending[0]:
                    cut = pending.pop(0) - size
                    current.update(view[:cut])
                    chunks.append(current.hexdigest())
                    current, view, size = blake3.blake3(), view[cut:], size + cut
                current.update(view)
                size += len(view)
            else:
                size += len(block)
    digest = DigestSet(sha256=sha.hexdigest(), blake3=whole.hexdigest()) if full else None
    return _Measured(size, sha.hexdigest(), digest, tuple(chunks))


def _bagit_manifest(state: _State) -> str:
    records = {record.path: record for record in state.packet().files}
    for manifest, listed in (
        ("manifest-sha256.txt", state.payload),
        ("tagmanifest-sha256.txt", state.tags),
    ):
        for path, expected in sorted(listed.items()):
            record = records.get(path)
            ends = [chunk.offset + chunk.bytes for chunk in record.chunks] if record else []
            measured = _measure(state.reader, path, ends, full=record is not None)
            state.measured[path] = measured
            if measured.sha256 != expected:
                detail = f"sha256 listed in {manifest} does not match the bytes"
                raise _Fail(path, detail, f"sha256:{expected}", f"sha256:{measured.sha256}")
    info = dict(parse_bag_info(state.reader.read("bag-info.txt")))
    oxum = info.get("Payload-Oxum")
    actual = f"{sum(state.measured[p].size for p in state.payload)}.{len(state.payload)}"
    try:
        if oxum is None or parse_oxum(oxum) != tuple(int(x) for x in actual.split(".")):
            raise _Fail("bag-info.txt", "Payload-Oxum does not match the payload", oxum, actual)
    except BagInvalidError as exc:
        raise _bag_problem(exc) from exc
    return f"{len(state.payload)} payload and {len(state.tags)} tag digests match"


def _file_digests(state: _State) -> str:
    files = state.packet().files
    _same_set({r.path for r in files}, set(state.payload), "packet.json files[]")
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
        measured = state.measured[record.path]
        if measured.size != record.bytes:
            raise _Fail(
                record.path, "size differs from packet.json", str(record.bytes), str(measured.size)
            )
        if measured.digest is None:  # pragma: no cover - every files[] path was measured in full
            raise _Fail(record.path, "not measured")
        damaged = [
            c for c, got in zip(record.chunks, measured.chunks, strict=False) if c.blake3 != got
        ]
        where = ""
        if damaged:
            c = damaged[0]
            rows = (
                f", rows {c.first_row}..{c.first_row + (c.rows or 0) - 1}"
                if c.first_row is not None
                else ""
            )
            where = f"; first damaged chunk: bytes {c.offset}..{c.offset + c.bytes - 1}{rows}"
        for algorithm in record.digest.mismatches(measured.digest):
            expected, actual = record.digest.text(algorithm), measured.digest.text(algorithm)
            raise _Fail(
                record.path, f"{algorithm} differs from packet.json{where}", expected, actual
            )
        if damaged:
            raise _Fail(record.path, f"chunk blake3 differs from packet.json{where}")
    return f"{len(files)} files: sizes, sha256, blake3 and chunks match"


def _digest_matches(wanted: str | DigestSet, actual: DigestSet) -> bool:
    if isinstance(wanted, DigestSet):
        return not wanted.mismatches(actual)
    algorithm, _, value = wanted.rpartition(":")
    if algorithm not in {"", "sha256", "blake3"}:
        raise ValueError(f"unknown digest algorithm in {wanted!r}")
    return actual.hex("blake3" if algorithm == "blake3" else "sha256") == value.lower()


def _text(value: str | DigestSet) -> str:
    return value.text("sha256") if isinstance(value, DigestSet) else value


def _manifest_hash(state: _State) -> str | None:
    if state.manifest_hash is None:  # pragma: no cover - computed by the schema check
        raise _Fail("packet.json", "manifest hash not computed")
    computed = state.manifest_hash.text("sha256")
    if state.expect is None:
        return None
    if not _digest_matches(state.expect, state.manifest_hash):
        raise _Fail(
            "packet.json",
            "manifest_hash differs from the pinned value",
            _text(state.expect),
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
    if not any(_digest_matches(trusted, digest) for trusted in state.trusted):
        where = "packet.json#/catalog/catalog_digest"
        trusted = ", ".join(_text(t) for t in state.trusted)
        raise _Fail(
            where, "catalog digest is not among the trusted ones", trusted, digest.text("sha256")
        )
    return f"{digest.text('sha256')} is trusted"


def _opened(signed: str | bytes, key: VerifierKey, where: str) -> Checkpoint:
    """Private: a checkpoint verified with ``key``, or a failure at ``where``."""
    try:
        return open_checkpoint(signed, key)
    except NoteError as exc:
        place = f"{where} {exc.where}" if exc.where else where
        raise _Fail(place, f"checkpoint refused: {exc.message}") from exc


def _issued_entry(state: _State, extra: bytes | None, index: int) -> None:
    """Private: the proof's extra is the packet.issued entry of this packet and manifest hash."""
    if extra is None:
        raise _Fail("proof line 2", "no extra line: the proof does not carry the ledger entry")
    try:
        entry = parse_leaf_input(extra, seq=index)
    except LedgerVerifyError as exc:
        raise _Fail("proof extra", f"not a ledger entry: {exc.check}: {exc.detail}") from exc
    if entry.seq != index:
        raise _Fail(
            "proof extra#/seq", "the entry is not at the proof's index", str(index), str(entry.seq)
        )
    if entry.kind is not Kind.packet_issued:
        raise _Fail(
            "proof extra#/kind",
            "the entry does not issue a packet",
            "packet.issued",
            entry.kind.value,
        )
    packet_id = state.packet().packet_id
    if entry.body.get("packet_id") != packet_id:
        raise _Fail(
            "proof extra#/body/packet_id",
            "the entry issued another packet",
            packet_id,
            str(entry.body.get("packet_id")),
        )
    recorded = entry.body.get("manifest_hash")
    computed = state.manifest_hash
    if not isinstance(recorded, dict) or computed is None:  # pragma: no cover - schema checked both
        raise _Fail("proof extra#/body/manifest_hash", "no manifest hash to compare")
    for algorithm in ("sha256", "blake3"):
        if recorded.get(algorithm) != computed.hex(algorithm):
            raise _Fail(
                f"proof extra#/body/manifest_hash/{algorithm}",
                "the ledger recorded another manifest hash for this packet",
                computed.text(algorithm),
                f"{algorithm}:{recorded.get(algorithm)}",
            )


def _ledger_inclusion(state: _State) -> str | None:
    evidence = state.inclusion
    if evidence is None:
        return None
    try:
        proof = parse_tlog_proof(evidence.proof)
    except MalformedProof as exc:
        raise _Fail(f"proof line {exc.line}", exc.detail) from exc
    _issued_entry(state, proof.extra, proof.index)
    checkpoint = _opened(proof.checkpoint, evidence.key, "proof checkpoint")
    origin = state.packet().ledger.origin
    if origin != checkpoint.origin:
        raise _Fail(
            "packet.json#/ledger/origin",
            "the packet names another ledger than the proof's checkpoint",
            checkpoint.origin,
            origin,
        )
    leaf = leaf_hash(proof.extra or b"")
    place = f"proof index {proof.index}"
    try:
        verify_inclusion(proof.index, checkpoint.size, leaf, proof.proof, checkpoint.root)
    except RootMismatch as exc:
        detail = f"the inclusion proof gives another root than the checkpoint of size {exc.size}"
        raise _Fail(place, detail, exc.expected.hex(), exc.calculated.hex()) from exc
    except ProofError as exc:
        raise _Fail(place, exc.message) from exc
    against = "the proof's checkpoint"
    if evidence.checkpoint is not None:
        trusted = _opened(evidence.checkpoint, evidence.key, "checkpoint file")
        _same_tree(trusted, checkpoint)
        against = "your checkpoint"
    return (
        f"entry seq {proof.index} (packet.issued) is in the tree of size {checkpoint.size}, "
        f"{against}, signed by {evidence.key.name}"
    )


def _same_tree(trusted: Checkpoint, proved: Checkpoint) -> None:
    """Private: the proof must be against the consumer's own checkpoint."""
    expected = f"size {trusted.size} root {trusted.root.hex()}"
    actual = f"size {proved.size} root {proved.root.hex()}"
    if trusted.size == proved.size and trusted.root != proved.root:
        raise _Fail(
            "checkpoint file",
            "your checkpoint and the proof's are two trees of one size: the log signed a fork",
            expected,
            actual,
        )
    if trusted.size != proved.size:
        raise _Fail(
            "checkpoint file",
            f"the proof is against the tree of size {proved.size}, not your checkpoint's: fetch "
            f"a proof against it (govex ledger prove --packet ID --size {trusted.size})",
            expected,
            actual,
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
    """Run the FORMATS section 4 checks in order and report each one.

    ``expect_manifest_hash`` and each trusted catalog digest is a DigestSet
    (every algorithm must match) or text ``sha256:<hex>``, ``blake3:<hex>``
    or bare sha256 hex. ``ledger_inclusion`` runs with ``inclusion`` and is
    skipped without it. Never raises for a bad packet (or a bad proof): the
    first failing check names the place, and the checks after it are skipped.
    Raises ``ValueError`` for an expectation with an unknown algorithm prefix.
    """
    for wanted in [expect_manifest_hash, *trusted_catalog_digests]:
        if wanted is not None:
            _digest_matches(wanted, digest_bytes(b""))
    state = _State(
        reader, expect_manifest_hash, require_authority, trusted_catalog_digests, inclusion
    )
    results: list[CheckResult] = []
    failed = ""
    for name, step in _STEPS:
        if failed:
            results.append(
                CheckResult(name=name, status="skip", detail=f"not run: {failed} failed")
            )
            continue
        try:
            detail = step(state)
        except _Fail as fail:
            failed = name
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
        except PacketLayoutError as exc:
            failed = name
            results.append(CheckResult(name=name, status="fail", detail=exc.detail, where=exc.path))
        else:
            status: Literal["pass", "skip"] = "skip" if detail is None else "pass"
            results.append(
                CheckResult(name=name, status=status, detail=detail or _SKIP_REASONS[name])
            )
    packet_id = state.manifest.packet_id if state.manifest else None
    return VerifyReport(
        checks=tuple(results), packet_id=packet_id, manifest_hash=state.manifest_hash
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
    try:
        reader = open_packet(path, limits)
    except PacketLayoutError as exc:
        fail = CheckResult(name="layout", status="fail", detail=exc.detail, where=exc.path)
        rest = (
            CheckResult(name=n, status="skip", detail="not run: layout failed") for n in CHECKS[1:]
        )
        return VerifyReport(checks=(fail, *rest), packet_id=None, manifest_hash=None)
    try:
        return verify_packet(
            reader,
            expect_manifest_hash=expect_manifest_hash,
            require_authority=require_authority,
            trusted_catalog_digests=trusted_catalog_digests,
            inclusion=inclusion,
        )
    finally:
        close = getattr(reader, "close", None)
        if callable(close):
            close()
