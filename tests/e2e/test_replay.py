"""`govex ledger replay` end to end: real calls, a SQLite source, SQLite and PostgreSQL ledgers.

Calls are made through the app (in-process), the replay through the CLI as the auditor
bob, and everything is checked in the ledger and the report packet it leaves.
"""

from __future__ import annotations

import json
import re
import sqlite3
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from catalog.load import SEAL_FILE, load_catalog_dir, write_seal
from catalog.seal import compute_seal
from ledger.keys import SignerKey
from ledger.store import LedgerStore
from service import calls
from service.app import create_app
from service.auth_refusals import authenticate_or_ledger
from service.call_reaper import reap_interrupted
from service.cli import app as cli
from service.contract import CallRequest
from service.masking import MaskingKey
from service.packets.verify import verify_packet_file
from service.runtime import build_runtime
from service.settings import Settings
from tests.e2e.conftest import make_world
from tests.e2e.servers import world_env

ROWS = 40_000  # about 2.4 MB of JSON Lines: three chunks of ~1 MiB


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def world(tmp_path: Path, ledger_url: str) -> Settings:
    return make_world(tmp_path, ledger_url=ledger_url, rows=ROWS)


@pytest.fixture
def client(world: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(world), raise_server_exceptions=False) as test_client:
        yield test_client


