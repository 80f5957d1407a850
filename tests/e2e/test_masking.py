"""Sensitive columns end to end, on SQLite and PostgreSQL ledgers: an analyst's packet holds
keyed digests, an operator's the values; the contract says which, with the key id and the
``unmask`` decision; the key itself is in no answer, ledger entry, packet or log."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from fastapi.testclient import TestClient

from ledger.store import LedgerStore
from service.app import create_app
from service.errors import StartupRefused
from service.masking import MaskingKey
from service.packets.readers import ZipPacketReader
from service.packets.verify import verify_packet
from service.settings import Settings
from tests.e2e.conftest import make_world

MASKED_TOML = """
[[query]]
id = "items.masked"
title = "Items, names masked"
source = "items"
sql = "queries/all.sql"
sensitive_columns = ["name", "tenant"]

[[query]]
id = "items.masked_wrong"
title = "A sensitive column the result does not have"
source = "items"
sql = "queries/all.sql"
sensitive_columns = ["email"]
"""


@pytest.fixture
def key() -> MaskingKey:
    return MaskingKey.generate()


@pytest.fixture(params=["sqlite", "postgresql"])
def masked_world(request: pytest.FixtureRequest, tmp_path: Path, key: MaskingKey) -> Settings:
    pg_url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    world = make_world(tmp_path, ledger_url=pg_url, extra_toml=MASKED_TOML, rows=30)
    key_file = tmp_path / "masking.key"
    key_file.write_text(key.text() + "\n")
    return Settings(**{**world.model_dump(), "masking_key_file": key_file})


@pytest.fixture
def client(masked_world: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(masked_world), raise_server_exceptions=False) as test_client:
        yield test_client
    if masked_world.packet_root.exists():
        shutil.rmtree(masked_world.packet_root)


def _auth(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer tok-{name}"}


def _run(client: TestClient, who: str, entry: str, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/calls", json={"entry": entry, **body}, headers=_auth(who))
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def _packet(client: TestClient, packet_id: str) -> tuple[bytes, dict[str, bytes]]:
    response = client.get(f"/v1/packets/{packet_id}", headers=_auth("carol"))
    assert response.status_code == 200
    with zipfile.ZipFile(io.BytesIO(response.content)) as bag:
        files = {name.split("/", 1)[1]: bag.read(name) for name in bag.namelist()}
    return response.content, files


def _rows(files: dict[str, bytes]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in files["data/result.jsonl"].splitlines()]


def _ledger_text(settings: Settings) -> bytes:
    store = LedgerStore.open(settings.ledger_url)
    try:
        return b"\n".join(store.iter_leaf_inputs())
    finally:
        store.close()


def test_an_analysts_packet_holds_masks_and_says_so(
    client: TestClient, masked_world: Settings, key: MaskingKey
) -> None:
    with structlog.testing.capture_logs() as logs:
        result = _run(client, "alice", "items.masked")
        raw, files = _packet(client, result["packet_id"])
    assert result["verdict"] == "ran_clean"
    masking = result["contract"]["masking"]
    assert masking["columns"] == ["name", "tenant"]
    assert masking["unmasked"] is False
    assert masking["algorithm"] == "hmac-sha256"
    assert masking["key_id"] == key.key_id
    assert masking["policy"]["action"] == "unmask"
    assert masking["policy"]["decision"] == "deny"

    rows = _rows(files)
    assert len(rows) == 30
    assert rows[1] == {
        "id": 1,
        "tenant": key.mask("globex"),
        "name": key.mask("item 1"),
        "amount": 1,
    }
    assert all(r["name"].startswith("hmac-sha256:") for r in rows)
    assert not any(b"item 1" in data for data in files.values())
    # Same value, same mask: grouping on a masked column still works.
    assert len({r["tenant"] for r in rows}) == 2

    packet = json.loads(files["packet.json"])
    assert packet["contract"]["masking"] == masking
    fields = json.loads(files["datapackage.json"])["resources"][0]["schema"]["fields"]
    by_name = {f["name"]: f for f in fields}
    assert key.key_id in by_name["name"]["description"]
    assert "hmac-sha256" in by_name["name"]["description"]
    assert "description" not in by_name["amount"]

    path = masked_world.packet_root.parent / "fetched.zip"
    path.write_bytes(raw)
    with ZipPacketReader(path) as reader:
        report = verify_packet(
            reader, expect_manifest_hash="sha256:" + result["manifest_hash"]["sha256"]
        )
    assert report.ok, report.summary()
    _key_is_nowhere(key, masked_world, raw, repr(logs).encode(), json.dumps(result).encode())


def test_an_operators_packet_holds_the_values(
    client: TestClient, masked_world: Settings, key: MaskingKey
) -> None:
    with structlog.testing.capture_logs() as logs:
        result = _run(client, "carol", "items.masked", format="csv")
        raw, files = _packet(client, result["packet_id"])
    masking = result["contract"]["masking"]
    assert masking["unmasked"] is True
    assert masking["key_id"] is None
    assert masking["algorithm"] is None
    assert masking["policy"]["decision"] == "allow"
    assert masking["policy"]["determining_policies"] == ["permit-unmask-operators"]
    lines = files["data/result.csv"].decode().splitlines()
    assert lines[:2] == ["id,tenant,name,amount", "0,acme,item 0,0"]
    fields = json.loads(files["datapackage.json"])["resources"][0]["schema"]["fields"]
    assert "permit-unmask-operators" in fields[2]["description"]
    _key_is_nowhere(key, masked_world, raw, repr(logs).encode(), json.dumps(result).encode())


def test_the_ledger_records_the_masking_terms_in_call_started(
    client: TestClient, masked_world: Settings, key: MaskingKey
) -> None:
    result = _run(client, "alice", "items.masked")
    store = LedgerStore.open(masked_world.ledger_url)
    try:
        started = store.list_entries(result["ledger"]["started"], 1)[0]
    finally:
        store.close()
    assert started.kind == "call.started"
    body: Any = started.body
    assert body["contract"]["masking"]["key_id"] == key.key_id


def test_entries_without_sensitive_columns_have_no_masking(client: TestClient) -> None:
    assert _run(client, "alice", "items.all")["contract"]["masking"] is None


def test_a_missing_sensitive_column_is_error_running_naming_it(client: TestClient) -> None:
    result = _run(client, "alice", "items.masked_wrong")
    assert result["verdict"] == "error_running"
    assert "email" in result["error"]
    assert result["packet_id"] is None


def test_without_a_masking_key_the_service_refuses_to_start(masked_world: Settings) -> None:
    settings = Settings(**{**masked_world.model_dump(), "masking_key_file": None})
    with (
        pytest.raises(StartupRefused, match="GOVEX_MASKING_KEY_FILE") as refused,
        TestClient(create_app(settings)),
    ):
        pass
    assert "items.masked" in str(refused.value)


def _key_is_nowhere(key: MaskingKey, settings: Settings, *haystacks: bytes) -> None:
    ledger = _ledger_text(settings)
    for haystack in (ledger, *haystacks):
        assert key.text().encode() not in haystack
        assert key.secret not in haystack
