"""The replay report packet, served by the running service like any other packet.

`govex ledger replay` runs beside the service, on the same ledger and packet root (as
docs/auditing.md tells an auditor to). The service then serves its report packet: the zip,
the manifest and the proof, each read ledgered, to ledger readers only, and an auditor
verifies it offline pinned to the hash the service reported, with the ledger's proof.
"""

from __future__ import annotations

import base64
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from ledger.keys import SignerKey, VerifierKey
from ledger.store import LedgerStore
from service.app import create_app
from service.cli import app as cli
from service.client import GovexClient
from service.packets.verify import InclusionEvidence, verify_packet_file
from service.settings import Settings
from tests.e2e.conftest import make_world
from tests.e2e.servers import world_env


@pytest.fixture
def signed(tmp_path: Path) -> tuple[Settings, VerifierKey]:
    world = make_world(tmp_path, rows=20)
    signer = SignerKey.generate(world.origin)
    key_file = tmp_path / "ledger.key"
    key_file.write_text(signer.text())
    settings = world.model_copy(update={"ledger_key_file": key_file, "checkpoint_interval_s": 0})
    return settings, signer.verifier_key


@pytest.fixture
def client(signed: tuple[Settings, VerifierKey]) -> Iterator[TestClient]:
    with TestClient(create_app(signed[0]), raise_server_exceptions=False) as test_client:
        yield test_client


def _as(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer tok-{name}"}


def _replayed(client: TestClient, settings: Settings) -> dict[str, Any]:
    """A call through the service, then `govex ledger replay` beside it, as bob (auditor)."""
    called = client.post("/v1/calls", json={"entry": "items.first_ten"}, headers=_as("alice"))
    assert called.status_code == 201, called.text
    env = {**world_env(settings), "GOVEX_API_KEY": "tok-bob"}
    result = CliRunner().invoke(cli, ["ledger", "replay", "--json"], env=env)
    assert result.exit_code == 0, result.output
    outcome: dict[str, Any] = json.loads(result.stdout)
    return outcome


def _reads(settings: Settings, packet_id: str) -> list[tuple[str, str, str]]:
    with LedgerStore.open(settings.ledger_url) as store:
        entries = store.list_entries(0, store.size())
    bodies = [cast("dict[str, Any]", e.body) for e in entries if e.kind.value == "access.read"]
    return [
        (body["principal"]["id"], body["read"], body["manifest_hash"]["sha256"])
        for body in bodies
        if body.get("packet_id") == packet_id
    ]


def test_the_service_serves_the_report_packet_like_any_other(
    client: TestClient, signed: tuple[Settings, VerifierKey], tmp_path: Path
) -> None:
    settings, verifier = signed
    outcome = _replayed(client, settings)
    report_id, sha = outcome["packet_id"], outcome["manifest_hash"]["sha256"]
    on_disk = Path(outcome["packet_path"]).read_bytes()

    zipped = client.get(f"/v1/packets/{report_id}", headers=_as("bob"))
    assert zipped.status_code == 200, zipped.text
    assert zipped.headers["content-type"] == "application/zip"
    assert zipped.content == on_disk
    manifest = client.get(f"/v1/packets/{report_id}/manifest", headers=_as("bob"))
    assert manifest.status_code == 200, manifest.text
    (tmp_path / "report.zip").write_bytes(zipped.content)
    with zipfile.ZipFile(tmp_path / "report.zip") as archive:
        assert archive.read(f"{report_id}/packet.json") == manifest.content
    assert json.loads(manifest.content)["entry"]["id"] == "govex.replay_report"
    proof = client.get(f"/v1/packets/{report_id}/proof", headers=_as("bob"))
    assert proof.status_code == 200, proof.text

    report = verify_packet_file(
        tmp_path / "report.zip",
        expect_manifest_hash=f"sha256:{sha}",
        inclusion=InclusionEvidence(proof=proof.content, key=verifier),
    )
    assert report.ok, report.summary()
    assert report.summary() == "7/7 checks passed, 1 skipped"  # ledger_inclusion ran
    uploaded = client.post(
        f"/v1/packets/verify?expect_manifest_hash=sha256:{sha}&trust_service_key=true"
        f"&proof={base64.b64encode(proof.content).decode()}",
        content=zipped.content,
        headers={**_as("carol"), "Content-Type": "application/zip"},
    )
    assert uploaded.status_code == 200, uploaded.text
    assert uploaded.json()["ok"] is True

    assert _reads(settings, report_id) == [
        ("bob", "packet.zip", sha),
        ("bob", "packet.manifest", sha),
        ("bob", "packet.proof", sha),
        ("carol", "packet.verify", sha),
    ]


def test_the_call_index_names_the_replay_and_an_auditor_downloads_it_verified(
    client: TestClient, signed: tuple[Settings, VerifierKey], tmp_path: Path
) -> None:
    settings, _ = signed
    outcome = _replayed(client, settings)
    status = client.get(f"/v1/calls/{outcome['replay_id']}", headers=_as("bob"))
    assert status.status_code == 200, status.text
    expected = {
        "call_id": outcome["replay_id"],
        "entry": "govex.replay_report",
        "principal": "bob",
        "state": "completed",
        "verdict": "ran_clean",
        "ledger": {
            "started": outcome["ledger"]["started"],
            "finished": outcome["ledger"]["finished"],
            "packet_issued": outcome["ledger"]["packet_issued"],
            "dry_run": None,
        },
        "packet_id": outcome["packet_id"],
        "manifest_hash": outcome["manifest_hash"],
    }
    assert {key: status.json()[key] for key in expected} == expected
    # `govex remote download REPLAY_ID` does this: status, download, verify pinned.
    with GovexClient("http://testserver", "tok-bob", http=client) as govex:
        verified = govex.verify(outcome["replay_id"], tmp_path / "report.zip")
    assert verified.ok, verified.summary()
    cancel = client.delete(f"/v1/calls/{outcome['replay_id']}", headers=_as("carol"))
    assert (cancel.status_code, cancel.json()["code"]) == (409, "call_not_running")


def test_only_ledger_readers_may_read_a_report_packet(
    client: TestClient, signed: tuple[Settings, VerifierKey]
) -> None:
    """Its rows are the ledger's calls: alice, who may read her own packets, may not."""
    settings, _ = signed
    report_id = _replayed(client, settings)["packet_id"]
    for path in ("", "/manifest", "/proof"):
        refused = client.get(f"/v1/packets/{report_id}{path}", headers=_as("alice"))
        assert refused.status_code == 403, refused.text
        assert refused.json()["code"] == "policy_denied"
        assert "read_ledger" in refused.json()["detail"]
    assert client.get(f"/v1/packets/{report_id}", headers=_as("carol")).status_code == 200
    assert [who for who, *_ in _reads(settings, report_id)] == ["carol"]