def _call(client: TestClient, entry: str, who: str = "alice", **params: Any) -> dict[str, Any]:
    response = client.post(
        "/v1/calls",
        json={"entry": entry, "params": params},
        headers={"Authorization": f"Bearer tok-{who}"},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    assert body["verdict"] == "ran_clean"
    return body


def _replay(settings: Settings, *args: str, key: str = "tok-bob") -> tuple[int, dict[str, Any]]:
    env = {**world_env(settings), "GOVEX_API_KEY": key}
    if settings.masking_key_file is not None:
        env["GOVEX_MASKING_KEY_FILE"] = str(settings.masking_key_file)
    result = CliRunner().invoke(cli, ["ledger", "replay", "--json", *args], env=env)
    assert result.exit_code in {0, 1}, result.output
    outcome: dict[str, Any] = json.loads(result.stdout)
    return result.exit_code, outcome


@dataclass(frozen=True)
class Recorded:
    """A ledger entry's seq and body (JSON, as the test reads it)."""

    seq: int
    body: dict[str, Any]


def _entries(settings: Settings, kind: str | None = None) -> list[Recorded]:
    with LedgerStore.open(settings.ledger_url) as store:
        entries = store.list_entries(0, store.size())
    return [
        Recorded(e.seq, cast("dict[str, Any]", e.body))
        for e in entries
        if kind is None or e.kind.value == kind
    ]


def _by_call(outcome: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {line["call_id"]: line for line in outcome["calls"]}


def test_a_clean_history_replays_all_ran_clean(client: TestClient, world: Settings) -> None:
    made = [
        _call(client, "items.all"),
        _call(client, "items.first_ten"),
        _call(client, "items.by_tenant", who="carol", tenant="globex", min_amount=10),
    ]
    code, outcome = _replay(world)
    assert code == 0
    assert outcome["clean"] is True
    lines = _by_call(outcome)
    assert set(lines) == {call["call_id"] for call in made}
    assert {line["outcome"] for line in lines.values()} == {"ran_clean"}
    for call in made:
        line = lines[call["call_id"]]
        assert line["drift"] is None
        assert line["replay_sha256"] == line["recorded_sha256"]
        assert line["replay_rows"] == call["rows"]
        assert line["recorded_engine_version"] == sqlite3.sqlite_version
    (started,) = _entries(world, "replay.started")
    (finished,) = _entries(world, "replay.finished")
    assert started.body["by"]["id"] == "bob"
    assert started.body["range"] == {"from_seq": 0, "to_seq": started.seq - 1}
    assert finished.body["calls"] == 3
    assert finished.body["counts"]["ran_clean"] == 3
    assert finished.body["packet_id"] == outcome["packet_id"]
    # Replays append no call.* entry and publish no packet of their own runs.
    assert len(_entries(world, "call.started")) == 3
    published = sorted(p.stem for p in world.packet_root.glob("*.zip"))
    assert published == sorted([*(c["packet_id"] for c in made), outcome["packet_id"]])
    assert list((world.packet_root / ".staging").iterdir()) == []  # scratch runs discarded


def test_data_changed_under_a_recorded_call_is_data_drift_with_its_row_range(
    client: TestClient, world: Settings
) -> None:
    call = _call(client, "items.all")
    (recorded,) = [
        e for e in _entries(world, "call.finished") if e.body["call_id"] == call["call_id"]
    ]
    chunks = recorded.body["chunks"]
    assert isinstance(chunks, list)
    assert len(chunks) >= 3  # the export's per-chunk digests are in the ledger
    changed_row = 30_000  # items are exported by id, from 0: id 30000 is data row 30000
    with sqlite3.connect(world.sources["items"]) as conn:
        conn.execute("UPDATE items SET amount = amount + 1 WHERE id = ?", (changed_row,))
    conn.close()
    code, outcome = _replay(world)
    assert code == 1
    (line,) = outcome["calls"]
    assert (line["outcome"], line["drift"]) == ("ran_with_drift", "data")
    assert line["replay_sha256"] != line["recorded_sha256"]
    # The first differing chunk is the one holding row 30000, as the export recorded it.
    (holding,) = [c for c in chunks if c["first_row"] <= changed_row < c["first_row"] + c["rows"]]
    assert line["diff_chunk"] == chunks.index(holding) > 0
    assert (line["diff_offset"], line["diff_first_row"]) == (
        holding["offset"],
        holding["first_row"],
    )
    assert line["diff_first_row"] <= changed_row < line["diff_first_row"] + line["diff_rows"]
    assert f"rows {holding['first_row']:,}-" in line["reason"]


def _reseal(
    directory: Path, *, drop: str | None = None, sql: tuple[str, str] | None = None
) -> None:
    """Edit the catalog (drop an entry, or change a query file) and seal it again."""
    toml = (directory / "catalog.toml").read_text()
    if drop is not None:
        blocks = toml.split("[[query]]")
        toml = "[[query]]".join(b for b in blocks if f'id = "{drop}"' not in b)
        (directory / "catalog.toml").write_text(toml)
    if sql is not None:
        name, text = sql
        (directory / "queries" / name).write_text(text)
    write_seal(directory / SEAL_FILE, compute_seal(load_catalog_dir(directory), datetime.now(UTC)))


def test_an_entry_removed_from_a_resealed_catalog_is_catalog_drift(
    client: TestClient, world: Settings
) -> None:
    gone = _call(client, "items.first_ten")
    kept = _call(client, "items.all")
    client.close()
    _reseal(world.catalog_dir, drop="items.first_ten")
    code, outcome = _replay(world)
    assert code == 1
    lines = _by_call(outcome)
    removed = lines[gone["call_id"]]
    assert (removed["outcome"], removed["drift"]) == ("blocked", "catalog")
    assert "no catalog entry 'items.first_ten'" in removed["reason"]
    assert removed["replay_sha256"] is None  # nothing ran
    assert lines[kept["call_id"]]["outcome"] == "ran_clean"
    (finished,) = _entries(world, "replay.finished")
    assert finished.body["counts"]["blocked"] == 1


def test_an_entry_whose_digest_changed_is_catalog_drift_not_data_drift(
    client: TestClient, world: Settings
) -> None:
    call = _call(client, "items.missing")
    client.close()
    _reseal(
        world.catalog_dir,
        sql=("missing.sql", "SELECT id FROM items WHERE amount < 1 ORDER BY id\n"),
    )
    code, outcome = _replay(world, "--entry", "items.missing")
    assert code == 1
    (line,) = outcome["calls"]
    assert line["call_id"] == call["call_id"]
    assert (line["outcome"], line["drift"]) == ("blocked", "catalog")
    assert line["sealed_entry_sha256"] != line["recorded_entry_sha256"]
    assert "sealed now as sha256:" in line["reason"]


def test_an_interrupted_call_is_reported_never_skipped(world: Settings) -> None:
    runtime = build_runtime(world)
    try:
        alice = authenticate_or_ledger(runtime, "Bearer tok-alice", via="cli")
        request = CallRequest(entry="items.all")
        # Accepted (call.started durable), then its worker died; a later worker finds it
        # past its deadline and finishes it as interrupted (service.call_reaper).
        reaped = calls.accept(runtime, alice, request, request_id=None)
        assert isinstance(reaped, calls.AcceptedCall)
        later = replace(runtime, clock=lambda: datetime.now(UTC) + timedelta(hours=1))
        assert reap_interrupted(later) == [reaped.call_id]
        # Accepted, and the whole service died: no call.finished at all.
        crashed = calls.accept(runtime, alice, request, request_id=None)
        assert isinstance(crashed, calls.AcceptedCall)
    finally:
        runtime.close()
    finished = {e.body["call_id"] for e in _entries(world, "call.finished")}
    assert reaped.call_id in finished
    assert crashed.call_id not in finished
    code, outcome = _replay(world)
    assert code == 1
    lines = _by_call(outcome)
    assert set(lines) == {crashed.call_id, reaped.call_id}
    assert {line["outcome"] for line in lines.values()} == {"interrupted"}
    assert "no call.finished" in lines[crashed.call_id]["reason"]
    assert "interrupted:" in lines[reaped.call_id]["reason"]
    assert all(line["replay_sha256"] is None for line in lines.values())  # nothing re-ran
    (finished_replay,) = _entries(world, "replay.finished")
    assert finished_replay.body["counts"]["interrupted"] == 2


def test_the_replay_report_packet_verifies_and_holds_one_line_per_call(
    client: TestClient, world: Settings
) -> None:
    made = [_call(client, "items.first_ten"), _call(client, "items.missing")]
    code, outcome = _replay(world)
    assert code == 0
    packet = Path(outcome["packet_path"])
    (issued,) = [
        e for e in _entries(world, "packet.issued") if e.body["packet_id"] == outcome["packet_id"]
    ]
    (finished,) = _entries(world, "replay.finished")
    assert issued.body["call_id"] == outcome["replay_id"] == finished.body["replay_id"]
    assert issued.body["manifest_hash"] == finished.body["manifest_hash"]
    pin = "sha256:" + issued.body["manifest_hash"]["sha256"]
    report = verify_packet_file(packet, expect_manifest_hash=pin)
    assert report.ok, report.summary()
    # The same through the offline CLI, as an auditor would.
    checked = CliRunner().invoke(
        cli, ["packet", "verify", str(packet), "--expect-manifest-hash", pin]
    )
    assert checked.exit_code == 0, checked.output
    with zipfile.ZipFile(packet) as archive:
        root = outcome["packet_id"]
        manifest = json.loads(archive.read(f"{root}/packet.json"))
        lines = [json.loads(x) for x in archive.read(f"{root}/data/replay.jsonl").splitlines()]
    assert manifest["entry"]["id"] == "govex.replay_report"
    assert manifest["contract"]["mode"] == "replay"
    assert manifest["contract"]["identity"]["id"] == "bob"
    assert manifest["ledger"]["call_seq"] == finished.body["started_seq"]
    assert manifest["files"][0]["digest"] == finished.body["report_digest"]
    assert [line["call_id"] for line in lines] == [call["call_id"] for call in made]
    assert lines == outcome["calls"]


def test_the_ledger_proves_it_issued_the_report_packet(
    client: TestClient, world: Settings, tmp_path: Path
) -> None:
    _call(client, "items.first_ten")
    _, outcome = _replay(world)
    signer = SignerKey.generate(world.origin)
    key_file, proof = tmp_path / "ledger.key", tmp_path / "report.tlog-proof"
    key_file.write_text(signer.text())
    env = world_env(world)
    args = ["--packet", outcome["packet_id"], "--key-file", str(key_file), "--out", str(proof)]
    proved = CliRunner().invoke(cli, ["ledger", "prove", *args], env=env)
    assert proved.exit_code == 0, proved.output
    verified = CliRunner().invoke(
        cli,
        [
            "packet",
            "verify",
            outcome["packet_path"],
            "--proof",
            str(proof),
            "--key",
            signer.verifier_key.text(),
        ],
    )
    assert verified.exit_code == 0, verified.output
    assert re.search(r"^OK +ledger_inclusion", verified.stdout, re.MULTILINE), verified.stdout


def test_policy_decides_each_replay_and_who_may_replay_at_all(
    client: TestClient, world: Settings
) -> None:
    acme = _call(client, "items.by_tenant", tenant="acme")
    # bob (auditor, tenant globex) may replay, but not a call of another tenant's rows.
    code, outcome = _replay(world)
    assert code == 1
    (line,) = outcome["calls"]
    assert line["call_id"] == acme["call_id"]
    assert line["outcome"] == "blocked"
    assert "forbid-cross-tenant" in line["reason"]
    # alice (analyst) may not replay: refused before anything is ledgered.
    env = {**world_env(world), "GOVEX_API_KEY": "tok-alice"}
    refused = CliRunner().invoke(cli, ["ledger", "replay"], env=env)
    assert refused.exit_code == 4, refused.output
    assert "read_ledger" in refused.output
    assert len(_entries(world, "replay.started")) == 1


MASKED_TOML = """
[[query]]
id = "items.masked"
title = "Items, names masked"
source = "items"
sql = "queries/all.sql"
sensitive_columns = ["name"]
"""


def test_a_masked_call_replays_with_its_recorded_masking_and_key(
    tmp_path: Path, ledger_url: str
) -> None:
    world = make_world(tmp_path, ledger_url=ledger_url, extra_toml=MASKED_TOML, rows=50)
    key_file = tmp_path / "masking.key"
    key_file.write_text(MaskingKey.generate().text() + "\n")
    world = world.model_copy(update={"masking_key_file": key_file})
    with TestClient(create_app(world), raise_server_exceptions=False) as client:
        masked = _call(client, "items.masked")  # alice, an analyst: names masked
        unmasked = _call(client, "items.masked", who="carol")  # an operator: the values
    assert masked["contract"]["masking"]["unmasked"] is False
    assert unmasked["contract"]["masking"]["unmasked"] is True
    code, outcome = _replay(world)  # bob, an auditor: may not unmask, replays both as recorded
    assert code == 0
    assert {line["outcome"] for line in outcome["calls"]} == {"ran_clean"}
    key_file.write_text(MaskingKey.generate().text() + "\n")  # the masking key was replaced
    code, outcome = _replay(world)
    assert code == 1
    lines = _by_call(outcome)
    assert lines[masked["call_id"]]["outcome"] == "blocked"
    assert "masking key changed" in lines[masked["call_id"]]["reason"]
    assert lines[unmasked["call_id"]]["outcome"] == "ran_clean"


def test_a_command_replays_and_its_stdout_drift_is_located_by_bytes(
    tmp_path: Path, ledger_url: str
) -> None:
    data = tmp_path / "report.txt"
    data.write_text("".join(f"line {i}\n" for i in range(10)))
    script = tmp_path / "bin" / "show"
    script.parent.mkdir()
    script.write_text(
        f"#!{sys.executable} -I\nimport sys\nsys.stdout.write(open({str(data)!r}).read())\n"
    )
    script.chmod(0o755)
    extra = (
        f'\n[[command]]\nid = "cmd.show"\ntitle = "Print a file"\nargv = ["{script}"]\n'
        "mutating = false\n"
    )
    world = make_world(tmp_path, ledger_url=ledger_url, extra_toml=extra, rows=5)
    with TestClient(create_app(world), raise_server_exceptions=False) as client:
        call = _call(client, "cmd.show")
    code, outcome = _replay(world)
    assert code == 0, outcome
    data.write_text("".join(f"line {i}\n" for i in range(11)))
    code, outcome = _replay(world)
    assert code == 1
    (line,) = outcome["calls"]
    assert line["call_id"] == call["call_id"]
    assert (line["outcome"], line["drift"]) == ("ran_with_drift", "data")
    assert line["recorded_engine_version"] is None  # a command has no engine version
    assert (line["diff_chunk"], line["diff_offset"]) == (0, 0)
    assert line["diff_first_row"] is None  # stdout is not a table: bytes only
