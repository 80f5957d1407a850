"""Helpers of the packet verification end-to-end tests: a world that signs checkpoints, packets.

``signed_world`` is the e2e world of ``conftest.make_world`` with a ledger signing key, so
``GET /v1/packets/{id}/proof`` answers; ``issue`` runs a call and saves its packet zip.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from ledger.keys import SignerKey, VerifierKey
from service.settings import Settings
from tests.e2e.conftest import make_world

HEADERS = {"Authorization": "Bearer tok-carol"}  # conftest issues tok-<name>; carol: operator


def signed_world(tmp_path: Path, **extra: Any) -> tuple[Settings, VerifierKey]:
    """The e2e world with a fresh ledger signing key; its verifier key for consumers."""
    world = make_world(tmp_path)
    signer = SignerKey.generate(world.origin)
    key_file = tmp_path / "ledger.key"
    key_file.write_text(signer.text() + "\n")
    key_file.chmod(0o600)
    return world.model_copy(update={"ledger_key_file": key_file, **extra}), signer.verifier_key


def issue(
    client: TestClient, directory: Path, *, fmt: str = "jsonl", entry: str = "items.all"
) -> tuple[Path, dict[str, Any]]:
    """Run ``entry`` as carol, save its packet zip under ``directory``; the call's result."""
    response = client.post("/v1/calls", json={"entry": entry, "format": fmt}, headers=HEADERS)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    assert result["packet_id"], result
    packet = client.get(f"/v1/packets/{result['packet_id']}", headers=HEADERS)
    assert packet.status_code == 200, packet.text
    path = directory / f"{result['packet_id']}.zip"
    path.write_bytes(packet.content)
    return path, result


def proof_of(client: TestClient, packet_id: str, directory: Path) -> Path:
    """The packet's tlog-proof, saved as a consumer would."""
    response = client.get(f"/v1/packets/{packet_id}/proof", headers=HEADERS)
    assert response.status_code == 200, response.text
    path = directory / f"{packet_id}.tlog-proof"
    path.write_text(response.text)
    return path


def extract(zip_path: Path, directory: Path) -> Path:
    """Unzip a packet; the bag directory (the zip's single top-level folder)."""
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(directory)
        root = archive.namelist()[0].split("/", 1)[0]
    return directory / root
