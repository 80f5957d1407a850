"""The govex CLI: exit codes of FORMATS section 6 and problems named exactly."""

from __future__ import annotations

import io
import json
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ledger.store import LedgerStore
from service.cli import app
from service.settings import Settings
from tests.e2e.servers import world_env


def _env(world: Settings, **extra: str) -> dict[str, str]:
    token = "tok-alice"  # the e2e keys file issues tok-<name> (conftest)
    return {
        **world_env(world),
        "GOVEX_API_KEY": token,
        **extra,
    }


def _run(args: list[str], env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, args, env=env)
    return result.exit_code, result.stdout, result.stderr


def _call(world: Settings, *args: str) -> tuple[int, dict[str, object], str]:
    code, out, err = _run(["call", *args], _env(world))
    return code, (json.loads(out) if out.strip() else {}), err


def test_call_runs_and_the_packet_verifies(world: Settings) -> None:
    code, result, err = _call(world, "items.by_tenant", "--param", "min_amount=990")
    assert code == 0, err
    assert result["verdict"] == "ran_clean"
    manifest_hash = result["manifest_hash"]
    assert isinstance(manifest_hash, dict)
    packet = world.packet_root / f"{result['packet_id']}.zip"
    assert f"packet: {packet}" in err
    code, out, _ = _run(
        [
            "packet",
            "verify",
            str(packet),
            "--expect-manifest-hash",
            f"sha256:{manifest_hash['sha256']}",
        ]
    )
    assert code == 0, out
    assert "checks passed" in out
    code, out, _ = _run(["packet", "verify", str(packet), "--json"])
    assert code == 0
    assert json.loads(out)["ok"] is True


@pytest.mark.parametrize(
    ("args", "exit_code", "needle"),
    [
        pytest.param(["items.slow"], 3, "timed_out", id="timed-out"),
        pytest.param(
            ["items.by_tenant", "-p", "min_amount=-1"], 4, "min_amount", id="bad-parameter"
        ),
        pytest.param(
            ["items.by_tenant", "-p", "tenant=globex"], 4, "policy_denied", id="policy-denied"
        ),
        pytest.param(["items.nope"], 4, "unknown_entry", id="unknown-entry"),
        pytest.param(["items.all", "-p", "novalue"], 2, "name=value", id="usage"),
        pytest.param(
            ["items.by_tenant", "-p", "min_amount=1", "--param", "min_amount=990"],
            2,
            "'min_amount' is given twice",
            id="repeated-parameter",
        ),
    ],
)
def test_call_exit_codes_follow_the_verdicts(
    world: Settings, args: list[str], exit_code: int, needle: str
) -> None:
    code, out, err = _run(["call", *args], _env(world))
    assert code == exit_code
    assert needle in out + err
    assert "Traceback" not in out + err


def test_a_dry_run_prints_each_check_and_exits_blocked_when_a_run_would_not_pass(
    world: Settings,
) -> None:
    code, out, err = _run(["call", "items.all", "--dry-run"], _env(world))
    assert code == 0, err
    assert json.loads(out)["dry_run"]["would_run"] is True
    assert "OK   policy" in err
    assert "dry run: a run would pass" in err
    code, out, err = _run(["call", "items.all", "--dry-run"], _env(world, GOVEX_API_KEY="tok-bob"))
    assert code == 4, err  # bob (auditor) may dry-run but not run
    assert json.loads(out)["verdict"] is None
    assert "FAIL policy     policy denies call of items.all for bob" in err
    assert "dry run: a run would not pass" in err


def test_call_without_a_key_is_blocked(world: Settings) -> None:
    code, _, err = _run(["call", "items.all"], {**_env(world), "GOVEX_API_KEY": ""})
    assert code == 4
    assert "unauthenticated" in err
    with LedgerStore.open(world.ledger_url) as store:
        last = store.get(store.size() - 1)
    assert last.kind == "auth.refused"
    assert (last.body["via"], last.body["client"], last.body["where"]) == (
        "cli",
        None,
        "authorization",
    )


def _rewrite_zip(source: Path, target: Path, change: dict[str, bytes | None]) -> None:
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            data = change.get(info.filename, old.read(info.filename))
            if data is not None:
                new.writestr(info, data)


def test_packet_verify_names_the_tampered_file(world: Settings, tmp_path: Path) -> None:
    _, result, _ = _call(world, "items.all")
    packet = world.packet_root / f"{result['packet_id']}.zip"
    name = f"{result['packet_id']}/data/result.jsonl"
    with zipfile.ZipFile(packet) as archive:
        data = bytearray(archive.read(name))
    data[10] ^= 0x01
    tampered = tmp_path / "tampered.zip"
    _rewrite_zip(packet, tampered, {name: bytes(data)})
    code, out, _ = _run(["packet", "verify", str(tampered)])
    assert code == 1
    assert "FAIL" in out
    assert "data/result.jsonl" in out
    assert "bagit_manifest" in out


def test_packet_verify_usage_errors_exit_2(tmp_path: Path) -> None:
    code, _, err = _run(["packet", "verify", str(tmp_path / "absent.zip")])
    assert code == 2
    assert "does not exist" in err


