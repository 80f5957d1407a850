"""Hostile packets are refused safely, each by a named check at its exact place.

Zip slip, absolute names, links (zip attributes and a bag directory, also swapped in
after listing), duplicate names, zip bombs (per member, whole archive, a member that
inflates past its declared size), a huge packet.json, non-NFC names, names of unknown
encoding, and packet.json with wrong JSON types, duplicate keys or deep nesting. Nothing
is extracted, nothing is inflated past its bound, and every later check is skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import struct
import unicodedata
import zipfile
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.packets.readers import DirPacketReader, ReadLimits
from service.packets.report import VerifyReport
from service.packets.verify import CHECKS, verify_packet, verify_packet_file
from tests.service.packets.conftest import PacketKit

if TYPE_CHECKING:
    from pathlib import Path

    from catalog.digest import DigestSet

PACKET_ID = "01JPACKETAAAAAAAAAAAAAAAAA"
MiB = 1 << 20


def assert_refused(report: VerifyReport, check: str, where: str, detail: str = "") -> None:
    """``check`` failed at ``where`` (with ``detail`` in its text), alone; later ones skipped."""
    assert [c.name for c in report.checks] == list(CHECKS)
    failed = [c for c in report.checks if c.status == "fail"]
    assert [(c.name, c.where) for c in failed] == [(check, where)], report.summary()
    assert detail in failed[0].detail, failed[0].detail
    later = CHECKS[CHECKS.index(check) + 1 :]
    assert all(report.check(name).status == "skip" for name in later)
    assert not report.ok


def _info(name: str, mode: int = 0o100644, compress: int = zipfile.ZIP_DEFLATED) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.create_system = 3
    info.external_attr = mode << 16
    info.compress_type = compress
    return info


def _extracted(kit: PacketKit) -> Path:
    with zipfile.ZipFile(kit.build().zip_path) as archive:
        archive.extractall(kit.root / "out")
    bag: Path = kit.root / "out" / PACKET_ID
    return bag


# --- zip members -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "mode", "detail"),
    [
        pytest.param("../x", 0o100644, "empty, '.' or '..' path component", id="zip-slip"),
        pytest.param(f"{PACKET_ID}/data/../../x", 0o100644, "empty, '.' or '..' path component",
                     id="zip-slip-nested"),
        pytest.param("/etc/passwd", 0o100644, "absolute name", id="absolute"),
        pytest.param("C:/Windows/x", 0o100644, "absolute name", id="absolute-drive"),
        pytest.param(f"{PACKET_ID}\\data\\x", 0o100644, "backslash in name", id="backslash"),
        pytest.param(f"{PACKET_ID}/data/a\nb", 0o100644, "control character in name",
                     id="newline-in-name"),
        pytest.param(f"{PACKET_ID}/data/link", stat.S_IFLNK | 0o777, "symbolic link",
                     id="symlink"),
        pytest.param(f"{PACKET_ID}/data/dirlink/", stat.S_IFLNK | 0o777, "symbolic link",
                     id="symlinked-folder"),
        pytest.param(f"{PACKET_ID}/data/fifo", stat.S_IFIFO | 0o644, "not a regular file",
                     id="fifo"),
        pytest.param(f"{PACKET_ID}/data/result.jsonl", 0o100644, "duplicate name",
                     id="duplicate"),
        pytest.param(f"{PACKET_ID}/data/RESULT.jsonl", 0o100644,
                     f"same name as '{PACKET_ID}/data/result.jsonl' but for case",
                     id="duplicate-but-for-case"),
        pytest.param(f"{PACKET_ID}/data/" + unicodedata.normalize("NFD", "café.txt"), 0o100644,
                     "name is not NFC-normalized", id="non-nfc"),
        pytest.param("other/bagit.txt", 0o100644, "not a single top-level folder",
                     id="second-top-level-folder"),
    ],
)  # fmt: skip
def test_unsafe_zip_members_fail_layout_at_their_name(
    kit: PacketKit, name: str, mode: int, detail: str
) -> None:
    members = kit.members(kit.build().zip_path)
    path = kit.write(members, raw=[(_info(name, mode), b"/etc/passwd")])
    assert_refused(verify_packet_file(path), "layout", name, detail)


def test_encrypted_and_exotic_members_fail_layout(kit: PacketKit) -> None:
    members = kit.members(kit.build().zip_path)
    encrypted = _info(f"{PACKET_ID}/data/secret.bin")
    path = kit.write(members, raw=[(encrypted, b"x")])
    _patch(path, encrypted.filename, local=6, central=8, value=0x1, size=2)  # flag bit 0
    assert_refused(verify_packet_file(path), "layout", encrypted.filename, "encrypted member")
    bzip2 = _info(f"{PACKET_ID}/data/b.bin", compress=zipfile.ZIP_BZIP2)
    path = kit.write(members, name="bz.zip", raw=[(bzip2, b"x")])
    assert_refused(verify_packet_file(path), "layout", bzip2.filename, "compression method 12")


def test_a_non_ascii_name_not_marked_utf8_fails_layout(kit: PacketKit) -> None:
    """Without bit 11 a name is CP437 by the spec, but many tools write local encodings."""
    members = kit.members(kit.build().zip_path)
    path = kit.write(members, raw=[(_info(f"{PACKET_ID}/data/caf?.txt"), b"x")])
    raw = path.read_bytes()
    assert raw.count(b"caf?.txt") == 2  # local header and central directory
    path.write_bytes(raw.replace(b"caf?.txt", b"caf\x82.txt"))  # 0x82 is CP437 e-acute
    assert_refused(
        verify_packet_file(path), "layout", f"{PACKET_ID}/data/café.txt", "not marked UTF-8"
    )


def test_a_member_count_over_the_bound_fails_layout(kit: PacketKit) -> None:
    members = kit.members(kit.build().zip_path)
    path = kit.write(members)
    report = verify_packet_file(path, limits=ReadLimits(max_members=len(members) - 1))
    assert_refused(report, "layout", f"{PACKET_ID}/bag-info.txt", f"{len(members)} members")


# --- zip bombs -------------------------------------------------------------------------------


def test_a_member_bomb_fails_layout_from_the_directory_without_inflating(kit: PacketKit) -> None:
    report = verify_packet_file(kit.bomb())  # declares 2 GB of zeros in ~2 MB
    assert_refused(report, "layout", f"{PACKET_ID}/data/big.jsonl", "compression ratio")


def test_an_archive_of_small_bombs_fails_layout_on_the_total_ratio(kit: PacketKit) -> None:
    members = kit.members(kit.build().zip_path)
    zeros = bytes(8 * MiB)  # each under the per-member ratio floor, 24 MiB together
    raw = [(_info(f"{PACKET_ID}/data/z{i}.bin"), zeros) for i in range(3)]
    path = kit.write(members, name="bombs.zip", raw=raw)
    assert path.stat().st_size < 200_000
    assert_refused(verify_packet_file(path), "layout", "bombs.zip", "compression ratio")


def _patch(path: Path, member: str, *, local: int, central: int, value: int, size: int) -> None:
    """Overwrite a field of ``member``'s local header and central directory entry."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(member)
    fmt = "<I" if size == 4 else "<H"
    raw = bytearray(path.read_bytes())
    struct.pack_into(fmt, raw, info.header_offset + local, value)
    name = member.encode()
    at = raw.find(b"PK\x01\x02")
    while at >= 0:
        (length,) = struct.unpack_from("<H", raw, at + 28)
        if raw[at + 46 : at + 46 + length] == name:
            struct.pack_into(fmt, raw, at + central, value)
            break
        at = raw.find(b"PK\x01\x02", at + 4)
    else:
        pytest.fail(f"no central directory entry for {member}")
    path.write_bytes(bytes(raw))


