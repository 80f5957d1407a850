"""`govex selftest` and `GET /v1/selftest`: the built-in checks, `N/N checks passed`, the build.

On a SQLite and a PostgreSQL ledger; a real SQLite source; failures made for real (a
source file gone, a catalog edited after its seal, a ledger row changed behind the
append-only triggers).
"""

from __future__ import annotations

import json
import re
import sqlite3
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from ledger.keys import SignerKey
from ledger.store import LedgerStore
from service.app import create_app
from service.build_info import module_sha256
from service.cli import app as cli
from service.runtime import build_runtime
from service.selftest import run_selftest
from service.settings import Settings
from tests.e2e.conftest import make_world
from tests.e2e.servers import world_env

CHECKS = [
    "catalog_seal",
    "policy_schema",
    "ledger_chain",
    "checkpoint_signature",
    "packet_root",
    "source:items",
    "schemas",
    "module_sha256",
]


@pytest.fixture(params=["sqlite", "postgresql"])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    url = None if request.param == "sqlite" else str(request.getfixturevalue("pg_url"))
    return make_world(tmp_path, ledger_url=url, rows=50)


@pytest.fixture
def client(world: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(world), raise_server_exceptions=False) as test_client:
        yield test_client


def _selftest(settings: Settings, *args: str) -> Any:
    return CliRunner().invoke(cli, ["selftest", *args], env=world_env(settings))


def test_every_check_passes_and_module_sha256_is_the_one_recorded(
    client: TestClient, world: Settings
) -> None:
    call = client.post(
        "/v1/calls", json={"entry": "items.all"}, headers={"Authorization": "Bearer tok-alice"}
    ).json()
    result = _selftest(world)
    assert result.exit_code == 0, result.output
    assert "7/7 checks passed, 1 skipped" in result.stdout  # no signing key: no checkpoint
    for name in CHECKS:
        assert re.search(rf"^(OK|SKIP) +{re.escape(name)} ", result.stdout, re.MULTILINE), name
    printed = re.search(r"^module_sha256 ([0-9a-f]{64}) ", result.stdout, re.MULTILINE)
    assert printed is not None
    digest = printed.group(1)
    assert digest == module_sha256()
    # The same digest in the service.started entry and in the packet's service block.
    with LedgerStore.open(world.ledger_url) as store:
        started = [
            e for e in store.list_entries(0, store.size()) if e.kind.value == "service.started"
        ]
    assert {e.body["module_sha256"] for e in started} == {digest}
    packet = world.packet_root / f"{call['packet_id']}.zip"
    with zipfile.ZipFile(packet) as archive:
        manifest = json.loads(archive.read(f"{call['packet_id']}/packet.json"))
    assert manifest["service"]["module_sha256"] == digest


