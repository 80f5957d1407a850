"""Valid packets for the packet fuzz targets and their seeds (built with the real builder)."""

from __future__ import annotations

import io
import os
import tempfile
import zipfile
from functools import cache
from pathlib import Path

from catalog.digest import DigestSet
from tests.service.packets.conftest import PACKET_ID, PacketKit

_SCRATCH = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())  # noqa: S108 - a RAM disk when there is one: one write per input


def scratch_dir() -> Path:
    """A private folder for the file each input is written to (on a RAM disk when possible).

    Inside ``GOVEX_FUZZ_SCRATCH`` when set (test_fuzz sets it, and removes it afterwards:
    libFuzzer ends the process without running Python's exit handlers).
    """
    parent = os.environ.get("GOVEX_FUZZ_SCRATCH")
    return Path(tempfile.mkdtemp(prefix="govex-fuzz-", dir=parent or _SCRATCH))


@cache
def scratch_zip() -> Path:
    """The one file a packet target writes each input to (its folder made once per process)."""
    return scratch_dir() / "packet.zip"


def prepare_packet_target() -> None:
    """A packet target's ``prepare``: the valid packet built and the scratch file placed."""
    original()
    scratch_zip()


@cache
def original() -> tuple[dict[str, bytes], DigestSet]:
    """A valid packet's members (bag-relative name -> bytes) and its manifest hash."""
    with tempfile.TemporaryDirectory() as folder:
        built = PacketKit(Path(folder)).build(rows=12, chunk_bytes=128)
        return PacketKit.members(built.zip_path), built.staged.manifest_hash


def zip_members(
    members: dict[str, bytes], *, root: str = PACKET_ID, compression: int = zipfile.ZIP_DEFLATED
) -> bytes:
    """The zip of ``members`` under ``root/``, in the order given."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(f"{root}/{name}", data)
    return out.getvalue()


def seed_packets() -> list[bytes]:
    """Valid packet zips: built by govex, then re-zipped stored and with the members reversed."""
    with tempfile.TemporaryDirectory() as folder:
        kit = PacketKit(Path(folder))
        built = [
            kit.build(rows=3).zip_path,
            kit.build(rows=40, chunk_bytes=64, where="more").zip_path,
        ]
        seeds = [path.read_bytes() for path in built]
    members, _ = original()
    seeds.append(zip_members(members, compression=zipfile.ZIP_STORED))
    seeds.append(zip_members(dict(reversed(list(members.items())))))
    return seeds


def zip_bag_folder(bag: Path) -> bytes:
    """A bag directory (a BagIt conformance vector) zipped as a packet would be."""
    members = {
        str(path.relative_to(bag)): path.read_bytes()
        for path in sorted(bag.rglob("*"))
        if path.is_file()
    }
    return zip_members(members, root=bag.name)