def test_a_member_inflating_past_its_declared_size_is_cut_there_and_refused(
    kit: PacketKit,
) -> None:
    built = kit.build()
    path = kit.root / "liar.zip"
    shutil.copy(built.zip_path, path)
    member = f"{PACKET_ID}/data/result.jsonl"
    _patch(path, member, local=22, central=24, value=100, size=4)  # uncompressed size
    report = verify_packet_file(path)
    assert_refused(report, "bagit_manifest", "data/result.jsonl", "unreadable member: Bad CRC")
    assert report.file("data/result.jsonl").status == "fail"
    blocks: list[bytes] = []

    def inflate() -> None:
        with zipfile.ZipFile(path) as archive, archive.open(member) as stream:
            while block := stream.read(10):
                blocks.append(block)

    with pytest.raises(zipfile.BadZipFile, match="Bad CRC"):
        inflate()
    assert sum(map(len, blocks)) <= 100  # never more than declared, whatever the stream holds


# --- packet.json -----------------------------------------------------------------------------


def test_a_huge_packet_json_fails_layout_before_it_is_parsed(kit: PacketKit) -> None:
    members = kit.members(kit.build().zip_path)
    del members["packet.json"]
    huge = b"[" + b" " * (16 * MiB) + b"]"
    raw = [(_info(f"{PACKET_ID}/packet.json", compress=zipfile.ZIP_STORED), huge)]
    path = kit.write(members, raw=raw)
    assert_refused(verify_packet_file(path), "layout", "packet.json", "bytes bound for tag files")


