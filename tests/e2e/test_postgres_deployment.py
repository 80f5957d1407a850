"""The documented PostgreSQL deployment: the owner migrates and grants, the service role runs."""

from __future__ import annotations

import uuid
from pathlib import Path

import sqlalchemy as sa
from fastapi.testclient import TestClient

from ledger.checkpoint import open_checkpoint
from ledger.keys import SignerKey, decode_base64
from ledger.merkle import leaf_hash, verify_inclusion
from ledger.migrate import LEDGER_SCHEMA, current_revision, head_revision, service_grants, upgrade
from service.app import create_app
from service.call_index import SERVICE_SCHEMA
from service.settings import Settings
from tests.pg_harness import SERVICE_PASSWORD, SERVICE_ROLE, PostgresServer


def auth(name: str) -> dict[str, str]:
    """Bearer headers of an e2e principal (conftest issues the token ``tok-<name>``)."""
    return {"Authorization": f"Bearer tok-{name}"}


def _owner_prepares(postgres: PostgresServer) -> str:
    """What the owner runs (`govex db upgrade`, then `govex db grants`); the database name."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    engine = sa.create_engine(postgres.create_database(name))
    try:
        for schema in (LEDGER_SCHEMA, SERVICE_SCHEMA):
            upgrade(engine, schema)
        with engine.begin() as conn:
            for statement in service_grants(
                SERVICE_ROLE, (LEDGER_SCHEMA, SERVICE_SCHEMA), writable=SERVICE_SCHEMA.tables
            ):
                conn.execute(sa.text(statement))
    finally:
        engine.dispose()
    return name


def test_the_service_role_runs_calls_and_signs_checkpoints_with_only_its_grants(
    postgres: PostgresServer, world: Settings, tmp_path: Path
) -> None:
    name = _owner_prepares(postgres)
    signer = SignerKey.generate(world.origin)
    key_file = tmp_path / "ledger.key"
    key_file.write_text(signer.text())
    settings = world.model_copy(
        update={
            "ledger_url": postgres.url(name, SERVICE_ROLE, SERVICE_PASSWORD),
            "ledger_key_file": key_file,
            "checkpoint_interval_s": 0,
        }
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        response = client.post("/v1/calls", json={"entry": "items.all"}, headers=auth("alice"))
        assert response.status_code == 201, response.text
        result = response.json()
        status = client.get(f"/v1/calls/{result['call_id']}", headers=auth("alice")).json()
        assert status["state"] == "completed"
        seq = result["ledger"]["packet_issued"]
        proof = client.get(f"/v1/ledger/proofs/inclusion?seq={seq}", headers=auth("bob"))
        assert proof.status_code == 200, proof.text
    body = proof.json()
    checkpoint = open_checkpoint(body["checkpoint"], signer.verifier_key)
    leaf = decode_base64(body["leaf_input"])
    assert leaf is not None
    hashes = [decode_base64(h) or b"" for h in body["proof"]]
    verify_inclusion(seq, checkpoint.size, leaf_hash(leaf), hashes, checkpoint.root)
    owner = sa.create_engine(postgres.url(name))
    try:
        assert current_revision(owner, SERVICE_SCHEMA) == head_revision(SERVICE_SCHEMA)
    finally:
        owner.dispose()
