"""Shared fixtures: a packet kit (build, unzip, tamper, re-zip) and the conformance vectors."""

from __future__ import annotations

import hashlib
import json
import os
import struct
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import rfc8785

from catalog.authority import AuthorityStatus
from catalog.digest import digest_bytes
from service.packets.build import PacketBuilder, StagedPacket
from service.packets.manifest import CatalogRef, EntryRef, LedgerRef, ServiceRef

if TYPE_CHECKING:
    from service.packets.tables import RowValue

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

CLOCK = datetime(2026, 11, 23, 9, 15, 2, 123456, tzinfo=UTC)
PACKET_ID = "01JPACKETAAAAAAAAAAAAAAAAA"
CATALOG_DIGEST = digest_bytes(b"resolved catalog")


@dataclass(frozen=True)
class Built:
    zip_path: Path
    staged: StagedPacket


def result_rows(count: int, offset: int = 0) -> Iterable[tuple[int, float, str]]:
    return ((i, (i + offset) * 1.25, f"customer {i + offset}") for i in range(count))


class PacketKit:
    """Builds real packets and rewrites their zips member by member for tamper tests."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def build(
        self,
        packet_id: str = PACKET_ID,
        *,
        rows: int = 50,
        offset: int = 0,
        authority: AuthorityStatus = AuthorityStatus.sealed,
        chunk_bytes: int = 256,
        where: str = "packets",
    ) -> Built:
        builder = PacketBuilder(self.root / where, packet_id, chunk_bytes=chunk_bytes)
        summary: list[tuple[RowValue, ...]] = [
            ("rows", rows),
            ("offset", offset),
            ("note", 'a, "quoted" value'),
        ]
        builder.write_table(
            path="data/result.jsonl",
            fmt="jsonl",
            columns=["id", "total", "name"],
            rows=result_rows(rows, offset),
            max_bytes=None,
        )
        builder.write_table(
            path="data/summary.csv",
            fmt="csv",
            columns=["key", "value"],
            rows=summary,
            max_bytes=None,
        )
        staged = builder.finish(
            created_at=CLOCK,
            authority_status=authority,
            catalog=CatalogRef(name="demo", version="1.0.0", catalog_digest=CATALOG_DIGEST),
            entry=EntryRef(id="orders.by_customer", kind="query", entry_digest=digest_bytes(b"e")),
            contract={"mode": "run", "inputs": {"customer_id": 7}, "timeout_ms": 5000},
            complete=True,
            claim=None,
            ledger=LedgerRef(origin="govex.test/ledger", call_seq=4),
            service=ServiceRef(version="0.1.0", module_sha256="ab" * 32),
        )
        return Built(builder.publish(staged), staged)

    @staticmethod
    def members(zip_path: Path) -> dict[str, bytes]:
        """Bag-relative name -> bytes (the single top-level folder stripped)."""
        with zipfile.ZipFile(zip_path) as archive:
            return {
                info.filename.split("/", 1)[1]: archive.read(info) for info in archive.infolist()
            }

    def write(
        self,
        members: dict[str, bytes],
        name: str = "tampered.zip",
        *,
        root: str = PACKET_ID,
        raw: Sequence[tuple[zipfile.ZipInfo | str, bytes]] = (),
    ) -> Path:
        """Zip ``members`` under ``root/``, then ``raw`` entries with their names as given."""
        path = self.root / name
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for member, data in sorted(members.items()):
                archive.writestr(f"{root}/{member}", data)
            with warnings.catch_warnings():
                # Duplicate names are the point of one tamper test; zipfile warns on them.
                warnings.filterwarnings("ignore", "Duplicate name", UserWarning)
                for info, data in raw:
                    archive.writestr(info, data)
        return path

    @staticmethod
    def rebag(members: dict[str, bytes]) -> dict[str, bytes]:
        """Recompute manifest-sha256, Payload-Oxum and tagmanifest-sha256 as a forger would."""
        out = dict(members)
        payload = {n: d for n, d in out.items() if n.startswith("data/")}
        out["manifest-sha256.txt"] = "".join(
            f"{hashlib.sha256(d).hexdigest()}  {n}\n" for n, d in sorted(payload.items())
        ).encode()
        oxum = f"{sum(len(d) for d in payload.values())}.{len(payload)}"
        info = out["bag-info.txt"].decode().splitlines()
        lines = [f"Payload-Oxum: {oxum}" if x.startswith("Payload-Oxum:") else x for x in info]
        out["bag-info.txt"] = "".join(f"{x}\n" for x in lines).encode()
        tags = {n: d for n, d in out.items() if "/" not in n and n != "tagmanifest-sha256.txt"}
        out["tagmanifest-sha256.txt"] = "".join(
            f"{hashlib.sha256(d).hexdigest()}  {n}\n" for n, d in sorted(tags.items())
        ).encode()
        return out

    @staticmethod
    def edit_packet_json(members: dict[str, bytes], edit: Callable[[dict[str, Any]], None]) -> None:
        document = json.loads(members["packet.json"])
        edit(document)
        members["packet.json"] = rfc8785.dumps(document)

    def bomb(self, declared: int = 2_000_000_000, name: str = "bomb.zip") -> Path:
        """A zip whose one member really inflates to ``declared`` zero bytes (~2 MB on disk).

        Built by hand from one full-flushed deflate block repeated, so making it
        costs a CRC pass, not a 2 GB compression.
        """
        block = 1_000_000
        compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
        zeros = bytes(block)
        first = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
        again = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
        body = first + again * (declared // block - 1) + compressor.flush()
        crc = 0
        for _ in range(declared // block):
            crc = zlib.crc32(zeros, crc)
        filename = f"{PACKET_ID}/data/big.jsonl".encode()
        local = struct.pack(
            "<IHHHHHIIIHH",
            0x04034B50,
            20,
            0,
            8,
            0,
            0x21,
            crc,
            len(body),
            declared,
            len(filename),
            0,
        )
        central = struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50, 0x031E, 20, 0, 8, 0, 0x21, crc, len(body), declared,
            len(filename), 0, 0, 0, 0, 0o100644 << 16, 0,
        )  # fmt: skip
        offset = len(local) + len(filename) + len(body)
        size = len(central) + len(filename)
        end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, size, offset, 0)
        path = self.root / name
        path.write_bytes(local + filename + body + central + filename + end)
        return path


@pytest.fixture
def kit(tmp_path: Path) -> PacketKit:
    return PacketKit(tmp_path)


@pytest.fixture(scope="session")
def bagit_vectors() -> Path:
    """BagIt conformance bags beside the repository; skipped when absent, unless CI=true."""
    root = Path(__file__).resolve().parents[3].parent / "shared" / "vectors" / "bagit" / "v1.0"
    if not root.is_dir():
        reason = f"BagIt conformance vectors not found at {root} (see shared/vectors/README.md)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return root