@pytest.mark.parametrize(
    ("edit", "pointer"),
    [
        pytest.param(lambda d: d.__setitem__("files", {}), "packet.json#/files", id="object"),
        pytest.param(lambda d: d.__setitem__("complete", 1), "packet.json#/complete", id="int"),
        pytest.param(lambda d: d["files"][0].__setitem__("rows", 1.5),
                     "packet.json#/files/0/rows", id="float"),
        pytest.param(lambda d: d["files"][0].__setitem__("path", ["data/x"]),
                     "packet.json#/files/0/path", id="list"),
        pytest.param(lambda d: d.__setitem__("packet_id", None), "packet.json#/packet_id",
                     id="null"),
        pytest.param(lambda d: d["ledger"].update(call_seq=True),
                     "packet.json#/ledger/call_seq", id="bool"),
        pytest.param(lambda d: d["files"][0]["chunks"][0].__setitem__("blake3", 7),
                     "packet.json#/files/0/chunks/0/blake3", id="number-for-hex"),
    ],
)  # fmt: skip
def test_wrong_json_types_in_packet_json_fail_schema_at_their_pointer(
    kit: PacketKit, edit: Any, pointer: str
) -> None:
    members = kit.members(kit.build().zip_path)
    kit.edit_packet_json(members, edit)
    assert_refused(verify_packet_file(kit.write(kit.rebag(members))), "schema", pointer)


def test_duplicate_keys_in_packet_json_fail_schema(kit: PacketKit) -> None:
    """Two readers could take two values: packet.json must be exactly its JCS form."""
    members = kit.members(kit.build().zip_path)
    data = members["packet.json"]
    assert data.startswith(b'{"authority_status":"sealed",')
    members["packet.json"] = data.replace(
        b'{"authority_status":"sealed",',
        b'{"authority_status":"governed","authority_status":"sealed",',
    )
    report = verify_packet_file(kit.write(kit.rebag(members)))
    assert_refused(report, "schema", "packet.json", "not in its canonical RFC 8785 form")


def test_whitespace_around_packet_json_fails_schema(kit: PacketKit) -> None:
    members = kit.members(kit.build().zip_path)
    members["packet.json"] = json.dumps(json.loads(members["packet.json"]), indent=1).encode()
    report = verify_packet_file(kit.write(kit.rebag(members)))
    assert_refused(report, "schema", "packet.json", "not in its canonical RFC 8785 form")


def test_deeply_nested_packet_json_fails_schema_without_a_crash(kit: PacketKit) -> None:
    members = kit.members(kit.build().zip_path)
    depth = 100_000
    nested = b"[" * depth + b"]" * depth
    members["packet.json"] = members["packet.json"].replace(
        b'"contract":{', b'"contract":{"deep":' + nested + b",", 1
    )
    report = verify_packet_file(kit.write(kit.rebag(members)))
    failed = report.check("schema")
    assert (failed.status, failed.where.startswith("packet.json#")) == ("fail", True), failed
    assert all(report.check(name).status == "skip" for name in CHECKS[2:])


