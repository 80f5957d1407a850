"""Consumption contract (FORMATS section 4): every check, in order, with its exact place."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from typing import TYPE_CHECKING, Any

import blake3
import pytest

from catalog.authority import AuthorityStatus
from catalog.digest import digest_bytes
from service.packets.readers import ZipPacketReader
from service.packets.report import VerifyReport
from service.packets.verify import CHECKS, verify_packet, verify_packet_file

if TYPE_CHECKING:
    from pathlib import Path

    from conftest import PacketKit  # type: ignore[import-not-found]

PACKET_ID = "01JPACKETAAAAAAAAAAAAAAAAA"
CATALOG_DIGEST = digest_bytes(b"resolved catalog")


def verify(path: Path, **kwargs: Any) -> VerifyReport:
    with ZipPacketReader(path) as reader:
        return verify_packet(reader, **kwargs)


def sha(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def assert_failed(report: VerifyReport, name: str, where: str) -> None:
    """``name`` failed at ``where``, alone; every check after it was skipped."""
    statuses = {check.name: check.status for check in report.checks}
    assert [c.name for c in report.checks] == list(CHECKS)
    failed = [check for check in report.checks if check.status == "fail"]
    assert [(c.name, c.where) for c in failed] == [(name, where)], report.summary()
    after = list(CHECKS)[list(CHECKS).index(name) + 1 :]
    assert all(statuses[later] == "skip" for later in after)
    assert not report.ok


def test_a_built_packet_passes_every_check(kit: PacketKit) -> None:
    built = kit.build()
    report = verify(built.zip_path, expect_manifest_hash=built.staged.manifest_hash)
    assert report.ok
    assert [c.status for c in report.checks] == ["pass"] * 6 + ["skip"] * 2
    assert report.summary() == "6/6 checks passed, 2 skipped"
    assert report.manifest_hash == built.staged.manifest_hash
    assert report.packet_id == PACKET_ID
    assert report.to_json()["summary"] == report.summary()


def test_pins_given_as_text_pass_and_only_ledger_inclusion_is_skipped(kit: PacketKit) -> None:
    built = kit.build()
    report = verify(
        built.zip_path,
        expect_manifest_hash=built.staged.manifest_hash.text("blake3"),
        trusted_catalog_digests=[CATALOG_DIGEST.text("sha256")],
    )
    assert report.summary() == "7/7 checks passed, 1 skipped"
    assert report.check("ledger_inclusion").detail == "no proof given"


def test_unpinned_checks_are_skipped_with_a_reason(kit: PacketKit) -> None:
    report = verify(kit.build().zip_path)
    assert report.check("manifest_hash").status == "skip"
    assert report.check("manifest_hash").detail == "no pinned manifest_hash given"
    assert report.check("catalog_pin").detail == "no trusted catalog digests given"


def test_byte_flip_in_data_fails_bagit_manifest_at_the_file(kit: PacketKit) -> None:
    built = kit.build()
    members = kit.members(built.zip_path)
    original = members["data/result.jsonl"]
    flipped = bytearray(original)
    flipped[300] ^= 0x01
    members["data/result.jsonl"] = bytes(flipped)
    report = verify(kit.write(members))
    assert_failed(report, "bagit_manifest", "data/result.jsonl")
    check = report.check("bagit_manifest")
    assert (check.expected, check.actual) == (sha(original), sha(bytes(flipped)))


def test_byte_flip_behind_recomputed_bag_manifests_fails_file_digests_naming_the_chunk(
    kit: PacketKit,
) -> None:
    built = kit.build()
    members = kit.members(built.zip_path)
    record = built.staged.manifest.files[0]
    assert record.path == "data/result.jsonl"
    chunk = record.chunks[1]
    flipped = bytearray(members["data/result.jsonl"])
    flipped[chunk.offset + 5] ^= 0x01
    members["data/result.jsonl"] = bytes(flipped)
    report = verify(kit.write(kit.rebag(members)))
    assert_failed(report, "file_digests", "data/result.jsonl")
    check = report.check("file_digests")
    assert (check.expected, check.actual) == (record.digest.text("sha256"), sha(bytes(flipped)))
    assert chunk.first_row is not None
    assert chunk.rows is not None
    last_byte = chunk.offset + chunk.bytes - 1
    rows = f"rows {chunk.first_row}-{chunk.first_row + chunk.rows - 1}"
    place = f"data/result.jsonl bytes {chunk.offset}-{last_byte} ({rows})"
    assert check.detail == f"sha256 differs from packet.json; first damaged chunk: {place}"
    damaged = report.file("data/result.jsonl").damaged
    assert [(d.offset, d.bytes, d.first_row, d.rows) for d in damaged] == [
        (chunk.offset, chunk.bytes, chunk.first_row, chunk.rows)
    ]
    assert damaged[0].expected == chunk.blake3
    assert (
        damaged[0].found == blake3.blake3(bytes(flipped[chunk.offset : last_byte + 1])).hexdigest()
    )


def test_swapped_data_files_fail_bagit_manifest_at_the_first_path(kit: PacketKit) -> None:
    members = kit.members(kit.build().zip_path)
    result, summary = members["data/result.jsonl"], members["data/summary.csv"]
    members["data/result.jsonl"], members["data/summary.csv"] = summary, result
    report = verify(kit.write(members))
    assert_failed(report, "bagit_manifest", "data/result.jsonl")
    check = report.check("bagit_manifest")
    assert (check.expected, check.actual) == (sha(result), sha(summary))


def test_data_file_replaced_by_another_valid_one_fails_file_digests(kit: PacketKit) -> None:
    built = kit.build()
    other = kit.build("01JOTHERAAAAAAAAAAAAAAAAAA", offset=1000)
    members = kit.members(built.zip_path)
    replacement = kit.members(other.zip_path)["data/result.jsonl"]
    members["data/result.jsonl"] = replacement
    report = verify(kit.write(kit.rebag(members)))
    assert_failed(report, "file_digests", "data/result.jsonl")
    check = report.check("file_digests")
    assert check.detail.startswith("size differs from packet.json; first damaged chunk: ")
    assert (check.expected, check.actual) == (
        str(built.staged.manifest.files[0].bytes),
        str(len(replacement)),
    )


def test_rows_reordered_behind_a_forged_bag_fail_file_digests_with_both_digests(
    kit: PacketKit,
) -> None:
    built = kit.build()
    members = kit.members(built.zip_path)
    lines = members["data/result.jsonl"].splitlines(keepends=True)
    lines[0], lines[1] = lines[1], lines[0]
    members["data/result.jsonl"] = reordered = b"".join(lines)
    report = verify(kit.write(kit.rebag(members)))
    assert_failed(report, "file_digests", "data/result.jsonl")
    check = report.check("file_digests")
    assert check.expected == built.staged.manifest.files[0].digest.text("sha256")
    assert check.actual == sha(reordered)
    assert "first damaged chunk: data/result.jsonl bytes 0-" in check.detail


def test_replacement_with_a_consistent_packet_json_fails_only_the_pinned_manifest_hash(
    kit: PacketKit,
) -> None:
    built = kit.build()
    other = kit.build("01JOTHERAAAAAAAAAAAAAAAAAA", offset=1000)
    members = kit.members(built.zip_path)
    members["data/result.jsonl"] = kit.members(other.zip_path)["data/result.jsonl"]
    forged = other.staged.manifest.files[0].model_dump(mode="json")

    def swap_record(document: dict[str, Any]) -> None:
        document["files"][0] = forged

    kit.edit_packet_json(members, swap_record)
    forged_zip = kit.write(kit.rebag(members))
    assert verify(forged_zip).ok  # an unpinned consumer cannot tell
    pinned = built.staged.manifest_hash
    report = verify(forged_zip, expect_manifest_hash=pinned)
    assert_failed(report, "manifest_hash", "packet.json")
    check = report.check("manifest_hash")
    assert check.expected == pinned.text("sha256")
    assert check.actual == sha(kit.members(forged_zip)["packet.json"])


def test_extra_file_in_data_fails_layout(kit: PacketKit) -> None:
    members = kit.members(kit.build().zip_path)
    members["data/extra.txt"] = b"not issued\n"
    report = verify(kit.write(members))
    assert_failed(report, "layout", "data/extra.txt")
    assert report.check("layout").detail == "extra file: not listed in manifest-sha256.txt"


def test_extra_file_in_data_listed_by_a_forged_bag_fails_file_digests(kit: PacketKit) -> None:
    members = kit.members(kit.build().zip_path)
    members["data/extra.txt"] = b"not issued\n"
    report = verify(kit.write(kit.rebag(members)))
    assert_failed(report, "file_digests", "data/extra.txt")
    assert report.check("file_digests").detail == "extra file: not listed in packet.json files[]"


def test_extra_top_level_file_fails_layout(kit: PacketKit) -> None:
    members = kit.members(kit.build().zip_path)
    members["notes.txt"] = b"hello\n"
    report = verify(kit.write(members))
    assert_failed(report, "layout", "notes.txt")
    assert report.check("layout").detail == "unexpected file outside data/"


def test_missing_data_file_fails_layout(kit: PacketKit) -> None:
    members = kit.members(kit.build().zip_path)
    del members["data/summary.csv"]
    report = verify(kit.write(members))
    assert_failed(report, "layout", "data/summary.csv")
    assert report.check("layout").detail == "listed in manifest-sha256.txt but missing from the bag"


def test_missing_tag_file_fails_layout(kit: PacketKit) -> None:
    members = kit.members(kit.build().zip_path)
    del members["datapackage.json"]
    report = verify(kit.write(members))
    assert_failed(report, "layout", "datapackage.json")
    assert report.check("layout").detail == "required tag file missing"


def test_edited_packet_json_fails_bagit_manifest_at_packet_json(kit: PacketKit) -> None:
    members = kit.members(kit.build().zip_path)
    original = members["packet.json"]

    def mark_incomplete(document: dict[str, Any]) -> None:
        document["complete"] = False

    kit.edit_packet_json(members, mark_incomplete)
    report = verify(kit.write(members))
    assert_failed(report, "bagit_manifest", "packet.json")
    check = report.check("bagit_manifest")
    assert (check.expected, check.actual) == (sha(original), sha(members["packet.json"]))


def test_edited_packet_json_behind_a_forged_bag_fails_the_pinned_manifest_hash(
    kit: PacketKit,
) -> None:
    built = kit.build()
    members = kit.members(built.zip_path)

    def raise_authority(document: dict[str, Any]) -> None:
        document["authority_status"] = "governed"

    kit.edit_packet_json(members, raise_authority)
    report = verify(kit.write(kit.rebag(members)), expect_manifest_hash=built.staged.manifest_hash)
    assert_failed(report, "manifest_hash", "packet.json")


def test_authority_below_the_required_level_fails_at_its_pointer(kit: PacketKit) -> None:
    built = kit.build(authority=AuthorityStatus.provisional)
    report = verify(built.zip_path)
    assert_failed(report, "authority_status", "packet.json#/authority_status")
    check = report.check("authority_status")
    assert (check.expected, check.actual) == ("sealed", "provisional")
    assert verify(built.zip_path, require_authority=AuthorityStatus.provisional).ok


def test_untrusted_catalog_digest_fails_catalog_pin(kit: PacketKit) -> None:
    report = verify(kit.build().zip_path, trusted_catalog_digests=[digest_bytes(b"other")])
    assert_failed(report, "catalog_pin", "packet.json#/catalog/catalog_digest")
    assert report.check("catalog_pin").actual == CATALOG_DIGEST.text("sha256")


@pytest.mark.parametrize(
    ("edit", "pointer"),
    [
        (lambda d: d["files"][0].__setitem__("bytes", "12"), "packet.json#/files/0/bytes"),
        (lambda d: d.__setitem__("surprise", 1), "packet.json#/surprise"),
        (lambda d: d["ledger"].pop("call_seq"), "packet.json#/ledger/call_seq"),
        (lambda d: d.__setitem__("authority_status", "trusted"), "packet.json#/authority_status"),
        (lambda d: d["catalog"]["catalog_digest"].__setitem__("sha256", "AB"),
         "packet.json#/catalog/catalog_digest/sha256"),
        (lambda d: d.__setitem__("created_at", "2026-11-23T09:15:02Z"), "packet.json#/created_at"),
    ],
)  # fmt: skip
def test_packet_json_against_the_schema_fails_at_its_json_pointer(
    kit: PacketKit, edit: Any, pointer: str
) -> None:
    members = kit.members(kit.build().zip_path)
    kit.edit_packet_json(members, edit)
    report = verify(kit.write(members))
    assert_failed(report, "schema", pointer)


def test_packet_json_that_is_not_json_fails_schema_at_the_root(kit: PacketKit) -> None:
    members = kit.members(kit.build().zip_path)
    members["packet.json"] = b'{"format": '
    report = verify(kit.write(members))
    assert_failed(report, "schema", "packet.json#")


def test_packet_id_differing_from_bag_info_fails_schema(kit: PacketKit) -> None:
    members = kit.members(kit.build().zip_path)
    members["bag-info.txt"] = members["bag-info.txt"].replace(PACKET_ID.encode(), b"01JELSE")
    report = verify(kit.write(members))
    assert_failed(report, "schema", "packet.json#/packet_id")
    check = report.check("schema")
    assert (check.expected, check.actual) == ("01JELSE", PACKET_ID)


def test_packet_in_a_renamed_folder_fails_schema(kit: PacketKit) -> None:
    members = kit.members(kit.build().zip_path)
    report = verify(kit.write(members, root="01JRENAMED"))
    assert_failed(report, "schema", "packet.json#/packet_id")


def test_corrupt_compressed_bytes_fail_at_the_member(kit: PacketKit) -> None:
    built = kit.build()
    with zipfile.ZipFile(built.zip_path) as archive:
        info = archive.getinfo(f"{PACKET_ID}/data/result.jsonl")
    raw = bytearray(built.zip_path.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode())
    raw[start + info.compress_size // 2] ^= 0xFF
    corrupt = kit.root / "corrupt.zip"
    corrupt.write_bytes(bytes(raw))
    report = verify_packet_file(corrupt)
    assert_failed(report, "bagit_manifest", "data/result.jsonl")
    assert report.check("bagit_manifest").detail.startswith("unreadable member")


def test_a_file_that_is_not_a_zip_fails_layout(kit: PacketKit) -> None:
    path = kit.root / "not.zip"
    path.write_bytes(b"PK but not really")
    report = verify_packet_file(path)
    assert_failed(report, "layout", "not.zip")


def test_an_extracted_bag_directory_verifies(kit: PacketKit) -> None:
    built = kit.build()
    with zipfile.ZipFile(built.zip_path) as archive:
        archive.extractall(kit.root / "out")
    report = verify_packet_file(
        kit.root / "out" / PACKET_ID, expect_manifest_hash=built.staged.manifest_hash
    )
    assert report.summary() == "6/6 checks passed, 2 skipped"


def test_an_expectation_with_an_unknown_algorithm_is_a_usage_error(kit: PacketKit) -> None:
    with pytest.raises(ValueError, match="md5"):
        verify(kit.build().zip_path, expect_manifest_hash="md5:00")


def test_offline_verifier_imports_neither_fastapi_nor_sqlalchemy() -> None:
    code = (
        "import sys, service.packets.verify, service.packets.readers;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'fastapi', 'sqlalchemy'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_file_gets_its_line_payload_first(kit: PacketKit) -> None:
    built = kit.build()
    report = verify(built.zip_path)
    assert [(f.path, f.status) for f in report.files] == [
        ("data/result.jsonl", "pass"),
        ("data/summary.csv", "pass"),
        ("bag-info.txt", "pass"),
        ("bagit.txt", "pass"),
        ("datapackage.json", "pass"),
        ("manifest-sha256.txt", "pass"),
        ("packet.json", "pass"),
        ("report.html", "pass"),
    ]
    record = built.staged.manifest.files[0]
    line = report.file("data/result.jsonl")
    assert (line.bytes, line.rows, line.damaged, line.damaged_chunks) == (
        record.bytes,
        record.rows,
        (),
        0,
    )


def test_a_byte_flip_is_located_in_its_chunk_even_when_bagit_manifest_fails_first(
    kit: PacketKit,
) -> None:
    built = kit.build()
    members = kit.members(built.zip_path)
    record = built.staged.manifest.files[0]
    chunk = record.chunks[2]
    flipped = bytearray(members["data/result.jsonl"])
    flipped[chunk.offset] ^= 0x01
    members["data/result.jsonl"] = bytes(flipped)
    report = verify(kit.write(members))
    assert_failed(report, "bagit_manifest", "data/result.jsonl")
    assert chunk.first_row is not None
    assert chunk.rows is not None
    place = (
        f"data/result.jsonl bytes {chunk.offset}-{chunk.offset + chunk.bytes - 1} "
        f"(rows {chunk.first_row}-{chunk.first_row + chunk.rows - 1})"
    )
    assert report.check("bagit_manifest").detail.endswith(f"first damaged chunk: {place}")
    line = report.file("data/result.jsonl")
    assert (line.status, line.detail) == ("fail", "sha256 differs from manifest-sha256.txt")
    assert [(d.offset, d.expected) for d in line.damaged] == [(chunk.offset, chunk.blake3)]
    assert report.file("data/summary.csv").status == "pass"  # the rest still gets its line


def test_a_truncated_file_names_the_chunks_it_no_longer_reaches(kit: PacketKit) -> None:
    built = kit.build()
    members = kit.members(built.zip_path)
    record = built.staged.manifest.files[0]
    cut = record.chunks[-2].offset + 3
    members["data/result.jsonl"] = members["data/result.jsonl"][:cut]
    report = verify(kit.write(kit.rebag(members)))
    assert_failed(report, "file_digests", "data/result.jsonl")
    check = report.check("file_digests")
    assert (check.expected, check.actual) == (str(record.bytes), str(cut))
    damaged = report.file("data/result.jsonl").damaged
    assert [(d.offset, d.found) for d in damaged] == [
        (record.chunks[-2].offset, None),
        (record.chunks[-1].offset, None),
    ]


def test_many_damaged_chunks_are_all_counted_and_the_first_twenty_listed(kit: PacketKit) -> None:
    built = kit.build(rows=2000, chunk_bytes=256)
    members = kit.members(built.zip_path)
    record = built.staged.manifest.files[0]
    assert len(record.chunks) > 30
    data = bytearray(members["data/result.jsonl"])
    for chunk in record.chunks[:30]:
        data[chunk.offset] ^= 0x01
    members["data/result.jsonl"] = bytes(data)
    line = verify(kit.write(members)).file("data/result.jsonl")
    assert (line.damaged_chunks, len(line.damaged)) == (30, 20)
    assert [d.offset for d in line.damaged] == [c.offset for c in record.chunks[:20]]


def test_a_path_listed_twice_in_files_fails_schema(kit: PacketKit) -> None:
    members = kit.members(kit.build().zip_path)

    def repeat(document: dict[str, Any]) -> None:
        document["files"].append(document["files"][0])

    kit.edit_packet_json(members, repeat)
    report = verify(kit.write(kit.rebag(members)))
    assert_failed(report, "schema", "packet.json#/files")
    assert "listed twice" in report.check("schema").detail


def test_the_report_states_what_was_enforced(kit: PacketKit) -> None:
    built = kit.build()
    report = verify(
        built.zip_path,
        expect_manifest_hash=built.staged.manifest_hash.text("blake3"),
        require_authority=AuthorityStatus.governed,
        trusted_catalog_digests=[CATALOG_DIGEST, "AB" * 32],
    )
    enforced = report.enforced
    assert enforced.mode == "packet"
    assert enforced.require_authority is AuthorityStatus.governed
    assert enforced.manifest_hash == built.staged.manifest_hash.text("blake3")
    assert enforced.trusted_catalogs == (CATALOG_DIGEST.text("sha256"), "sha256:" + "ab" * 32)
    assert (enforced.trusted_keys, enforced.origin, enforced.proof) == ((), None, False)


@pytest.mark.parametrize(
    "pin", ["md5:00", "sha256:abc", "sha256:" + "g" * 64, "blake2b:" + "0" * 64, ""]
)
def test_a_malformed_pin_is_a_usage_error(kit: PacketKit, pin: str) -> None:
    with pytest.raises(ValueError, match="digest"):
        verify(kit.build().zip_path, trusted_catalog_digests=[pin])
