"""Packet retention end to end: expired files removed, ledgered first, answered 410, crash-safe."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from ledger.store import LedgerStore
from service.app import create_app
from service.cli import app as cli_app
from service.errors import LeaseUnavailable
from service.retention import LEASE_SCOPE, LEASE_TTL, RetentionSweeper, removed_seq
from service.runtime import Runtime, build_runtime
from service.settings import Settings
from tests.e2e.conftest import calls_days_ago

PROBLEM = "application/problem+json"
ALICE = {"Authorization": "Bearer tok-alice"}


def _zip(world: Settings, packet_id: str) -> Path:
    return world.packet_root / f"{packet_id}.zip"


def _entries(world: Settings, kind: str) -> list[dict[str, Any]]:
    store = LedgerStore.open(world.ledger_url)
    try:
        return [e.model_dump() for e in store.list_entries(0, 10_000) if e.kind.value == kind]
    finally:
        store.close()


def _with(world: Settings, **changes: Any) -> Settings:
    return Settings(**{**world.model_dump(), **changes})


@pytest.fixture
def runtime_of() -> Iterator[Callable[[Settings], Runtime]]:
    opened: list[Runtime] = []

    def open_runtime(settings: Settings) -> Runtime:
        runtime = build_runtime(settings, record_start=False)
        opened.append(runtime)
        return runtime

    yield open_runtime
    for runtime in opened:
        runtime.close()


def _wait_until(condition: Callable[[], bool], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the sweeper did not get there in time"
        time.sleep(0.05)


def test_the_server_removes_expired_packets_ledgers_them_and_answers_410(
    world: Settings,
) -> None:
    old = calls_days_ago(world, 2, 3)
    (new,) = calls_days_ago(world, 1, 0)
    kept = _with(world, packet_retention_days=1)
    with TestClient(create_app(kept), raise_server_exceptions=False) as client:
        _wait_until(lambda: not any(_zip(world, c["packet_id"]).exists() for c in old))
        removed = _entries(world, "packet.removed")
        issued = {e["body"]["packet_id"]: e for e in _entries(world, "packet.issued")}
        assert sorted(e["body"]["packet_id"] for e in removed) == sorted(
            c["packet_id"] for c in old
        )
        for entry in removed:
            body = entry["body"]
            packet = issued[body["packet_id"]]
            assert body == {
                "packet_id": body["packet_id"],
                "manifest_hash": packet["body"]["manifest_hash"],
                "reason": "retention",
                "issued_seq": packet["seq"],
            }
            assert removed_seq(world.packet_root, body["packet_id"]) == entry["seq"]

            gone = client.get(f"/v1/packets/{body['packet_id']}", headers=ALICE)
            assert gone.status_code == 410
            assert gone.headers["content-type"] == PROBLEM
            assert gone.json()["code"] == "packet_removed"
            assert gone.json()["ledger_seq"] == entry["seq"]
            manifest = client.get(f"/v1/packets/{body['packet_id']}/manifest", headers=ALICE)
            assert manifest.status_code == 410
        assert client.get(f"/v1/packets/{new['packet_id']}", headers=ALICE).status_code == 200
        assert _zip(world, new["packet_id"]).exists()
        unknown = client.get("/v1/packets/01NOSUCHPACKET", headers=ALICE)
        assert unknown.status_code == 404  # never issued: not found, not gone
    store = LedgerStore.open(world.ledger_url)
    try:
        assert store.verify().size == store.size()  # the chain holds, entries stay
    finally:
        store.close()


def test_a_sweep_removes_only_what_is_older_than_the_retention(
    world: Settings, runtime_of: Callable[[Settings], Runtime]
) -> None:
    (older,) = calls_days_ago(world, 1, 10)
    (younger,) = calls_days_ago(world, 1, 5)
    sweeper = RetentionSweeper(runtime_of(_with(world, packet_retention_days=7)))
    removals = sweeper.sweep()
    assert [r.packet_id for r in removals] == [older["packet_id"]]
    assert removals[0].removed_seq is not None
    assert not _zip(world, older["packet_id"]).exists()
    assert _zip(world, younger["packet_id"]).exists()
    assert sweeper.sweep() == []  # nothing left to do


def test_a_dry_run_changes_nothing(
    world: Settings, runtime_of: Callable[[Settings], Runtime]
) -> None:
    (old,) = calls_days_ago(world, 1, 3)
    sweeper = RetentionSweeper(runtime_of(_with(world, packet_retention_days=1)))
    (would,) = sweeper.sweep(dry_run=True)
    assert (would.packet_id, would.removed_seq) == (old["packet_id"], None)
    assert _zip(world, old["packet_id"]).exists()
    assert _entries(world, "packet.removed") == []
    assert [r.packet_id for r in sweeper.sweep()] == [old["packet_id"]]  # dry run kept no mark


def test_without_a_retention_nothing_expires(
    world: Settings, runtime_of: Callable[[Settings], Runtime]
) -> None:
    (old,) = calls_days_ago(world, 1, 3000)
    sweeper = RetentionSweeper(runtime_of(world))
    assert sweeper.retention is None
    assert sweeper.sweep() == []
    assert _zip(world, old["packet_id"]).exists()


def test_one_sweep_at_a_time_across_processes(
    world: Settings, runtime_of: Callable[[Settings], Runtime]
) -> None:
    (old,) = calls_days_ago(world, 1, 3)
    settings = _with(world, packet_retention_days=1)
    other = runtime_of(settings)  # another process, as far as the lease table knows
    other.leases.acquire(
        LEASE_SCOPE, "other-sweeper", max_concurrent=1, ttl=LEASE_TTL, now=datetime.now(UTC)
    )
    with pytest.raises(LeaseUnavailable):
        RetentionSweeper(runtime_of(settings)).sweep()
    assert _zip(world, old["packet_id"]).exists()


def test_a_removal_ledgered_before_a_crash_is_finished_at_start(world: Settings) -> None:
    (old,) = calls_days_ago(world, 1, 3)
    packet_id = old["packet_id"]
    issued = next(
        e for e in _entries(world, "packet.issued") if e["body"]["packet_id"] == packet_id
    )
    store = LedgerStore.open(world.ledger_url)
    try:  # step 1 of a removal, then the crash: the file is still there
        removal = store.append(
            "packet.removed",
            {
                "packet_id": packet_id,
                "manifest_hash": issued["body"]["manifest_hash"],
                "reason": "retention",
                "issued_seq": issued["seq"],
            },
            datetime.now(UTC),
        )
    finally:
        store.close()
    assert _zip(world, packet_id).exists()
    # Retention is off now: a removal already in the ledger is still carried out.
    with TestClient(create_app(world), raise_server_exceptions=False) as client:
        _wait_until(lambda: not _zip(world, packet_id).exists())
        assert removed_seq(world.packet_root, packet_id) == removal.seq
        response = client.get(f"/v1/packets/{packet_id}", headers=ALICE)
        assert response.status_code == 410
        assert response.json()["ledger_seq"] == removal.seq
    assert len(_entries(world, "packet.removed")) == 1  # finished, not ledgered again


def _config(world: Settings, path: Path, **extra: object) -> Path:
    values = {**world.model_dump(mode="json", exclude_none=True), **extra}
    sources = values.pop("sources")
    lines = [f"{key} = {json.dumps(value)}" for key, value in values.items()]
    lines += ["[sources]", *(f"{name} = {json.dumps(v)}" for name, v in sources.items())]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_govex_packets_prune_dry_run_then_prune(world: Settings, tmp_path: Path) -> None:
    (old,) = calls_days_ago(world, 1, 3)
    config = _config(world, tmp_path / "govex.toml", packet_retention_days=2)
    runner = CliRunner()

    dry = runner.invoke(cli_app, ["packets", "prune", "--dry-run", "--config", str(config)])
    assert dry.exit_code == 0, dry.stderr
    assert f"would remove {old['packet_id']}" in dry.stdout
    assert "would remove 1 packet(s) older than 2 day(s)" in dry.stdout
    assert _zip(world, old["packet_id"]).exists()

    done = runner.invoke(cli_app, ["packets", "prune", "--config", str(config)])
    assert done.exit_code == 0, done.stderr
    (entry,) = _entries(world, "packet.removed")
    assert f"removed {old['packet_id']}" in done.stdout
    assert f"packet.removed at seq {entry['seq']}" in done.stdout
    assert not _zip(world, old["packet_id"]).exists()


def test_govex_packets_prune_without_a_retention_says_so(world: Settings, tmp_path: Path) -> None:
    config = _config(world, tmp_path / "govex.toml")
    result = CliRunner().invoke(cli_app, ["packets", "prune", "--config", str(config)])
    assert result.exit_code == 0, result.stderr
    assert "retention is off" in result.stdout
