"""Operations end to end: /readyz, /metrics, and the configuration file of govex serve."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from structlog.testing import capture_logs
from typer.testing import CliRunner

from catalog.load import SEAL_FILE, load_catalog_dir, write_seal
from catalog.seal import compute_seal
from service.app import create_app
from service.cli import app as cli_app
from service.settings import Settings

PROBLEM = "application/problem+json"
ALICE = {"Authorization": "Bearer tok-alice"}


def _with(world: Settings, **changes: Any) -> Settings:
    return Settings(**{**world.model_dump(), **changes})


@pytest.fixture
def make_client() -> Iterator[Any]:
    """Start apps for changed settings; each one is shut down at the end of the test."""
    started: list[TestClient] = []

    def start(settings: Settings) -> TestClient:
        client = TestClient(create_app(settings), raise_server_exceptions=False)
        client.__enter__()
        started.append(client)
        return client

    yield start
    for client in reversed(started):
        client.__exit__(None, None, None)


def _checks(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {check["name"]: check for check in body["checks"]}


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _value(text: str, name: str, **labels: str) -> float:
    return _samples(text).get((name, frozenset(labels.items())), 0.0)


# --- /readyz ---------------------------------------------------------------------------------


def test_readyz_passes_every_check_without_credentials(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["ready"] is True
    assert [check["name"] for check in body["checks"]] == [
        "ledger",
        "source:items",
        "catalog_seal",
        "packet_root",
        "api_keys",
    ]
    checks = _checks(body)
    assert all(check["ok"] for check in checks.values())
    assert checks["api_keys"]["detail"] == "loaded, 3 keys"
    assert checks["catalog_seal"]["detail"].endswith("as sealed on disk")
    assert client.get("/healthz").status_code == 200


def test_a_missing_source_file_makes_readyz_503_naming_the_source_not_its_path(
    client: TestClient, world: Settings
) -> None:
    source = Path(world.sources["items"])
    source.rename(source.with_suffix(".moved"))
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["code"] == "not_ready"
    assert body["ready"] is False
    checks = _checks(body)
    assert checks["source:items"]["ok"] is False
    assert checks["ledger"]["ok"] is True
    assert "items.sqlite" not in response.text
    assert str(source.parent) not in response.text


def test_a_packet_root_that_cannot_take_a_file_fails_readyz(
    client: TestClient, world: Settings
) -> None:
    shutil.rmtree(world.packet_root)
    checks = _checks(client.get("/readyz").json())
    assert checks["packet_root"] == {"name": "packet_root", "ok": False, "detail": "not writable"}


def test_an_unloadable_keys_file_fails_readyz(client: TestClient, world: Settings) -> None:
    world.keys_file.write_text('{"format": "govex.keys/v1", "keys": [{"key_id": ')
    response = client.get("/readyz")
    assert response.status_code == 503
    assert _checks(response.json())["api_keys"]["ok"] is False


def test_a_catalog_edited_on_disk_without_a_seal_fails_readyz(
    make_client: Any, world: Settings
) -> None:
    client = make_client(world)
    sql = world.catalog_dir / "queries" / "all.sql"
    sql.write_text(sql.read_text() + "-- edited\n")
    check = _checks(client.get("/readyz").json())["catalog_seal"]
    assert check == {
        "name": "catalog_seal",
        "ok": False,
        "detail": "the catalog on disk no longer matches its seal: seal it again",
    }


def test_a_catalog_sealed_again_stays_ready_and_asks_for_a_restart(
    make_client: Any, world: Settings
) -> None:
    client = make_client(world)
    sql = world.catalog_dir / "queries" / "all.sql"
    sql.write_text(sql.read_text() + "-- edited\n")
    write_seal(
        world.catalog_dir / SEAL_FILE,
        compute_seal(load_catalog_dir(world.catalog_dir), datetime.now(UTC)),
    )
    response = client.get("/readyz")
    assert response.status_code == 200
    assert "restart to serve it" in _checks(response.json())["catalog_seal"]["detail"]


def test_an_unreachable_postgres_source_fails_without_leaking_its_url(
    make_client: Any, world: Settings
) -> None:
    url = "postgresql://reader:s3cret-pw@127.0.0.1:1/sales"
    client = make_client(_with(world, sources={**world.sources, "sales": url}))
    with capture_logs() as logs:
        response = client.get("/readyz")
    assert response.status_code == 503
    check = _checks(response.json())["source:sales"]
    assert check["ok"] is False
    assert check["detail"].startswith("PostgreSQL unreachable or refused")
    for forbidden in ("s3cret-pw", "127.0.0.1", "reader", "postgresql://"):
        assert forbidden not in response.text
    failures = [log for log in logs if log["event"] == "readiness.failed"]
    assert failures
    assert "s3cret-pw" not in repr(failures)


def test_a_reachable_postgres_source_passes(make_client: Any, world: Settings, pg_url: str) -> None:
    client = make_client(_with(world, sources={**world.sources, "sales": pg_url}))
    response = client.get("/readyz")
    assert response.status_code == 200, response.text
    assert _checks(response.json())["source:sales"]["detail"] == "PostgreSQL answers SELECT 1"


# --- /metrics --------------------------------------------------------------------------------


def test_metrics_count_calls_rows_bytes_ledger_appends_and_requests(client: TestClient) -> None:
    result = client.post("/v1/calls", json={"entry": "items.first_ten"}, headers=ALICE)
    assert result.status_code == 201, result.text
    call = result.json()
    assert client.get(f"/v1/packets/{call['packet_id']}", headers=ALICE).status_code == 200
    assert client.post("/v1/calls", json={"entry": "no.such"}, headers=ALICE).status_code == 404
    assert client.get("/v1/catalog", headers={"Authorization": "Bearer nope"}).status_code == 401

    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    entry = "items.first_ten"
    assert _value(text, "govex_calls_total", entry=entry, verdict="ran_clean") == 1
    assert _value(text, "govex_exported_rows_total", entry=entry) == call["rows"] == 10
    assert _value(text, "govex_exported_bytes_total", entry=entry) == call["bytes"]
    assert _value(text, "govex_call_duration_seconds_count", entry=entry) == 1
    assert _value(text, "govex_calls_total", entry="_other", verdict="blocked") == 1
    assert _value(text, "govex_auth_failures_total", code="unauthenticated") == 1
    for kind in ("call.started", "call.finished", "packet.issued", "call.denied", "auth.refused"):
        assert _value(text, "govex_ledger_appends_total", kind=kind) == 1, kind
    assert (
        _value(text, "govex_http_requests_total", method="POST", route="/v1/calls", status="201")
        == 1
    )
    packet_route = "/v1/packets/{packet_id}"
    assert (
        _value(text, "govex_http_requests_total", method="GET", route=packet_route, status="200")
        == 1
    )
    assert call["packet_id"] not in text  # templates, never raw paths
    assert "no.such" not in text
    assert "nope" not in text


def test_unrouted_paths_share_one_label(client: TestClient) -> None:
    for path in ("/nothing/here", "/wp-admin/x.php"):
        assert client.get(path).status_code == 404
    text = client.get("/metrics").text
    assert "wp-admin" not in text
    assert (
        _value(text, "govex_http_requests_total", method="GET", route="_unmatched", status="404")
        == 2
    )


def test_a_metrics_token_is_required_when_set(make_client: Any, world: Settings) -> None:
    client = make_client(_with(world, metrics_token=SecretStr("m-token-1")))
    refused = client.get("/metrics")
    assert refused.status_code == 401
    assert refused.headers["content-type"] == PROBLEM
    assert refused.json()["code"] == "unauthenticated"
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/metrics", headers=ALICE).status_code == 401  # an API key is not it
    accepted = client.get("/metrics", headers={"Authorization": "Bearer m-token-1"})
    assert accepted.status_code == 200
    assert "govex_http_requests_total" in accepted.text
    assert client.get("/readyz").status_code == 200  # only /metrics is restricted


def test_two_apps_in_one_process_keep_their_own_metrics(
    make_client: Any, world: Settings, tmp_path: Path
) -> None:
    one = make_client(world)
    other_root = tmp_path / "other-packets"
    two = make_client(_with(world, packet_root=other_root))
    assert one.post("/v1/calls", json={"entry": "items.first_ten"}, headers=ALICE).is_success
    count = "govex_calls_total"
    assert _value(one.get("/metrics").text, count, entry="items.first_ten", verdict="ran_clean")
    assert not _value(two.get("/metrics").text, count, entry="items.first_ten", verdict="ran_clean")


def test_openapi_documents_the_operations_endpoints(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/healthz", "/readyz", "/metrics"} <= set(paths)
    assert "503" in paths["/readyz"]["get"]["responses"]
    assert "410" in paths["/v1/packets/{packet_id}"]["get"]["responses"]


# --- govex serve --config --------------------------------------------------------------------


def test_serve_refuses_an_unknown_key_naming_it_and_the_file(tmp_path: Path) -> None:
    config = tmp_path / "govex.toml"
    config.write_text('catalog_dir = "c"\nkeys_file = "k"\nchekpoint_interval_s = 5\n')
    result = CliRunner().invoke(cli_app, ["serve", "--config", str(config)])
    assert result.exit_code == 2
    assert re.search(
        rf"error \[configuration_error\]: key 'chekpoint_interval_s' in {re.escape(str(config))}: "
        r"unknown setting \(did you mean 'checkpoint_interval_s'\?\)",
        result.stderr,
    )


def test_serve_takes_the_file_from_govex_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "govex.toml"
    config.write_text('catalog_dir = "c"\nkeys_file = "k"\ncheckpoint_interval_s = -2\n')
    monkeypatch.setenv("GOVEX_CONFIG", str(config))
    result = CliRunner().invoke(cli_app, ["serve"])
    assert result.exit_code == 2
    assert f"key 'checkpoint_interval_s' in {config}" in result.stderr
