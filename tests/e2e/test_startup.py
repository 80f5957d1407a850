"""Start-up refuses a catalog that does not match its seal; --provisional runs it, labelled."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from ledger.store import LedgerStore
from service.app import create_app
from service.errors import StartupRefused
from service.runtime import build_runtime
from service.settings import Settings


def auth(name: str) -> dict[str, str]:
    """Bearer headers of an e2e principal (conftest issues the token ``tok-<name>``)."""
    return {"Authorization": f"Bearer tok-{name}"}


def _edit_sql(world: Settings) -> None:
    path = world.catalog_dir / "queries" / "missing.sql"
    path.write_text(path.read_text().replace("amount < 0", "amount < 1"))


def test_a_catalog_edited_after_sealing_is_refused_naming_the_entry(world: Settings) -> None:
    _edit_sql(world)
    with pytest.raises(StartupRefused, match=r"changed: items\.missing") as caught:
        build_runtime(world)
    assert "--provisional" in caught.value.message


def test_the_app_does_not_start_on_a_mismatched_catalog(world: Settings) -> None:
    _edit_sql(world)
    with pytest.raises(StartupRefused, match=r"items\.missing"), TestClient(create_app(world)):
        pass


def test_an_unsealed_catalog_is_refused(world: Settings) -> None:
    (world.catalog_dir / "catalog.seal.json").unlink()
    with pytest.raises(StartupRefused, match="seal"):
        build_runtime(world)


def test_provisional_runs_an_edited_catalog_and_stamps_everything_provisional(
    world: Settings,
) -> None:
    _edit_sql(world)
    settings = world.model_copy(update={"provisional": True})
    with TestClient(create_app(settings)) as client:
        result = client.post(
            "/v1/calls", json={"entry": "items.missing"}, headers=auth("alice")
        ).json()
        manifest = client.get(
            f"/v1/packets/{result['packet_id']}/manifest", headers=auth("alice")
        ).json()
    assert result["contract"]["authority_status"] == "provisional"
    assert manifest["authority_status"] == "provisional"
    store = LedgerStore.open(world.ledger_url)
    try:
        started = store.get(0)
    finally:
        store.close()
    assert started.kind == "service.started"
    assert started.body["authority_status"] == "provisional"
    assert "items.missing" in str(started.body["provisional_reason"])


def test_an_unconfigured_source_is_refused_at_start(world: Settings) -> None:
    with pytest.raises(StartupRefused, match="items"):
        build_runtime(world.model_copy(update={"sources": {}}))
