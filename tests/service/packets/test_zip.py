"""The packet zip: large files stored, small ones deflated, and still the same bytes every time."""

from __future__ import annotations

import logging
import zipfile
from typing import TYPE_CHECKING

import bagit
import pytest

from service.packets import build
from service.packets.verify import verify_packet_file

if TYPE_CHECKING:
    from pathlib import Path

    from conftest import PacketKit  # type: ignore[import-not-found]

PACKET_ID = "01JPACKETAAAAAAAAAAAAAAAAA"


def test_files_between_the_bounds_are_deflated_and_the_rest_stored(
    kit: PacketKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(build, "ZIP_DEFLATE_ABOVE", 500)
    monkeypatch.setattr(build, "ZIP_STORE_ABOVE", 4096)
    built = kit.build(rows=2000)
    with zipfile.ZipFile(built.zip_path) as archive:
        methods = {info.filename.split("/", 1)[1]: info for info in archive.infolist()}
    assert methods["data/result.jsonl"].file_size > 4096
    for name, info in methods.items():
        deflated = 500 < info.file_size <= 4096
        expected = zipfile.ZIP_DEFLATED if deflated else zipfile.ZIP_STORED
        assert info.compress_type == expected, name
    assert methods["data/result.jsonl"].compress_size == methods["data/result.jsonl"].file_size
    assert methods["bagit.txt"].compress_type == zipfile.ZIP_STORED
    assert any(info.compress_type == zipfile.ZIP_DEFLATED for info in methods.values())


@pytest.mark.parametrize(
    ("size", "method"),
    [
        (0, zipfile.ZIP_STORED),
        (build.ZIP_DEFLATE_ABOVE, zipfile.ZIP_STORED),
        (build.ZIP_DEFLATE_ABOVE + 1, zipfile.ZIP_DEFLATED),
        (build.ZIP_STORE_ABOVE, zipfile.ZIP_DEFLATED),
        (build.ZIP_STORE_ABOVE + 1, zipfile.ZIP_STORED),
    ],
)
def test_the_method_follows_from_the_size_alone(size: int, method: int) -> None:
    assert build.zip_method(size) == method


def test_a_zip_with_stored_files_is_the_same_bytes_every_time_and_verifies(
    kit: PacketKit, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(build, "ZIP_DEFLATE_ABOVE", 500)  # both methods in one zip
    monkeypatch.setattr(build, "ZIP_STORE_ABOVE", 4096)
    first = kit.build(rows=2000, where="one")
    second = kit.build(rows=2000, where="two")
    assert first.zip_path.read_bytes() == second.zip_path.read_bytes()
    assert verify_packet_file(first.zip_path).ok
    with zipfile.ZipFile(first.zip_path) as archive:
        archive.extractall(kit.root / "out")
    bag = bagit.Bag(str(kit.root / "out" / PACKET_ID))
    with caplog.at_level(logging.WARNING, logger="bagit"):
        bag.validate(fast=False)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_write_zip_gives_the_same_bytes_for_the_same_files(tmp_path: Path) -> None:
    bag = tmp_path / "bag"
    (bag / "data").mkdir(parents=True)
    (bag / "bagit.txt").write_bytes(b"BagIt-Version: 1.0\n")
    (bag / "data" / "big.csv").write_bytes(b"id,v\n" + b"1,x\n" * (build.ZIP_STORE_ABOVE // 4 + 1))
    names = ["data/big.csv", "bagit.txt"]
    build.write_zip(bag, "P", names, tmp_path / "a.zip")
    build.write_zip(bag, "P", list(reversed(names)), tmp_path / "b.zip")
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()
    with zipfile.ZipFile(tmp_path / "a.zip") as archive:
        infos = archive.infolist()
        assert [i.filename for i in infos] == ["P/bagit.txt", "P/data/big.csv"]
        assert [i.compress_type for i in infos] == [zipfile.ZIP_STORED, zipfile.ZIP_STORED]
        assert archive.read("P/data/big.csv") == (bag / "data" / "big.csv").read_bytes()


def test_a_zip_assembled_in_memory_is_the_same_bytes_as_one_streamed_from_the_bag(
    tmp_path: Path,
) -> None:
    bag = tmp_path / "bag"
    (bag / "data").mkdir(parents=True)
    files = {
        "bagit.txt": b"BagIt-Version: 1.0\n",
        "data/result.csv": b"id,v\n" + b"1,x\n" * (build.ZIP_DEFLATE_ABOVE // 4 + 1),
        "data/big.csv": b"id,v\n" + b"2,y\n" * (build.ZIP_STORE_ABOVE // 4 + 1),
    }
    for name, data in files.items():
        (bag / name).write_bytes(data)
    names = list(files)
    build.write_zip(bag, "P", names, tmp_path / "streamed.zip")  # every member read from disk
    build.write_zip(
        bag, "P", names, tmp_path / "mixed.zip", contents={"bagit.txt": files["bagit.txt"]}
    )
    build.write_zip(tmp_path / "absent", "P", names, tmp_path / "memory.zip", contents=files)
    streamed = (tmp_path / "streamed.zip").read_bytes()
    assert (tmp_path / "mixed.zip").read_bytes() == streamed
    assert (tmp_path / "memory.zip").read_bytes() == streamed
    with zipfile.ZipFile(tmp_path / "memory.zip") as archive:
        assert archive.testzip() is None
        methods = {i.filename.removeprefix("P/"): i.compress_type for i in archive.infolist()}
        assert methods["data/result.csv"] == zipfile.ZIP_DEFLATED
        assert {n.removeprefix("P/"): archive.read(n) for n in archive.namelist()} == files
