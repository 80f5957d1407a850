"""Auditing the auditors: reads of evidence through the service are ledgered (`access.read`).

"Who relied on which packet" is answered from the ledger alone, on a SQLite and a
PostgreSQL ledger.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from fastapi.testclient import TestClient

from ledger.keys import SignerKey
from ledger.store import LedgerStore
from service.app import create_app
from service.settings import Settings
from tests.e2e.conftest import make_world


@pytest.fixture(params=["sqlite", "postgresql"])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    url = None if request.param == "sqlite" else str(request.getfixturevalue("pg_url"))
    key_file = tmp_path / "ledger.key"
    settings = make_world(tmp_path, ledger_url=url, rows=20)
    key_file.write_text(SignerKey.generate(settings.origin).text())
    return settings.model_copy(update={"ledger_key_file": key_file, "checkpoint_interval_s": 0})


@pytest.fixture
def client(world: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(world), raise_server_exceptions=False) as test_client:
        yield test_client


def _as(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer tok-{name}"}


def _call(client: TestClient, entry: str) -> dict[str, Any]:
    response = client.post("/v1/calls", json={"entry": entry}, headers=_as("alice"))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _reads(settings: Settings) -> list[dict[str, Any]]:
    """The bodies of the ``access.read`` entries, in ledger order."""
    with LedgerStore.open(settings.ledger_url) as store:
        entries = store.list_entries(0, store.size())
    return [cast("dict[str, Any]", e.body) for e in entries if e.kind.value == "access.read"]


def relied_on(settings: Settings, packet_id: str) -> set[tuple[str, str, str, str]]:
    """Who read, downloaded, proved or verified ``packet_id``: from the ledger only."""
    return {
        (
            body["principal"]["id"],
            body["read"],
            body["manifest_hash"]["sha256"],
            body["request_id"],
        )
        for body in _reads(settings)
        if body.get("packet_id") == packet_id
    }


def test_who_relied_on_which_packet_is_answered_from_the_ledger(
    client: TestClient, world: Settings
) -> None:
    first, second = _call(client, "items.all"), _call(client, "items.first_ten")
    pid, sha = first["packet_id"], first["manifest_hash"]["sha256"]
    expected: set[tuple[str, str, str, str]] = set()
    for who, path, read in [
        ("alice", f"/v1/packets/{pid}", "packet.zip"),
        ("bob", f"/v1/packets/{pid}/manifest", "packet.manifest"),
        ("carol", f"/v1/packets/{pid}/proof", "packet.proof"),
    ]:
        answer = client.get(path, headers=_as(who))
        assert answer.status_code == 200, answer.text
        expected.add((who, read, sha, answer.headers["x-request-id"]))
    zipped = client.get(f"/v1/packets/{pid}", headers=_as("alice"))
    expected.add(("alice", "packet.zip", sha, zipped.headers["x-request-id"]))
    verified = client.post(
        f"/v1/packets/verify?expect_manifest_hash=sha256:{sha}",
        content=zipped.content,
        headers={**_as("bob"), "Content-Type": "application/zip"},
    )
    assert verified.status_code == 200, verified.text
    assert verified.json()["ok"] is True
    expected.add(("bob", "packet.verify", sha, verified.headers["x-request-id"]))
    other = client.get(f"/v1/packets/{second['packet_id']}", headers=_as("alice"))
    assert other.status_code == 200

    assert relied_on(world, pid) == expected
    assert {who for who, *_ in relied_on(world, second["packet_id"])} == {"alice"}
    (verification,) = [body for body in _reads(world) if body["read"] == "packet.verify"]
    assert verification["target"]["ok"] is True
    assert verification["target"]["pinned_manifest_hash"] is True


def test_each_ledger_read_is_one_entry_never_one_per_row(
    client: TestClient, world: Settings
) -> None:
    _call(client, "items.all")
    page = client.get("/v1/ledger/entries?limit=1000", headers=_as("bob"))
    assert page.status_code == 200
    assert len(page.json()["entries"]) > 3
    proof = client.get("/v1/ledger/proofs/inclusion?seq=1", headers=_as("carol"))
    assert proof.status_code == 200, proof.text
    consistency = client.get("/v1/ledger/proofs/consistency?old=1&new=3", headers=_as("bob"))
    assert consistency.status_code == 200, consistency.text
    checkpoint = client.get("/v1/ledger/checkpoint", headers=_as("bob"))
    assert checkpoint.status_code == 200
    reads = [(body["principal"]["id"], body["read"], body["target"]) for body in _reads(world)]
    assert reads == [
        ("bob", "ledger.entries", {"start": 0, "limit": 1000}),
        ("carol", "ledger.inclusion_proof", {"seq": 1, "size": None}),
        ("bob", "ledger.consistency_proof", {"old": 1, "new": 3}),
    ]  # the checkpoint is not recorded: it must stay the same for every reader
    # The page a reader gets already holds the reader's own access.read entry.
    assert page.json()["entries"][-1]["kind"] == "access.read"


def test_a_refused_or_unknown_read_is_not_ledgered(client: TestClient, world: Settings) -> None:
    call = _call(client, "items.all")
    assert client.get("/v1/ledger/entries", headers=_as("alice")).status_code == 403
    missing = client.get("/v1/packets/01JNOSUCHPACKET", headers=_as("bob"))
    assert missing.status_code == 404
    assert client.get(f"/v1/packets/{call['packet_id']}", headers=_as("alice")).status_code == 200
    reads = [(body["principal"]["id"], body["read"]) for body in _reads(world)]
    assert reads == [("alice", "packet.zip")]
