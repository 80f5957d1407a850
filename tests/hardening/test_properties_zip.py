"""Overlapping-entry zip bombs are refused by govex's own bounds, whatever the interpreter.

CPython's zipfile learned to refuse overlapping entries (the "quoted-overlap" zip bomb,
CVE-2024-0450, python/cpython#109858) only in 3.11.8 and 3.12.2; govex runs on 3.11.0 and
later, so its packet reader must not depend on that fix. It does not: it sums the sizes
the central directory declares and refuses an archive whose members declare far more than
the archive's own size (``ReadLimits.max_ratio``), before inflating anything. Each member
of the archives below is small enough to pass the per-member bound alone; together they
are a bomb, because every central-directory record points at the same compressed bytes.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.packets.errors import PacketLayoutError
from service.packets.readers import ReadLimits, ZipPacketReader
from service.packets.verify import CHECKS, verify_packet_file

if TYPE_CHECKING:
    from pathlib import Path

ROOT = "01JPACKETAAAAAAAAAAAAAAAAA"
MiB = 1 << 20


def overlapping_bomb(path: Path, *, member_bytes: int, members: int) -> Path:
    """One deflated member of zeros, and ``members`` central-directory records all pointing
    at its local header, each under its own name (a full overlap, the simplest kind)."""
    data = bytes(member_bytes)
    body = zlib.compress(data, 9)[2:-4]  # raw deflate, as zip stores it
    crc = zlib.crc32(data)
    name = f"{ROOT}/data/part-0000.bin".encode()
    local = struct.pack(
        "<IHHHHHIIIHH", 0x04034B50, 20, 0x800, 8, 0, 0x21, crc, len(body), member_bytes,
        len(name), 0,
    )  # fmt: skip
    records = b""
    for number in range(members):
        alias = f"{ROOT}/data/part-{number:04d}.bin".encode()
        records += struct.pack(
            "<IHHHHHHIIIHHHHHII", 0x02014B50, 0x031E, 20, 0x800, 8, 0, 0x21, crc, len(body),
            member_bytes, len(alias), 0, 0, 0, 0, 0o100644 << 16, 0,
        ) + alias  # fmt: skip
    offset = len(local) + len(name) + len(body)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, members, members, len(records), offset, 0)
    path.write_bytes(local + name + body + records + end)
    return path


def test_the_archive_really_overlaps_and_zipfile_lists_every_alias(tmp_path: Path) -> None:
    """The fixture is what it claims: many names, one set of compressed bytes."""
    path = overlapping_bomb(tmp_path / "bomb.zip", member_bytes=8 * MiB, members=64)
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
    assert len(infos) == 64
    assert {info.header_offset for info in infos} == {0}
    assert sum(info.file_size for info in infos) == 512 * MiB
    assert path.stat().st_size < 64 * 1024


@settings(max_examples=25, deadline=None)
@given(
    member_mib=st.integers(1, 15),  # under the 16 MiB floor: no member is refused on its own
    members=st.integers(40, 400),
)
def test_an_overlapping_bomb_is_refused_from_its_central_directory(
    tmp_path_factory: pytest.TempPathFactory, member_mib: int, members: int
) -> None:
    path = overlapping_bomb(
        tmp_path_factory.mktemp("bomb") / "bomb.zip", member_bytes=member_mib * MiB, members=members
    )
    limits = ReadLimits()
    declared = member_mib * MiB * members
    assert declared > limits.ratio_floor_bytes  # so the whole-archive bound applies
    assert declared / path.stat().st_size > limits.max_ratio
    report = verify_packet_file(path)
    assert [check.name for check in report.checks] == list(CHECKS)
    layout = report.check("layout")
    assert (layout.status, layout.where) == ("fail", path.name), report.summary()
    assert "compression ratio" in layout.detail, layout.detail
    assert all(report.check(name).status == "skip" for name in CHECKS[1:])


def test_the_refusal_comes_before_any_member_is_read(tmp_path: Path) -> None:
    path = overlapping_bomb(tmp_path / "bomb.zip", member_bytes=8 * MiB, members=256)
    with (
        ZipPacketReader(path) as reader,
        pytest.raises(PacketLayoutError, match="compression ratio"),
    ):
        reader.names()  # listing alone refuses: nothing was opened or inflated
