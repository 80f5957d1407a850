"""A packet whose entry later left the catalog: ledger readers may still read it, no one else."""

from __future__ import annotations

import shutil
from pathlib import Path

from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from tests.e2e.conftest import make_world, write_catalog

GONE = """
[[query]]
id = "items.gone"
title = "An entry the next catalog drops"
source = "items"
sql = "queries/all.sql"
"""


def auth(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer tok-{name}"}


def test_a_packet_outlives_its_entry_for_ledger_readers_only(tmp_path: Path) -> None:
    world: Settings = make_world(tmp_path, extra_toml=GONE)
    with TestClient(create_app(world), raise_server_exceptions=False) as client:
        ran = client.post("/v1/calls", json={"entry": "items.gone"}, headers=auth("alice"))
        assert ran.status_code == 201, ran.text
        packet_id = ran.json()["packet_id"]
        assert client.get(f"/v1/packets/{packet_id}", headers=auth("alice")).status_code == 200
    shutil.rmtree(world.catalog_dir)
    write_catalog(world.catalog_dir)  # the same catalog without items.gone, sealed again
    with TestClient(create_app(world), raise_server_exceptions=False) as client:
        assert client.get("/v1/catalog/items.gone", headers=auth("alice")).status_code == 404
        owner = client.get(f"/v1/packets/{packet_id}", headers=auth("alice"))
        assert owner.status_code == 403, owner.text  # was 404 unknown_entry
        assert owner.json()["code"] == "policy_denied"
        for reader in ("bob", "carol"):  # an auditor and an operator read the ledger
            kept = client.get(f"/v1/packets/{packet_id}", headers=auth(reader))
            assert kept.status_code == 200, kept.text
            assert kept.content[:2] == b"PK"
