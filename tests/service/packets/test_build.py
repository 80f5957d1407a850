"""PacketBuilder: deterministic zips, atomic publishing, streaming; bagit-python as an oracle."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import tracemalloc
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import bagit
import pytest
import rfc8785

from catalog.authority import AuthorityStatus
from catalog.digest import digest_bytes
from service.packets import build
from service.packets.build import PacketBuilder
from service.packets.errors import PacketBuildError
from service.packets.manifest import CatalogRef, EntryRef, LedgerRef, ServiceRef, manifest_hash
from service.packets.recovery import recover_staging

if TYPE_CHECKING:
    from collections.abc import Iterator

    from conftest import PacketKit  # type: ignore[import-not-found]

PACKET_ID = "01JPACKETAAAAAAAAAAAAAAAAA"


def finish_kwargs(*, complete: bool = True) -> dict[str, object]:
    from datetime import UTC, datetime  # noqa: PLC0415

    return {
        "created_at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        "authority_status": AuthorityStatus.sealed,
        "catalog": CatalogRef(name="demo", version="1", catalog_digest=digest_bytes(b"c")),
        "entry": EntryRef(id="orders.all", kind="query", entry_digest=digest_bytes(b"e")),
        "contract": {"mode": "run"},
        "complete": complete,
        "claim": None,
        "ledger": LedgerRef(origin="o", call_seq=1),
        "service": ServiceRef(version="0.1.0", module_sha256="0" * 64),
    }


def test_same_bag_gives_the_same_zip_bytes(kit: PacketKit) -> None:
    first = kit.build(where="one")
    second = kit.build(where="two")
    assert first.zip_path.read_bytes() == second.zip_path.read_bytes()
    assert first.staged.manifest_hash == second.staged.manifest_hash


def test_zip_entries_are_sorted_stamped_and_under_one_folder(kit: PacketKit) -> None:
    built = kit.build()
    with zipfile.ZipFile(built.zip_path) as archive:
        infos = archive.infolist()
    names = [info.filename for info in infos]
    assert names == sorted(names)
    assert all(name.startswith(f"{PACKET_ID}/") for name in names)
    assert {(i.date_time, i.external_attr >> 16) for i in infos} == {
        ((1980, 1, 1, 0, 0, 0), 0o100644)
    }
    assert all(i.compress_type == build.zip_method(i.file_size) for i in infos)


def test_packet_json_bytes_are_the_jcs_form_and_hash_to_the_manifest_hash(kit: PacketKit) -> None:
    built = kit.build()
    data = kit.members(built.zip_path)["packet.json"]
    assert data == rfc8785.dumps(json.loads(data))
    assert digest_bytes(data) == built.staged.manifest_hash == manifest_hash(built.staged.manifest)
    assert json.loads(data)["created_at"] == "2026-11-23T09:15:02.123456Z"


def test_datapackage_describes_each_table(kit: PacketKit) -> None:
    built = kit.build()
    descriptor = json.loads(kit.members(built.zip_path)["datapackage.json"])
    assert descriptor["id"] == PACKET_ID
    by_path = {r["path"]: r for r in descriptor["resources"]}
    jsonl, csv = by_path["data/result.jsonl"], by_path["data/summary.csv"]
    record = built.staged.manifest.files[0]
    assert jsonl["hash"] == f"sha256:{record.digest.sha256}"
    assert jsonl["bytes"] == record.bytes
    assert [f["type"] for f in jsonl["schema"]["fields"]] == ["integer", "number", "string"]
    assert csv["dialect"]["lineTerminator"] == "\n"
    assert csv["dialect"]["header"] is True
    assert csv["schema"]["missingValues"] == [""]


def test_bag_info_carries_oxum_and_identifier(kit: PacketKit) -> None:
    built = kit.build()
    info = kit.members(built.zip_path)["bag-info.txt"].decode()
    size = sum(f.bytes for f in built.staged.manifest.files)
    assert info == (
        f"Bagging-Date: 2026-11-23\nPayload-Oxum: {size}.2\n"
        f"External-Identifier: {PACKET_ID}\nBag-Software-Agent: govex 0.1.0\n"
    )


def test_bagit_python_validates_an_extracted_packet(
    kit: PacketKit, caplog: pytest.LogCaptureFixture
) -> None:
    built = kit.build()
    with zipfile.ZipFile(built.zip_path) as archive:
        archive.extractall(kit.root / "out")
    bag = bagit.Bag(str(kit.root / "out" / PACKET_ID))
    with caplog.at_level(logging.WARNING, logger="bagit"):
        bag.validate(fast=False)
    assert bag.is_valid(fast=False)
    assert sorted(bag.payload_files()) == ["data/result.jsonl", "data/summary.csv"]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_nothing_is_visible_before_publish_and_staging_is_gone_after(tmp_path: Path) -> None:
    builder = PacketBuilder(tmp_path, PACKET_ID)
    builder.write_table(
        path="data/result.csv", fmt="csv", columns=["a"], rows=[(1,)], max_bytes=None
    )
    staged = builder.finish(**finish_kwargs())  # type: ignore[arg-type]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".staging"]
    staged_names = sorted(p.name for p in (tmp_path / ".staging").iterdir())
    assert staged_names == [f"{PACKET_ID}.lock", f"{PACKET_ID}.zip"]  # the lock: a live builder
    final = builder.publish(staged)
    assert final == tmp_path / f"{PACKET_ID}.zip"
    assert list((tmp_path / ".staging").iterdir()) == []
    with pytest.raises(PacketBuildError, match="cannot discard"):
        builder.discard()


def test_a_small_payload_stays_in_memory_and_zips_as_a_spilled_one_does(
    kit: PacketKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []
    real_open = Path.open

    def spy(self: Path, *args: Any, **kwargs: Any) -> Any:
        opened.append(self.name)
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", spy)
    in_memory = kit.build(where="memory")
    assert "result.jsonl" not in opened  # no scratch file in the bag folder
    monkeypatch.setattr(build, "SPOOL_BYTES", 10)  # every payload spills after 10 bytes
    spilled = kit.build(where="spilled")
    assert "result.jsonl" in opened
    assert in_memory.zip_path.read_bytes() == spilled.zip_path.read_bytes()


def test_discard_and_the_context_manager_remove_staging(tmp_path: Path) -> None:
    def fail_inside() -> PacketBuilder:
        with PacketBuilder(tmp_path, PACKET_ID) as builder:
            builder.write_table(
                path="data/r.jsonl", fmt="jsonl", columns=["a"], rows=[(1,)], max_bytes=None
            )
            raise RuntimeError

    with pytest.raises(RuntimeError):
        fail_inside()
    assert list((tmp_path / ".staging").iterdir()) == []
    builder = PacketBuilder(tmp_path, PACKET_ID)
    builder.discard()
    builder.discard()
    assert list((tmp_path / ".staging").iterdir()) == []
    with pytest.raises(PacketBuildError, match="cannot write"):
        builder.write_table(
            path="data/s.jsonl", fmt="jsonl", columns=["a"], rows=[], max_bytes=None
        )


def test_builder_refuses_misuse(tmp_path: Path) -> None:
    with pytest.raises(PacketBuildError, match="opaque"):
        PacketBuilder(tmp_path, "../evil")
    builder = PacketBuilder(tmp_path, PACKET_ID)
    with pytest.raises(PacketBuildError, match="already staged"):
        PacketBuilder(tmp_path, PACKET_ID)
    for bad in ("result.jsonl", "data/../x.jsonl", "/data/x"):
        with pytest.raises(PacketBuildError):
            builder.write_table(path=bad, fmt="jsonl", columns=["a"], rows=[], max_bytes=None)
    builder.write_table(
        path="data/r.jsonl", fmt="jsonl", columns=["a"], rows=[(1,), (2,)], max_bytes=8
    )
    with pytest.raises(PacketBuildError) as caught:
        builder.finish(**finish_kwargs(complete=True))  # type: ignore[arg-type]
    assert caught.value.path == "data/r.jsonl"
    staged = builder.finish(**finish_kwargs(complete=False))  # type: ignore[arg-type]
    assert staged.manifest.complete is False
    with pytest.raises(PacketBuildError, match="cannot finish"):
        builder.finish(**finish_kwargs(complete=False))  # type: ignore[arg-type]


_DEAD_BUILDER = """
import os, sys, pathlib
from service.packets.build import PacketBuilder
builder = PacketBuilder(pathlib.Path(sys.argv[1]), "01JDEAD")
rows = [(i,) for i in range(200_000)]  # past the builder's spool: the bag folder holds it
builder.write_table(path="data/r.jsonl", fmt="jsonl", columns=["a"], rows=rows, max_bytes=None)
os._exit(0)  # dies mid-build, as a killed worker would
"""


def test_recovery_settles_a_dead_builders_leftovers_and_keeps_a_live_ones(
    tmp_path: Path,
) -> None:
    live = PacketBuilder(tmp_path, "01JLIVE")  # another worker's call, still running
    live.write_table(path="data/r.jsonl", fmt="jsonl", columns=["a"], rows=[(1,)], max_bytes=None)
    subprocess.run([sys.executable, "-c", _DEAD_BUILDER, str(tmp_path)], check=True)
    (tmp_path / ".staging" / "01JOLD.zip").write_bytes(b"partial")

    def never_issued(_packet_id: str, _from_seq: int) -> None:
        return None

    recovered = recover_staging(tmp_path, never_issued)
    assert recovered.removed == ("01JDEAD",)  # its spilled bag folder: scratch
    assert recovered.quarantined == ("01JOLD.zip",)  # unreadable: kept for an operator
    left = sorted(p.name for p in (tmp_path / ".staging").iterdir())
    assert left == ["01JLIVE.lock"]  # its one row is still in memory; its lock is held
    staged = live.finish(**finish_kwargs())  # type: ignore[arg-type]
    assert live.publish(staged).is_file()
    assert list((tmp_path / ".staging").iterdir()) == []
    assert recover_staging(tmp_path / "absent", never_issued).removed == ()


def test_200k_rows_stream_to_disk_without_being_held(tmp_path: Path) -> None:
    builder = PacketBuilder(tmp_path, PACKET_ID)
    target = tmp_path / ".staging" / PACKET_ID / "data" / "result.jsonl"
    sizes_seen: list[int] = []

    def rows() -> Iterator[tuple[int, int, str]]:
        for i in range(200_000):
            if i % 50_000 == 0:
                sizes_seen.append(target.stat().st_size if target.exists() else -1)
            yield (i, i * 7, f"customer-{i:08d}")

    tracemalloc.start()
    try:
        written = builder.write_table(
            path="data/result.jsonl",
            fmt="jsonl",
            columns=["id", "total", "name"],
            rows=rows(),
            max_bytes=None,
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert written.record.rows == 200_000
    assert written.record.bytes > 8_000_000
    # Bytes reached the file while the generator was still producing rows (the first
    # SPOOL_BYTES of them from memory, once they passed it)...
    assert sizes_seen[0] == -1
    assert sizes_seen == sorted(sizes_seen)
    assert sizes_seen[-1] > 4_000_000
    # ...and the whole result (8 MB of text, far more as Python objects) was never held.
    assert peak < 4_000_000
    builder.discard()