def test_ledger_verify_export_and_a_row_edited_behind_the_triggers(
    world: Settings, tmp_path: Path
) -> None:
    _call(world, "items.all")
    env = _env(world)
    code, out, _ = _run(["ledger", "verify"], env)
    assert code == 0, out
    assert "chain intact" in out
    export = tmp_path / "ledger.jsonl"
    assert _run(["ledger", "export", "--out", str(export)], env)[0] == 0
    code, out, _ = _run(["ledger", "verify", "--export", str(export)])
    assert code == 0
    lines = export.read_bytes().splitlines()
    assert len(lines) == 4  # service.started, call.started, call.finished, packet.issued

    db = world.ledger_url.removeprefix("sqlite:///")
    conn = sqlite3.connect(db)
    triggers = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'").fetchall()
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE ledger_entries SET kind = kind WHERE seq = 2")
    for name, _ in triggers:
        conn.execute(f'DROP TRIGGER "{name}"')
    (stored,) = conn.execute("SELECT leaf_input FROM ledger_entries WHERE seq = 2").fetchone()
    edited = bytes(stored).replace(b'"rows":', b'"rows":9', 1)
    assert edited != bytes(stored)
    conn.execute("UPDATE ledger_entries SET leaf_input = ? WHERE seq = 2", (edited,))
    for _, sql in triggers:
        conn.execute(sql)
    conn.commit()
    conn.close()
    code, _, err = _run(["ledger", "verify"], env)
    assert code == 1
    assert "seq 2" in err


def test_ledger_verify_refuses_a_missing_database_instead_of_creating_one(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'typo.sqlite'}"
    code, _, err = _run(["ledger", "verify", "--ledger-url", url])
    assert code == 2
    assert "no ledger database" in err
    assert not (tmp_path / "typo.sqlite").exists()


def test_catalog_commands_check_seal_and_name_changed_entries(world: Settings) -> None:
    directory = str(world.catalog_dir)
    assert _run(["catalog", "check", directory])[0] == 0
    assert _run(["catalog", "verify", directory])[0] == 0
    sql = world.catalog_dir / "queries" / "missing.sql"
    sql.write_text(sql.read_text() + "-- edited\n")
    code, _, err = _run(["catalog", "verify", directory])
    assert code == 1
    assert "items.missing" in err
    assert _run(["catalog", "seal", directory])[0] == 0
    assert _run(["catalog", "verify", directory])[0] == 0
    code, out, _ = _run(["catalog", "resolve", directory, "--canonical"])
    assert code == 0
    assert json.loads(out)["format"] == "govex.catalog/v1"


@pytest.mark.parametrize(
    ("sql", "rule"),
    [
        pytest.param(
            "SELECT 1 AS x ORDER BY 1;\nSELECT 2 AS y ORDER BY 1",
            "single_statement",
            id="two-statements",
        ),
        pytest.param("DELETE FROM items", "statement_kind", id="delete"),
        pytest.param("UPDATE items SET amount = 0", "statement_kind", id="update"),
        pytest.param(
            "SELECT id\nFROM items\nORDER BY id\nFOR UPDATE", "locking_clause", id="for-update"
        ),
        pytest.param(
            "SELECT load_extension('x') AS y ORDER BY 1",
            "side_effect_function",
            id="load-extension",
        ),
        pytest.param("PRAGMA user_version", "statement_kind", id="pragma"),
        pytest.param("ATTACH DATABASE 'x' AS y", "statement_kind", id="attach"),
        pytest.param("SELECT id FROM items", "order_not_determined", id="no-order"),
        pytest.param(
            "SELECT id FROM items WHERE id = ? ORDER BY id", "positional_parameter", id="positional"
        ),
        pytest.param(
            "SELECT id FROM items WHERE id = :ghost ORDER BY id",
            "undeclared_parameter",
            id="undeclared",
        ),
    ],
)
def test_catalog_check_names_the_rule_file_and_entry(world: Settings, sql: str, rule: str) -> None:
    (world.catalog_dir / "queries" / "all.sql").write_text(sql + "\n")
    code, _, err = _run(["catalog", "check", str(world.catalog_dir)])
    assert code == 1
    assert f"rule {rule}" in err
    assert "queries/all.sql:" in err
    assert "items.all" in err


def test_offline_verifiers_import_neither_fastapi_nor_sqlalchemy() -> None:
    probe = (
        "import sys, service.packets.verify, service.packets.readers, ledger.verify, ledger.merkle;"
        "heavy = ('fastapi', 'sqlalchemy', 'uvicorn', 'psycopg');"
        "bad = sorted(m for m in heavy if m in sys.modules);"
        "print(','.join(bad))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == ""


def test_help_lists_every_command() -> None:
    code, out, _ = _run(["--help"])
    assert code == 0
    for command in ("call", "catalog", "ledger", "packet", "serve", "schemas"):
        assert command in out


def test_csv_from_the_cli(world: Settings) -> None:
    code, result, _ = _call(world, "items.first_ten", "--format", "csv")
    assert code == 0
    with zipfile.ZipFile(world.packet_root / f"{result['packet_id']}.zip") as archive:
        text = archive.read(f"{result['packet_id']}/data/result.csv").decode()
    assert len(list(io.StringIO(text))) == 11


def test_call_keeps_log_lines_off_stdout(world: Settings) -> None:
    # A zip a dead builder left half-written: start-up recovery quarantines it and warns.
    staging = world.packet_root / ".staging"
    staging.mkdir(parents=True)
    (staging / "01JDEADBUILDERAAAAAAAAAAAAA.zip").write_bytes(b"PK\x03\x04 cut short")
    result = subprocess.run(
        [str(Path(sys.executable).parent / "govex"), "call", "items.first_ten"],
        env=_env(world),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["verdict"] == "ran_clean"  # the answer, and only it
    assert "packets.recovered" in result.stderr
