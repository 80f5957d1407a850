"""packet.json model: exactly FORMATS section 4, strict, and its hash over JCS bytes."""

from __future__ import annotations

from typing import Any

import pytest
import rfc8785
from pydantic import ValidationError

from catalog.digest import digest_bytes
from service.packets.manifest import (
    FileRecord,
    PacketManifest,
    manifest_bytes,
    manifest_hash,
)

D = digest_bytes(b"x").model_dump()


def document(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "format": "govex.packet/v1",
        "packet_id": "01JX",
        "created_at": "2026-11-23T09:15:02.123456Z",
        "authority_status": "sealed",
        "catalog": {"name": "demo", "version": "1", "catalog_digest": D},
        "entry": {"id": "orders.all", "kind": "query", "entry_digest": D},
        "contract": {"mode": "run", "inputs": {"n": 1.5, "tags": ["a"]}},
        "files": [
            {
                "path": "data/result.jsonl",
                "bytes": 3,
                "rows": 1,
                "media_type": "application/jsonl",
                "digest": D,
                "chunks": [
                    {"offset": 0, "bytes": 3, "first_row": 0, "rows": 1, "blake3": "0" * 64}
                ],
            }
        ],
        "complete": True,
        "claim": {"expect": "empty", "surface": "exhaustive", "verdict": "ABSENT", "reason": None},
        "ledger": {"origin": "govex.test/ledger", "call_seq": 2},
        "service": {"version": "0.1.0", "module_sha256": "f" * 64},
    }
    return base | changes


def test_a_document_round_trips_to_the_same_jcs_bytes() -> None:
    data = rfc8785.dumps(document())
    manifest = PacketManifest.model_validate_json(data, strict=True)
    assert manifest_bytes(manifest) == data
    assert manifest_hash(manifest) == digest_bytes(data)


@pytest.mark.parametrize(
    ("changes", "loc"),
    [
        ({"format": "govex.packet/v2"}, ("format",)),
        ({"packet_id": "a/b"}, ("packet_id",)),
        ({"created_at": "2026-11-23T09:15:02Z"}, ("created_at",)),
        ({"created_at": "2026-02-30T09:15:02.000000Z"}, ("created_at",)),
        ({"complete": 1}, ("complete",)),
        ({"extra": None}, ("extra",)),
        (
            {"claim": {"expect": "empty", "surface": "everything", "verdict": "ABSENT"}},
            ("claim", "surface"),
        ),
        ({"entry": {"id": "Orders", "kind": "query", "entry_digest": D}}, ("entry", "id")),
    ],
)
def test_the_model_refuses_what_the_format_does_not_allow(
    changes: dict[str, Any], loc: tuple[str, ...]
) -> None:
    with pytest.raises(ValidationError) as caught:
        PacketManifest.model_validate_json(rfc8785.dumps(document(**changes)), strict=True)
    assert caught.value.errors()[0]["loc"] == loc


@pytest.mark.parametrize(
    "path", ["result.jsonl", "data/../x", "data//x", "/data/x", "data/cafe\u0301"]
)
def test_file_paths_must_be_safe_payload_paths(path: str) -> None:
    record = document()["files"][0] | {"path": path}
    with pytest.raises(ValidationError):
        FileRecord.model_validate(record)


def test_a_path_listed_twice_is_refused() -> None:
    files = document()["files"] * 2
    with pytest.raises(ValidationError, match="listed twice"):
        PacketManifest.model_validate_json(rfc8785.dumps(document(files=files)), strict=True)
