"""Packet readers: names are checked before any member is read; bombs refused from the directory."""

from __future__ import annotations

import stat
import zipfile
import zlib
from typing import TYPE_CHECKING

import pytest

from service.packets.errors import PacketLayoutError
from service.packets.readers import DirPacketReader, ReadLimits, ZipPacketReader, open_packet

if TYPE_CHECKING:
    from pathlib import Path

    from conftest import PacketKit  # type: ignore[import-not-found]

PACKET_ID = "01JPACKETAAAAAAAAAAAAAAAAA"


def _info(name: str, mode: int = 0o100644) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.create_system = 3
    info.external_attr = mode << 16
    return info


def test_zip_reader_strips_the_bag_folder_and_lists_files_sorted(kit: PacketKit) -> None:
    built = kit.build()
    with ZipPacketReader(built.zip_path) as reader:
        assert reader.root == PACKET_ID
        assert reader.names() == (
            "bag-info.txt",
            "bagit.txt",
            "data/result.jsonl",
            "data/summary.csv",
            "datapackage.json",
            "manifest-sha256.txt",
            "packet.json",
            "report.html",
            "tagmanifest-sha256.txt",
        )
        data = reader.read("data/summary.csv")
        assert reader.size("data/summary.csv") == len(data)
        with reader.open("data/summary.csv") as stream:
            assert stream.read() == data


def test_dir_reader_matches_the_zip_reader(kit: PacketKit) -> None:
    built = kit.build()
    with zipfile.ZipFile(built.zip_path) as archive:
        archive.extractall(kit.root / "out")
    directory = kit.root / "out" / PACKET_ID
    reader = open_packet(directory)
    assert isinstance(reader, DirPacketReader)
    with ZipPacketReader(built.zip_path) as zipped:
        assert reader.names() == zipped.names()
        assert reader.read("packet.json") == zipped.read("packet.json")
    assert reader.root == PACKET_ID


@pytest.mark.parametrize(
    ("name", "mode", "detail"),
    [
        ("../x", 0o100644, "empty, '.' or '..' path component"),
        ("/abs", 0o100644, "absolute name"),
        (f"{PACKET_ID}/data/link", stat.S_IFLNK | 0o777, "symbolic link"),
        (f"{PACKET_ID}/data/fifo", stat.S_IFIFO | 0o644, "not a regular file"),
        (f"{PACKET_ID}/bagit.txt", 0o100644, "duplicate name"),
        ("other/bagit.txt", 0o100644, "not a single top-level folder"),
        ("loose.txt", 0o100644, "not a single top-level folder"),
    ],
)
def test_zip_reader_refuses_unsafe_members(
    kit: PacketKit, name: str, mode: int, detail: str
) -> None:
    path = kit.write({"bagit.txt": b"x"}, raw=[(_info(name, mode), b"x")])
    with ZipPacketReader(path) as reader, pytest.raises(PacketLayoutError) as caught:
        reader.names()
    assert caught.value.detail == detail
    assert caught.value.path in {name, "loose.txt", PACKET_ID}


def test_a_2gb_declared_member_is_refused_from_the_central_directory(kit: PacketKit) -> None:
    with ZipPacketReader(kit.bomb()) as reader, pytest.raises(PacketLayoutError) as caught:
        reader.names()
    assert caught.value.path == f"{PACKET_ID}/data/big.jsonl"
    assert caught.value.detail.startswith("compression ratio ")


def test_size_bounds_refuse_before_ratio(kit: PacketKit) -> None:
    bomb = kit.bomb()
    with (
        ZipPacketReader(bomb, ReadLimits(max_member_bytes=10**9)) as reader,
        pytest.raises(PacketLayoutError, match="declares 2000000000 bytes"),
    ):
        reader.names()
    with (
        ZipPacketReader(bomb, ReadLimits(max_ratio=10_000, max_total_bytes=10**9)) as reader,
        pytest.raises(PacketLayoutError, match="over the 1000000000 bytes bound"),
    ):
        reader.names()


def test_the_bomb_helper_really_inflates_to_its_declared_zeros(kit: PacketKit) -> None:
    path = kit.bomb(declared=5_000_000, name="small.zip")
    with zipfile.ZipFile(path) as archive:
        data = archive.read(f"{PACKET_ID}/data/big.jsonl")
    assert data == bytes(5_000_000)


def test_member_count_bound(kit: PacketKit) -> None:
    path = kit.write({f"data/{i}": b"" for i in range(5)})
    with (
        ZipPacketReader(path, ReadLimits(max_members=4)) as reader,
        pytest.raises(PacketLayoutError, match="5 members"),
    ):
        reader.names()


def test_read_refuses_a_large_member_whole(kit: PacketKit) -> None:
    path = kit.write({"packet.json": b"x" * 100})
    limits = ReadLimits(max_read_bytes=10)
    with ZipPacketReader(path, limits) as reader, pytest.raises(PacketLayoutError) as caught:
        reader.read("packet.json")
    assert caught.value.path == "packet.json"


def test_unknown_member_is_a_layout_error(kit: PacketKit) -> None:
    with ZipPacketReader(kit.write({"a": b""})) as reader, pytest.raises(PacketLayoutError):
        reader.open("b")


def test_a_stored_member_with_a_bad_crc_fails_when_read(kit: PacketKit) -> None:
    path = kit.root / "crc.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr(f"{PACKET_ID}/data/x", b"hello world")
    raw = path.read_bytes().replace(b"hello world", b"hellO world", 1)
    path.write_bytes(raw)
    with ZipPacketReader(path) as reader, pytest.raises(PacketLayoutError) as caught:
        reader.read("data/x")
    assert caught.value.path == "data/x"
    assert "CRC" in caught.value.detail
    assert zlib.crc32(b"hello world") != zlib.crc32(b"hellO world")


def test_dir_reader_refuses_a_symlink(tmp_path: Path) -> None:
    bag = tmp_path / "bag"
    (bag / "data").mkdir(parents=True)
    (bag / "bagit.txt").write_bytes(b"x")
    (bag / "data" / "link").symlink_to("/etc/passwd")
    with pytest.raises(PacketLayoutError) as caught:
        DirPacketReader(bag).names()
    assert (caught.value.path, caught.value.detail) == ("data/link", "symbolic link")


def test_dir_reader_refuses_a_non_nfc_name(tmp_path: Path) -> None:
    bag = tmp_path / "bag"
    (bag / "data").mkdir(parents=True)
    (bag / "data" / "cafe\u0301.txt").write_bytes(b"x")
    with pytest.raises(PacketLayoutError) as caught:
        DirPacketReader(bag).names()
    assert caught.value.path == "data/cafe\u0301.txt"
    assert caught.value.detail == "name is not NFC-normalized"


def test_not_a_zip(tmp_path: Path) -> None:
    path = tmp_path / "x.zip"
    path.write_bytes(b"nope")
    with pytest.raises(PacketLayoutError) as caught:
        ZipPacketReader(path)
    assert caught.value.path == "x.zip"
