"""BagIt tag files: rendering, strict parsing, and verify_bag against the conformance suite.

The conformance bags (LibraryOfCongress/bagit-conformance-suite, in ../shared/vectors) are
judged twice: by ``verify_bag`` (a reason per problem) and by govex's packet verifier in
BagIt-only mode (``verify_bag_only``, ``govex packet verify --bag-only``: the check name).
"""

from __future__ import annotations

import zipfile
from typing import TYPE_CHECKING

import pytest

from service.packets.bag_checks import BAG_CHECKS, verify_bag_file, verify_bag_only
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

# What govex's verifier must say of each invalid bag: the failing check, and the place its
# README (or name) describes, which must be among the places the check names.
GOVEX_INVALID = {
    # Its README: whitespace around the bagit.txt values, in violation of the spec.
    "bagit-with-invalid-whitespace": ("layout", "bagit.txt"),
    # Its name says it: a payload file that one manifest does not list.
    "notAllManifestsListAllFiles": ("layout", "data/missingFromManifest.txt"),
    # README: "the same file listed twice with two different hash values ... must return an
    # error" (its bagit.txt also has a trailing space, named first)
    "same-filename-listed-twice-with-different-hashes": ("layout", "manifest-sha256.txt:2"),
    # README: "lists the same entry twice"; in this suite's invalid/ folder, so refused
    "same-filename-listed-twice-with-the-same-hash": ("layout", "manifest-sha256.txt:2"),
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


def test_every_conformance_bag_has_its_expectation(bagit_vectors: Path) -> None:
    assert sorted(p.name for p in (bagit_vectors / "invalid").iterdir()) == sorted(GOVEX_INVALID)
    assert [p.name for p in (bagit_vectors / "valid").iterdir()] == ["basicBag"]


def test_govex_bag_only_verifier_accepts_every_valid_conformance_bag(bagit_vectors: Path) -> None:
    for bag in sorted((bagit_vectors / "valid").iterdir()):
        report = verify_bag_only(DirPacketReader(bag))
        assert report.ok, (bag.name, report.summary())
        assert [(c.name, c.status) for c in report.checks] == [
            ("layout", "pass"),
            ("bagit_manifest", "pass"),
        ]
        assert report.enforced.mode == "bag"
        assert {f.path for f in report.files if f.status == "pass"} >= {"data/hello.txt"}


@pytest.mark.parametrize(("bag", "expected"), sorted(GOVEX_INVALID.items()))
def test_govex_bag_only_verifier_refuses_each_invalid_conformance_bag_with_its_check(
    bagit_vectors: Path, bag: str, expected: tuple[str, str]
) -> None:
    report = verify_bag_only(DirPacketReader(bagit_vectors / "invalid" / bag))
    check, place = expected
    assert not report.ok
    failed = [c for c in report.checks if c.status == "fail"]
    assert [c.name for c in failed] == [check], report.summary()
    places = [failed[0].where, *(more.where for more in failed[0].more)]
    assert place in places, places
    later = BAG_CHECKS[BAG_CHECKS.index(check) + 1 :]
    assert all(report.check(name).status == "skip" for name in later)


def test_bag_only_names_a_digest_mismatch_under_bagit_manifest(
    bagit_vectors: Path, tmp_path: Path
) -> None:
    bag = tmp_path / "basicBag"
    source = bagit_vectors / "valid" / "basicBag"
    for path in sorted(source.rglob("*")):
        target = bag / path.relative_to(source)
        if path.is_dir():
            target.mkdir(parents=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    (bag / "data" / "hello.txt").write_bytes(b"Hello, World?\n")
    report = verify_bag_only(DirPacketReader(bag))
    assert [(c.name, c.status, c.where) for c in report.checks] == [
        ("layout", "pass", ""),
        ("bagit_manifest", "fail", "data/hello.txt"),
    ]
    assert report.check("bagit_manifest").detail.startswith("digest_mismatch: sha512 expected")
    assert report.file("data/hello.txt").status == "fail"


def test_bag_only_reads_a_zipped_bag_too(bagit_vectors: Path, tmp_path: Path) -> None:
    source = bagit_vectors / "valid" / "basicBag"
    path = tmp_path / "basicBag.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for member in sorted(source.rglob("*")):
            if member.is_file():
                archive.write(member, f"basicBag/{member.relative_to(source)}")
    assert verify_bag_file(path).ok
    assert verify_bag_file(tmp_path / "absent.zip").check("layout").status == "fail"


def test_govex_packets_pass_the_bag_only_checks_too(kit: PacketKit) -> None:
    report = verify_bag_file(kit.build().zip_path)
    assert report.ok, report.summary()
    assert report.summary() == "2/2 checks passed"
