"""Four `govex serve` workers on one PostgreSQL ledger and packet root, under 32 clients.

Mixed calls (quick runs, dry runs, refusals, a leased entry, async calls followed to
their end) for a bounded time; then the server is stopped (SIGTERM: graceful) and the
evidence is checked: one gap-free chain, every acknowledged call in the ledger with its
packet, no lease held, no call left created or running.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from ledger.store import LedgerStore
from service.settings import Settings
from tests.e2e.conftest import make_world
from tests.e2e.servers import free_port, world_env

WORKERS = 4
CLIENTS = 32
DRIVE_S = 8.0
LEASED_TOML = """
[[query]]
id = "items.leased"
title = "Two runs at a time"
source = "items"
sql = "queries/all.sql"
lease = { max_concurrent = 2 }
"""


@pytest.fixture
def pg_world(tmp_path: Path, pg_url: str) -> Settings:
    return make_world(tmp_path, ledger_url=pg_url, extra_toml=LEASED_TOML, rows=200)


@pytest.fixture
def server(pg_world: Settings) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    env = {**os.environ, **world_env(pg_world), "GOVEX_AUTH_FAILURE_LIMIT": "1000"}
    command = [str(Path(sys.executable).parent / "govex"), "serve", "--port", str(port)]
    log = (pg_world.packet_root.parent / "serve.log").open("wb")
    process = subprocess.Popen(
        [*command, "--workers", str(WORKERS)], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (pg_world.packet_root.parent / "serve.log").read_text()
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the workers did not start within 60 s"
            time.sleep(0.2)
        yield base, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
        log.close()


def _drive(base: str, seed: int, until: float, acknowledged: list[dict[str, Any]]) -> None:
    """One client: mixed requests until ``until``; every acknowledged call is recorded."""
    chooser = random.Random(seed)  # noqa: S311 - a test's mix, not a secret
    who = chooser.choice(["alice", "carol"])
    headers = {"Authorization": f"Bearer tok-{who}"}
    with httpx.Client(base_url=base, timeout=60, headers=headers) as client:
        while time.monotonic() < until:
            kind = chooser.choice(["run", "run", "async", "dry", "refused", "leased"])
            body: dict[str, Any] = {"entry": "items.all"}
            extra: dict[str, str] = {}
            if kind == "async":
                extra["Prefer"] = "respond-async"
            elif kind == "dry":
                body["mode"] = "dry_run"
            elif kind == "refused":
                body["entry"] = "items.nope"
            elif kind == "leased":
                body["entry"] = "items.leased"
            response = client.post("/v1/calls", json=body, headers=extra)
            if response.status_code in {201, 202}:
                acknowledged.append(response.json())
            else:
                assert response.status_code in {200, 404, 429}, response.text
                assert response.status_code != 500


def test_four_workers_keep_one_ledger_under_32_clients(
    server: tuple[str, subprocess.Popen[bytes]], pg_world: Settings
) -> None:
    base, process = server
    acknowledged: list[dict[str, Any]] = []
    until = time.monotonic() + DRIVE_S
    clients = [
        threading.Thread(target=_drive, args=(base, seed, until, acknowledged))
        for seed in range(CLIENTS)
    ]
    for client in clients:
        client.start()
    for client in clients:
        client.join(timeout=120)
    assert len(acknowledged) > CLIENTS  # every client got calls through
    headers = {"Authorization": "Bearer tok-carol"}
    deadline = time.monotonic() + 60
    for call in acknowledged:  # an accepted async call is followed to its end
        while httpx.get(f"{base}/v1/calls/{call['call_id']}", headers=headers).json()[
            "state"
        ] not in {"completed", "failed"}:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0

    with LedgerStore.open(pg_world.ledger_url) as store:
        report = store.verify()
        entries = [e.model_dump(mode="json") for e in store.list_entries(0, store.size())]
    assert report.size == len(entries)
    assert [e["seq"] for e in entries] == list(range(len(entries)))  # gap-free
    assert sum(e["kind"] == "service.started" for e in entries) == WORKERS
    by_call: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        call_id = entry["body"].get("call_id")
        if call_id:
            by_call.setdefault(call_id, []).append(entry)
    for call in acknowledged:
        kinds = [e["kind"] for e in by_call[call["call_id"]]]
        assert kinds[:2] == ["call.started", "call.finished"], kinds
        if kinds[-1] == "packet.issued":
            packet_id = by_call[call["call_id"]][-1]["body"]["packet_id"]
            assert (pg_world.packet_root / f"{packet_id}.zip").is_file()
    engine = sa.create_engine(pg_world.ledger_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM govex_leases")).scalar() == 0
            stuck = conn.execute(
                sa.text("SELECT count(*) FROM govex_calls WHERE state IN ('created', 'running')")
            ).scalar()
            assert stuck == 0
    finally:
        engine.dispose()