# --- bag directories -------------------------------------------------------------------------


def test_a_symlink_in_a_bag_directory_fails_layout(kit: PacketKit) -> None:
    bag = _extracted(kit)
    (bag / "data" / "link").symlink_to("/etc/passwd")
    assert_refused(verify_packet_file(bag), "layout", "data/link", "symbolic link")


def test_a_symlinked_folder_in_a_bag_directory_fails_layout(kit: PacketKit) -> None:
    bag = _extracted(kit)
    (bag / "data" / "more").symlink_to(kit.root, target_is_directory=True)
    assert_refused(verify_packet_file(bag), "layout", "data/more", "symbolic link")


def test_a_bag_directory_that_is_a_symlink_fails_layout(kit: PacketKit) -> None:
    bag = _extracted(kit)
    link = kit.root / "link-to-bag"
    link.symlink_to(bag, target_is_directory=True)
    report = verify_packet_file(link)
    assert_refused(report, "layout", "link-to-bag", "not a regular file")


def test_a_fifo_in_a_bag_directory_fails_layout_without_blocking(kit: PacketKit) -> None:
    bag = _extracted(kit)
    os.mkfifo(bag / "data" / "pipe")
    assert_refused(verify_packet_file(bag), "layout", "data/pipe", "not a regular file")


def test_a_non_nfc_name_in_a_bag_directory_fails_layout(kit: PacketKit) -> None:
    bag = _extracted(kit)
    name = unicodedata.normalize("NFD", "café.txt")
    (bag / "data" / name).write_bytes(b"x")
    report = verify_packet_file(bag)
    assert_refused(report, "layout", f"data/{name}", "name is not NFC-normalized")


def test_a_folder_swapped_for_a_link_after_listing_is_not_followed(kit: PacketKit) -> None:
    """The reader listed real files; a link put in their folder's place is refused on open."""
    bag = _extracted(kit)
    reader = DirPacketReader(bag)
    reader.names()
    elsewhere = kit.root / "elsewhere"
    (bag / "data").rename(elsewhere)
    (bag / "data").symlink_to(elsewhere, target_is_directory=True)
    report = verify_packet(reader)
    assert_refused(report, "bagit_manifest", "data/result.jsonl", "unreadable member")


def test_an_unreadable_folder_in_a_bag_directory_fails_layout(
    kit: PacketKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    bag = _extracted(kit)
    real_scandir = os.scandir

    def scandir(path: Any) -> Any:
        if str(path).endswith("/data"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)  # root reads everything: simulate the refusal
    assert_refused(verify_packet_file(bag), "layout", "data", "unreadable: Permission denied")


# --- whatever the bytes ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, DigestSet]:
    """A packet's zip bytes and its manifest hash."""
    built = PacketKit(tmp_path_factory.mktemp("fuzz")).build()
    return built.zip_path.read_bytes(), built.staged.manifest_hash


@settings(deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_damaged_zip_bytes_are_reported_never_raised(
    original: tuple[bytes, DigestSet], tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    packet, manifest_hash = original
    raw = bytearray(packet)
    if data.draw(st.booleans(), label="truncate"):
        raw = raw[: data.draw(st.integers(0, len(raw) - 1), label="length")]
    edits = data.draw(
        st.lists(st.tuples(st.integers(0, max(len(raw) - 1, 0)), st.integers(0, 255)), max_size=8),
        label="edits",
    )
    for at, value in edits if raw else ():
        raw[at] = value
    path = tmp_path_factory.mktemp("case") / "p.zip"
    path.write_bytes(bytes(raw))
    report = verify_packet_file(path)  # any exception fails the property
    assert [c.name for c in report.checks] == list(CHECKS)
    # A changed byte zip never reads (a timestamp, an attribute) may leave the packet valid;
    # a report that passes then speaks of the original packet.json, never of another one.
    assert not report.ok or report.manifest_hash == manifest_hash
