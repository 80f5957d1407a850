"""Every consumption check fails on its own tampered copy of a packet fetched over HTTP.

Each case rewrites the zip the way a forger would (recomputing the BagIt manifests where
that moves the failure to a later check) and asserts the failing check and its exact place.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from catalog.authority import AuthorityStatus
from catalog.canonical import jcs
from service.packets.readers import ZipPacketReader
from service.packets.verify import verify_packet

Members = dict[str, bytes]
HEADERS = {"Authorization": "Bearer tok-carol"}  # conftest issues tok-<name>; carol is an operator


@pytest.fixture
def fetched(client: TestClient, tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    result = client.post("/v1/calls", json={"entry": "items.all"}, headers=HEADERS).json()
    path = tmp_path / "packet.zip"
    path.write_bytes(client.get(f"/v1/packets/{result['packet_id']}", headers=HEADERS).content)
    return path, result


def _members(path: Path) -> tuple[str, Members]:
    with zipfile.ZipFile(path) as archive:
        names = [n for n in archive.namelist() if not n.endswith("/")]
        root = names[0].split("/", 1)[0]
        return root, {n.split("/", 1)[1]: archive.read(n) for n in names}


def _write(path: Path, root: str, members: Members) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name in sorted(members):
            archive.writestr(f"{root}/{name}", members[name])
    return path


def _manifest(entries: dict[str, bytes]) -> bytes:
    return "".join(
        f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in sorted(entries.items())
    ).encode()


def _rebag(members: Members) -> Members:
    """Recompute manifest-sha256, Payload-Oxum and the tag manifest, as a forger would."""
    payload = {n: d for n, d in members.items() if n.startswith("data/")}
    members["manifest-sha256.txt"] = _manifest(payload)
    oxum = f"Payload-Oxum: {sum(len(d) for d in payload.values())}.{len(payload)}"
    members["bag-info.txt"] = b"\n".join(
        oxum.encode() if line.startswith(b"Payload-Oxum:") else line
        for line in members["bag-info.txt"].split(b"\n")
    )
    tags = {
        n: d
        for n, d in members.items()
        if not n.startswith("data/") and not n.startswith("tagmanifest-")
    }
    members["tagmanifest-sha256.txt"] = _manifest(tags)
    return members


def _flip(data: bytes, at: int = 12) -> bytes:
    edited = bytearray(data)
    edited[at] ^= 0x01
    return bytes(edited)


def _edit_manifest(members: Members, change: Callable[[dict[str, Any]], None]) -> Members:
    document = json.loads(members["packet.json"])
    change(document)
    members["packet.json"] = jcs(document)
    return members


def _other_rows(members: Members) -> Members:
    lines = members["data/result.jsonl"].splitlines(keepends=True)
    members["data/result.jsonl"] = b"".join([lines[1], lines[0], *lines[2:]])
    return members


DATA = "data/result.jsonl"
OPTIONAL = {"manifest_hash", "catalog_pin", "ledger_inclusion"}
CASES = [
    pytest.param(
        lambda m: {**m, DATA: _flip(m[DATA])}, {}, "bagit_manifest", DATA, id="byte-flip-in-data"
    ),
    pytest.param(_other_rows, {}, "bagit_manifest", DATA, id="swapped-rows"),
    pytest.param(
        lambda m: {**m, "data/extra.csv": b"a\n"}, {}, "layout", "data/extra.csv", id="extra-file"
    ),
    pytest.param(
        lambda m: {k: v for k, v in m.items() if k != "datapackage.json"},
        {},
        "layout",
        "datapackage.json",
        id="missing-file",
    ),
    pytest.param(
        lambda m: _edit_manifest(m, lambda d: d.update(complete=False)),
        {},
        "bagit_manifest",
        "packet.json",
        id="edited-packet-json",
    ),
    pytest.param(
        lambda m: _rebag(_edit_manifest(m, lambda d: d.update(complete="yes"))),
        {},
        "schema",
        "packet.json#/complete",
        id="wrong-type-in-packet-json",
    ),
    pytest.param(
        lambda m: _rebag({**m, DATA: _flip(m[DATA])}),
        {},
        "file_digests",
        DATA,
        id="byte-flip-with-bag-recomputed",
    ),
    pytest.param(
        lambda m: _rebag(_edit_manifest(m, lambda d: d["contract"].update(max_rows=5))),
        "pin",
        "manifest_hash",
        "packet.json",
        id="edited-packet-json-with-bag-recomputed",
    ),
    pytest.param(
        lambda m: m,
        {"require_authority": AuthorityStatus.governed},
        "authority_status",
        "packet.json#/authority_status",
        id="authority-below-required",
    ),
    pytest.param(
        lambda m: m,
        {"trusted_catalog_digests": ["sha256:" + "0" * 64]},
        "catalog_pin",
        "packet.json#/catalog/catalog_digest",
        id="catalog-not-trusted",
    ),
]


@pytest.mark.parametrize(("tamper", "options", "check", "where"), CASES)
def test_each_check_fails_on_its_own_tampered_packet(
    fetched: tuple[Path, dict[str, Any]],
    tmp_path: Path,
    tamper: Callable[[Members], Members],
    options: dict[str, Any] | str,
    check: str,
    where: str,
) -> None:
    original, result = fetched
    root, members = _members(original)
    tampered = _write(tmp_path / "tampered.zip", root, tamper(dict(members)))
    pin = {"expect_manifest_hash": "sha256:" + result["manifest_hash"]["sha256"]}
    kwargs = pin if isinstance(options, str) else options
    with ZipPacketReader(tampered) as reader:
        report = verify_packet(reader, **kwargs)
    assert not report.ok
    failed = [c for c in report.checks if c.status == "fail"]
    assert [c.name for c in failed] == [check], report.summary()
    assert failed[0].where == where, failed[0]
    names = [c.name for c in report.checks]
    before = report.checks[: names.index(check)]
    # Checks before the failing one ran and passed (optional ones with nothing to compare skip).
    assert all(c.status == "pass" or (c.status == "skip" and c.name in OPTIONAL) for c in before)


def test_the_untouched_packet_passes_every_check(fetched: tuple[Path, dict[str, Any]]) -> None:
    original, result = fetched
    with ZipPacketReader(original) as reader:
        report = verify_packet(
            reader,
            expect_manifest_hash="sha256:" + result["manifest_hash"]["sha256"],
            trusted_catalog_digests=[
                "sha256:" + result["contract"]["catalog"]["catalog_digest"]["sha256"]
            ],
        )
    assert report.ok
    assert [c.status for c in report.checks] == ["pass"] * 7 + ["skip"]