def test_the_json_report_names_every_check_in_order(world: Settings) -> None:
    result = _selftest(world, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [check["name"] for check in report["checks"]] == CHECKS
    assert (report["ok"], report["passed"], report["total"], report["skipped"]) == (
        True,
        7,
        7,
        1,
    )
    assert report["summary"] == "7/7 checks passed, 1 skipped"
    statuses = {check["name"]: check["status"] for check in report["checks"]}
    assert statuses["checkpoint_signature"] == "skipped"
    assert "SQLite" in next(c["detail"] for c in report["checks"] if c["name"] == "source:items")


def test_with_a_signing_key_the_latest_checkpoint_signature_is_checked(
    world: Settings, tmp_path: Path
) -> None:
    key_file = tmp_path / "ledger.key"
    key_file.write_text(SignerKey.generate(world.origin).text())
    keyed = world.model_copy(update={"ledger_key_file": key_file, "checkpoint_interval_s": 0})
    with TestClient(create_app(keyed)) as client:
        assert client.get("/v1/ledger/checkpoint", headers={"Authorization": "Bearer tok-bob"})
    env = {**world_env(keyed), "GOVEX_LEDGER_KEY_FILE": str(key_file)}
    result = CliRunner().invoke(cli, ["selftest"], env=env)
    assert result.exit_code == 0, result.output
    assert "8/8 checks passed" in result.stdout
    assert re.search(r"^OK +checkpoint_signature +size \d+ signed by ", result.stdout, re.MULTILINE)


def test_a_source_that_cannot_be_read_fails_its_check_and_the_exit_code(world: Settings) -> None:
    Path(world.sources["items"]).unlink()
    result = _selftest(world)
    assert result.exit_code == 1, result.output
    assert re.search(
        r"^FAIL source:items +SQLite source file .* does not exist", result.stdout, re.MULTILINE
    )
    assert "6/7 checks passed, 1 skipped" in result.stdout


def test_a_catalog_that_no_longer_matches_its_seal_fails_the_selftest(world: Settings) -> None:
    toml = world.catalog_dir / "catalog.toml"
    toml.write_text(toml.read_text().replace('title = "All items"', 'title = "Every item"'))
    result = _selftest(world)
    assert result.exit_code == 1, result.output
    assert "the service cannot start" in result.stdout
    assert "does not match its seal" in result.output


def test_a_ledger_row_changed_behind_the_triggers_fails_the_chain_in_both_modes(
    tmp_path: Path,
) -> None:
    world = make_world(tmp_path, rows=5)  # a SQLite ledger the test can tamper with
    with TestClient(create_app(world)) as client:
        for _ in range(3):
            client.post(
                "/v1/calls",
                json={"entry": "items.all"},
                headers={"Authorization": "Bearer tok-alice"},
            )
    runtime = build_runtime(world, record_start=False)
    try:
        size = runtime.ledger.size()
        whole = run_selftest(runtime)
        window = run_selftest(runtime, full_chain_max=3, chain_window=4)
    finally:
        runtime.close()
    assert _check(whole, "ledger_chain").startswith(f"whole chain: {size} entries")
    assert _check(window, "ledger_chain").startswith(f"last 4 of {size} entries")
    _tamper(tmp_path / "ledger.sqlite", seq=size - 3)
    runtime = build_runtime(world, record_start=False)
    try:
        whole = run_selftest(runtime)
        window = run_selftest(runtime, full_chain_max=3, chain_window=4)
    finally:
        runtime.close()
    assert not whole.ok
    assert f"seq {size - 3}: check leaf_hash failed" in _check(whole, "ledger_chain", "failed")
    assert not window.ok
    assert f"seq {size - 2}: prev" in _check(window, "ledger_chain", "failed")


def _check(report: Any, name: str, status: str = "passed") -> str:
    (check,) = [c for c in report.checks if c.name == name]
    assert check.status == status, check
    detail: str = check.detail
    return detail


def _tamper(database: Path, *, seq: int) -> None:
    """Change entry ``seq``'s stored bytes as a database owner would (triggers dropped)."""
    with sqlite3.connect(database) as conn:
        triggers = conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'ledger_entries'"
        ).fetchall()
        for (name,) in triggers:
            conn.execute(f'DROP TRIGGER "{name}"')
        (data,) = conn.execute(
            "SELECT leaf_input FROM ledger_entries WHERE seq = ?", (seq,)
        ).fetchone()
        conn.execute(
            "UPDATE ledger_entries SET leaf_input = ? WHERE seq = ?",
            (bytes(data).replace(b'"v":1', b'"v":1 '), seq),
        )
    conn.close()


def test_get_selftest_is_the_same_report_for_ledger_readers_only(client: TestClient) -> None:
    answer = client.get("/v1/selftest", headers={"Authorization": "Bearer tok-bob"})
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["ok"] is True
    assert [check["name"] for check in report["checks"]] == CHECKS
    assert report["module_sha256"] == module_sha256()
    refused = client.get("/v1/selftest", headers={"Authorization": "Bearer tok-alice"})
    assert refused.status_code == 403
    assert refused.json()["code"] == "policy_denied"
