"""BagIt tag files: rendering, strict parsing, and verify_bag against the conformance suite."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from service.packets.bagit import (
    BAGIT_TXT,
    name_problem,
    parse_bag_info,
    parse_bagit_txt,
    parse_manifest,
    parse_oxum,
    render_bag_info,
    render_manifest,
    verify_bag,
)
from service.packets.errors import BagInvalidError
from service.packets.readers import DirPacketReader, ZipPacketReader

if TYPE_CHECKING:
    from pathlib import Path

    from conftest import PacketKit  # type: ignore[import-not-found]

HEX = "a" * 64

# Every invalid conformance bag and the reason (and place) verify_bag must give.
INVALID = {
    "bagit-with-invalid-whitespace": ("bagit_txt", "bagit.txt"),
    "notAllManifestsListAllFiles": ("payload_not_in_manifest", "data/missingFromManifest.txt"),
    "same-filename-listed-twice-with-different-hashes": ("duplicate_path", "manifest-sha256.txt:2"),
    "same-filename-listed-twice-with-the-same-hash": ("duplicate_path", "manifest-sha256.txt:2"),
}


def test_bagit_txt_is_the_two_declarations() -> None:
    assert BAGIT_TXT == b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"
    assert parse_bagit_txt(BAGIT_TXT) == "1.0"
    assert parse_bagit_txt(BAGIT_TXT.replace(b"\n", b"\r\n")) == "1.0"


@pytest.mark.parametrize(
    "data",
    [
        b"BagIt-Version : 1.0\nTag-File-Character-Encoding : UTF-8\n",
        b"BagIt-Version: 1.0 \nTag-File-Character-Encoding: UTF-8\n",
        b"BagIt-Version: 1.0\nTag-File-Character-Encoding: ISO-8859-1\n",
        b"BagIt-Version: 1.0\n",
        b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8",
    ],
)
def test_bagit_txt_with_anything_else_is_refused(data: bytes) -> None:
    with pytest.raises(BagInvalidError) as caught:
        parse_bagit_txt(data)
    assert (caught.value.reason, caught.value.path) == ("bagit_txt", "bagit.txt")


def test_manifest_renders_sorted_with_two_spaces_and_parses_back() -> None:
    digests = {"data/b.csv": "B" * 64, "data/a 100%.txt": HEX}
    data = render_manifest(digests)
    assert data == f"{HEX}  data/a 100%25.txt\n{'b' * 64}  data/b.csv\n".encode()
    assert parse_manifest(data, name="manifest-sha256.txt", algorithm="sha256") == {
        "data/a 100%.txt": HEX,
        "data/b.csv": "b" * 64,
    }


def test_manifest_accepts_a_tab_or_one_space_separator() -> None:
    data = f"{HEX}\tdata/a\n{HEX} data/b\n".encode()
    parsed = parse_manifest(data, name="m", algorithm="sha256")
    assert sorted(parsed) == ["data/a", "data/b"]


@pytest.mark.parametrize(
    ("data", "reason", "where"),
    [
        (f" {HEX}  data/a\n", "manifest_syntax", "m:1"),
        (f"{HEX}  data/a \n", "manifest_syntax", "m:1"),
        (f"{HEX}data/a\n", "manifest_syntax", "m:1"),
        (f"{HEX}  data/a\n\n", "manifest_syntax", "m:2"),
        (f"{HEX[:-1]}  data/a\n", "manifest_syntax", "m:1"),
        (f"{HEX}  data/a", "manifest_syntax", "m"),
        (f"{HEX}  data/a\n{HEX}  data/a\n", "duplicate_path", "m:2"),
        (f"{HEX}  data/../x\n", "unsafe_path", "m:1"),
        (f"{HEX}  /etc/passwd\n", "unsafe_path", "m:1"),
    ],
)
def test_manifest_parsing_is_strict(data: str, reason: str, where: str) -> None:
    with pytest.raises(BagInvalidError) as caught:
        parse_manifest(data.encode(), name="m", algorithm="sha256")
    assert (caught.value.reason, caught.value.path) == (reason, where)


def test_bag_info_renders_the_govex_fields_and_parses_back() -> None:
    data = render_bag_info(
        bagging_date="2026-11-23",
        payload_bytes=120,
        payload_files=2,
        external_identifier="01JX",
        software_agent="govex 0.1.0",
    )
    assert parse_bag_info(data) == [
        ("Bagging-Date", "2026-11-23"),
        ("Payload-Oxum", "120.2"),
        ("External-Identifier", "01JX"),
        ("Bag-Software-Agent", "govex 0.1.0"),
    ]
    assert parse_oxum("120.2") == (120, 2)


def test_bag_info_continuation_lines_and_bad_labels() -> None:
    assert parse_bag_info(b"Note: one\n  two\n") == [("Note", "one two")]
    with pytest.raises(BagInvalidError) as caught:
        parse_bag_info(b"Note : x\n")
    assert (caught.value.reason, caught.value.path) == ("bag_info_syntax", "bag-info.txt:1")
    with pytest.raises(BagInvalidError, match="payload_oxum"):
        parse_oxum("12")


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("data/result.jsonl", None),
        ("data/café.txt", None),
        ("", "empty name"),
        ("/x", "absolute name"),
        ("C:/x", "absolute name"),
        ("data\\x", "backslash in name"),
        ("data/a\nb", "control character in name"),
        ("data//x", "empty, '.' or '..' path component"),
        ("data/./x", "empty, '.' or '..' path component"),
        ("../x", "empty, '.' or '..' path component"),
        ("data/cafe\u0301.txt", "name is not NFC-normalized"),
    ],
)
def test_name_problem(name: str, problem: str | None) -> None:
    assert name_problem(name) == problem


def test_verify_bag_accepts_a_built_packet(kit: PacketKit) -> None:
    built = kit.build()
    with ZipPacketReader(built.zip_path) as reader:
        summary = verify_bag(reader)
    files = built.staged.manifest.files
    assert summary.algorithms == ("sha256",)
    assert (summary.payload_bytes, summary.payload_files) == (sum(f.bytes for f in files), 2)


def test_verify_bag_reports_every_problem(kit: PacketKit) -> None:
    members = kit.members(kit.build().zip_path)
    members["data/result.jsonl"] += b"x"
    members["data/stray.txt"] = b"?"
    with ZipPacketReader(kit.write(members)) as reader, pytest.raises(BagInvalidError) as caught:
        verify_bag(reader)
    found = {(p.reason, p.path) for p in caught.value.problems}
    assert found == {
        ("payload_not_in_manifest", "data/stray.txt"),
        ("digest_mismatch", "data/result.jsonl"),
        ("payload_oxum", "bag-info.txt"),
    }
    assert caught.value.reason == "payload_not_in_manifest"


def test_conformance_valid_bags_pass(bagit_vectors: Path) -> None:
    bags = sorted((bagit_vectors / "valid").iterdir())
    assert bags
    for bag in bags:
        summary = verify_bag(DirPacketReader(bag))
        assert summary.version == "1.0", bag.name


def test_conformance_invalid_bags_are_refused_with_a_named_reason(bagit_vectors: Path) -> None:
    bags = sorted(p.name for p in (bagit_vectors / "invalid").iterdir())
    assert bags == sorted(INVALID), "a new invalid vector needs its expected reason here"
    wrong = []
    for bag in bags:
        try:
            verify_bag(DirPacketReader(bagit_vectors / "invalid" / bag))
        except BagInvalidError as exc:
            found = {(p.reason, p.path) for p in exc.problems}
            if INVALID[bag] not in found:
                wrong.append(f"{bag}: expected {INVALID[bag]}, got {sorted(found)}")
        else:
            wrong.append(f"{bag}: accepted")
    assert not wrong
