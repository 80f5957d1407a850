"""The ``ledger_inclusion`` check: a tlog-proof of the packet's ledger entry, refusals placed."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from catalog.authority import AuthorityStatus
from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.entry import ZERO_PREV, Entry, Kind, leaf_hash, leaf_input
from ledger.keys import SignerKey
from ledger.merkle import inclusion_proof, root_from_leaf_hashes
from ledger.note import sign_note
from ledger.tlog_proof import TlogProof, format_tlog_proof
from service.packets.readers import ZipPacketReader
from service.packets.verify import CHECKS, InclusionEvidence, verify_packet

if TYPE_CHECKING:
    from pathlib import Path

    from catalog.digest import DigestSet
    from service.packets.report import VerifyReport
    from tests.service.packets.conftest import Built, PacketKit

ORIGIN = "govex.test/ledger"  # the kit's packets name this ledger
SIGNER = SignerKey.from_seed(ORIGIN, bytes(range(32)))
ISSUED_SEQ = 5
SIZE = 9


def _entry(seq: int, prev: str, kind: Kind, body: dict[str, Any]) -> bytes:
    ts = f"2026-11-23T09:15:{seq:02d}.000000Z"
    return leaf_input(Entry(v=1, seq=seq, ts=ts, kind=kind, prev=prev, body=body))


def _issued(packet_id: str, digest: DigestSet) -> dict[str, Any]:
    return {
        "call_id": "01JCALL",
        "packet_id": packet_id,
        "manifest_hash": {"sha256": digest.hex("sha256"), "blake3": digest.hex("blake3")},
    }


@dataclass
class Ledger:
    entries: list[bytes]

    def root(self, size: int) -> bytes:
        return root_from_leaf_hashes([leaf_hash(d) for d in self.entries[:size]])

    def checkpoint(self, size: int, signer: SignerKey = SIGNER) -> str:
        return sign_checkpoint(Checkpoint(signer.name, size, self.root(size)), signer)

    def proof(self, seq: int, size: int = SIZE, signer: SignerKey = SIGNER) -> TlogProof:
        hashes = [leaf_hash(d) for d in self.entries[:size]]
        return TlogProof(
            extra=self.entries[seq],
            index=seq,
            proof=tuple(inclusion_proof(seq, hashes)),
            checkpoint=self.checkpoint(size, signer),
        )


def _ledger(packet_id: str, digest: DigestSet, **issued: Any) -> Ledger:
    """Entries 0..8: call.denied, with the packet.issued entry of the packet at ISSUED_SEQ."""
    entries, prev = [], ZERO_PREV
    for seq in range(SIZE):
        if seq == ISSUED_SEQ:
            data = _entry(seq, prev, Kind.packet_issued, {**_issued(packet_id, digest), **issued})
        else:
            data = _entry(seq, prev, Kind.call_denied, {"call_id": f"c{seq}", "reason": "deny"})
        prev = leaf_hash(data).hex()
        entries.append(data)
    return Ledger(entries)


@pytest.fixture
def built(kit: PacketKit) -> Built:
    return kit.build()


@pytest.fixture
def ledger(built: Built) -> Ledger:
    return _ledger(built.staged.manifest.packet_id, built.staged.manifest_hash)


def _verify(path: Path, proof: TlogProof | str, **evidence: Any) -> VerifyReport:
    text = proof if isinstance(proof, str) else format_tlog_proof(proof)
    evidence.setdefault("key", SIGNER.verifier_key)
    inclusion = InclusionEvidence(proof=text.encode(), **evidence)
    with ZipPacketReader(path) as reader:
        return verify_packet(reader, inclusion=inclusion)


def _failed(report: VerifyReport) -> tuple[str, str]:
    """The one failing check and its place; ledger_inclusion is the last, so nothing is skipped."""
    failed = [c for c in report.checks if c.status == "fail"]
    assert len(failed) == 1, report.summary()
    assert not report.ok
    return failed[0].name, failed[0].where


def test_a_proof_of_the_packets_entry_passes(built: Built, ledger: Ledger) -> None:
    report = _verify(built.zip_path, ledger.proof(ISSUED_SEQ))
    assert report.ok, report.summary()
    check = report.check("ledger_inclusion")
    assert check.status == "pass"
    assert f"seq {ISSUED_SEQ}" in check.detail
    assert f"tree of size {SIZE}" in check.detail
    assert [c.name for c in report.checks] == list(CHECKS)


def test_the_trusted_checkpoint_of_the_same_tree_passes(built: Built, ledger: Ledger) -> None:
    report = _verify(
        built.zip_path, ledger.proof(ISSUED_SEQ), checkpoint=ledger.checkpoint(SIZE).encode()
    )
    assert report.check("ledger_inclusion").status == "pass"
    assert "your checkpoint" in report.check("ledger_inclusion").detail


def test_without_evidence_the_check_is_skipped(built: Built) -> None:
    with ZipPacketReader(built.zip_path) as reader:
        report = verify_packet(reader)
    assert report.check("ledger_inclusion").status == "skip"


def test_a_trusted_checkpoint_of_another_size_asks_for_a_proof_against_it(
    built: Built, ledger: Ledger
) -> None:
    report = _verify(
        built.zip_path, ledger.proof(ISSUED_SEQ), checkpoint=ledger.checkpoint(7).encode()
    )
    assert _failed(report) == ("ledger_inclusion", "checkpoint file")
    check = report.check("ledger_inclusion")
    assert "fetch a proof against it" in check.detail
    assert "--size 7" in check.detail
    assert check.expected == f"size 7 root {ledger.root(7).hex()}"


def test_a_trusted_checkpoint_of_the_same_size_and_another_root_is_a_fork(
    built: Built, ledger: Ledger
) -> None:
    forked = _entry(8, ZERO_PREV, Kind.call_denied, {"call_id": "x", "reason": "fork"})
    fork = Ledger([*ledger.entries[:-1], forked])
    report = _verify(
        built.zip_path, ledger.proof(ISSUED_SEQ), checkpoint=fork.checkpoint(SIZE).encode()
    )
    assert _failed(report) == ("ledger_inclusion", "checkpoint file")
    assert "fork" in report.check("ledger_inclusion").detail


def test_a_flipped_proof_hash_fails_at_the_proof_index(built: Built, ledger: Ledger) -> None:
    proof = ledger.proof(ISSUED_SEQ)
    nodes = list(proof.proof)
    nodes[1] = bytes([nodes[1][0] ^ 1]) + nodes[1][1:]
    tampered = TlogProof(proof.extra, proof.index, tuple(nodes), proof.checkpoint)
    report = _verify(built.zip_path, tampered)
    assert _failed(report) == ("ledger_inclusion", f"proof index {ISSUED_SEQ}")
    assert report.check("ledger_inclusion").expected == ledger.root(SIZE).hex()


def test_an_index_that_is_not_the_entrys_seq_fails_at_the_entry(
    built: Built, ledger: Ledger
) -> None:
    proof = ledger.proof(ISSUED_SEQ)
    moved = TlogProof(proof.extra, ISSUED_SEQ + 1, proof.proof, proof.checkpoint)
    report = _verify(built.zip_path, moved)
    assert _failed(report) == ("ledger_inclusion", "proof extra#/seq")


def test_a_proof_of_another_kind_of_entry_fails_at_its_kind(built: Built, ledger: Ledger) -> None:
    report = _verify(built.zip_path, ledger.proof(2))
    assert _failed(report) == ("ledger_inclusion", "proof extra#/kind")
    assert report.check("ledger_inclusion").actual == "call.denied"


def test_a_proof_of_another_packets_entry_fails_at_its_packet_id(built: Built) -> None:
    other = _ledger("01JOTHERPACKETAAAAAAAAAAAA", built.staged.manifest_hash)
    report = _verify(built.zip_path, other.proof(ISSUED_SEQ))
    assert _failed(report) == ("ledger_inclusion", "proof extra#/body/packet_id")
    assert report.check("ledger_inclusion").actual == "01JOTHERPACKETAAAAAAAAAAAA"


def test_a_ledger_that_recorded_another_manifest_hash_fails_at_it(built: Built) -> None:
    packet_id = built.staged.manifest.packet_id
    recorded = {"sha256": "0" * 64, "blake3": built.staged.manifest_hash.hex("blake3")}
    other = _ledger(packet_id, built.staged.manifest_hash, manifest_hash=recorded)
    report = _verify(built.zip_path, other.proof(ISSUED_SEQ))
    assert _failed(report) == ("ledger_inclusion", "proof extra#/body/manifest_hash/sha256")
    check = report.check("ledger_inclusion")
    assert check.expected == built.staged.manifest_hash.text("sha256")
    assert check.actual == "sha256:" + "0" * 64


def test_a_key_that_did_not_sign_the_checkpoint_is_refused(built: Built, ledger: Ledger) -> None:
    stranger = SignerKey.from_seed(ORIGIN, bytes(32))
    report = _verify(built.zip_path, ledger.proof(ISSUED_SEQ), key=stranger.verifier_key)
    assert _failed(report) == ("ledger_inclusion", "proof checkpoint signatures")


def test_a_forged_signature_is_refused_at_its_line(built: Built, ledger: Ledger) -> None:
    proof = ledger.proof(ISSUED_SEQ)
    head, _, signature = proof.checkpoint.rpartition(" ")
    raw = bytearray(base64.b64decode(signature))
    raw[-1] ^= 1
    forged = f"{head} {base64.b64encode(raw).decode()}\n"
    report = _verify(built.zip_path, TlogProof(proof.extra, proof.index, proof.proof, forged))
    assert _failed(report) == ("ledger_inclusion", "proof checkpoint line 5")


def test_a_packet_of_another_ledger_fails_at_its_origin(built: Built) -> None:
    other_log = SignerKey.from_seed("govex.test/other", bytes(range(32)))
    other = _ledger(built.staged.manifest.packet_id, built.staged.manifest_hash)
    report = _verify(
        built.zip_path, other.proof(ISSUED_SEQ, signer=other_log), key=other_log.verifier_key
    )
    assert _failed(report) == ("ledger_inclusion", "packet.json#/ledger/origin")


def test_a_checkpoint_whose_origin_is_not_the_key_name_is_refused(
    built: Built, ledger: Ledger
) -> None:
    proof = ledger.proof(ISSUED_SEQ)
    text = Checkpoint("govex.test/elsewhere", SIZE, ledger.root(SIZE)).text()
    wrong = sign_note(text, [SIGNER])
    report = _verify(built.zip_path, TlogProof(proof.extra, proof.index, proof.proof, wrong))
    assert _failed(report) == ("ledger_inclusion", "proof checkpoint origin")


@pytest.mark.parametrize(
    ("text", "where"),
    [
        pytest.param("not a proof\n", "proof line 1", id="not-a-tlog-proof"),
        pytest.param("c2sp.org/tlog-proof@v1\nindex 5\n\nx\n", "proof line 2", id="no-extra"),
    ],
)
def test_a_malformed_proof_fails_at_its_line(built: Built, text: str, where: str) -> None:
    assert _failed(_verify(built.zip_path, text)) == ("ledger_inclusion", where)


def test_an_extra_that_is_not_canonical_fails_before_any_hashing(
    built: Built, ledger: Ledger
) -> None:
    proof = ledger.proof(ISSUED_SEQ)
    loose = (proof.extra or b"").replace(b'{"body":', b'{ "body":', 1)
    report = _verify(built.zip_path, TlogProof(loose, proof.index, proof.proof, proof.checkpoint))
    assert _failed(report) == ("ledger_inclusion", "proof extra")
    assert "canonical" in report.check("ledger_inclusion").detail


def test_an_earlier_failure_skips_ledger_inclusion(kit: PacketKit) -> None:
    built = kit.build(authority=AuthorityStatus.provisional, where="provisional")
    ledger = _ledger(built.staged.manifest.packet_id, built.staged.manifest_hash)
    report = _verify(built.zip_path, ledger.proof(ISSUED_SEQ))
    assert report.check("authority_status").status == "fail"
    assert report.check("ledger_inclusion").status == "skip"
