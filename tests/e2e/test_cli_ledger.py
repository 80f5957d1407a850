"""The auditor's CLI: keys, db, ledger checkpoint / verify / prove / consistency, packet proofs.

Every command runs end to end through typer on a real world (tests/e2e/conftest.py): a
sealed catalog, a SQLite ledger with real calls in it, and keys made by `govex keys generate`.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from ledger.checkpoint import open_checkpoint
from ledger.entry import Entry, Kind, entry_from_leaf_input, leaf_hash, leaf_input
from ledger.keys import decode_base64, parse_signer_key, parse_verifier_key
from ledger.merkle import verify_consistency
from ledger.tlog_proof import parse_tlog_proof, verify_tlog_proof
from service.cli import app
from service.masking import MaskingKey
from tests.e2e.servers import world_env
from tests.pg_harness import SERVICE_PASSWORD

if TYPE_CHECKING:
    from ledger.keys import VerifierKey
    from service.settings import Settings
    from tests.pg_harness import PostgresServer

REPO = Path(__file__).resolve().parents[2]
ENTRIES_PER_CALL = 4  # service.started, call.started, call.finished, packet.issued


def _run(args: list[str], env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, args, env=env)
    return result.exit_code, result.stdout, result.stderr


def _env(world: Settings, **extra: str) -> dict[str, str]:
    return {
        **world_env(world),
        "GOVEX_API_KEY": "tok-alice",  # conftest issues tok-<name>
        **extra,
    }


class Keys:
    """A ledger key pair made by `govex keys generate`: the signer file and the verifier file."""

    def __init__(self, directory: Path, name: str, stem: str = "ledger.key") -> None:
        self.signer = directory / stem
        self.verifier_file = directory / f"{stem}.pub"
        code, out, err = _run(["keys", "generate", name, "--out", str(self.signer)])
        assert code == 0, err
        self.text = out.strip()

    @property
    def verifier(self) -> VerifierKey:
        return parse_verifier_key(self.text)


@pytest.fixture
def keys(world: Settings, tmp_path: Path) -> Keys:
    return Keys(tmp_path, world.origin)


def _call(world: Settings) -> dict[str, Any]:
    code, out, err = _run(["call", "items.all"], _env(world))
    assert code == 0, err
    result: dict[str, Any] = json.loads(out)
    return result


def _checkpoint(world: Settings, keys: Keys, path: Path) -> Path:
    """`govex ledger checkpoint`, its note saved to ``path`` as an auditor would."""
    code, out, err = _run(["ledger", "checkpoint", "--key-file", str(keys.signer)], _env(world))
    assert code == 0, err
    path.write_text(out)
    return path


def _db(world: Settings) -> sqlite3.Connection:
    return sqlite3.connect(world.ledger_url.removeprefix("sqlite:///"))


def _behind_the_triggers(world: Settings, *statements: str) -> None:
    """Run SQL as the database owner with the append-only triggers dropped, then restored."""
    conn = _db(world)
    triggers = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'").fetchall()
    for name, _ in triggers:
        conn.execute(f'DROP TRIGGER "{name}"')
    for statement in statements:
        conn.execute(statement)
    for _, sql in triggers:
        conn.execute(sql)
    conn.commit()
    conn.close()


def _relinked(lines: list[bytes], start: int, **body: Any) -> list[bytes]:
    """Export lines with entry ``start``'s body changed and every later prev recomputed."""
    out = lines[:start]
    prev = leaf_hash(out[-1][:-1]).hex()
    for offset, line in enumerate(lines[start:]):
        obj = json.loads(line)
        if offset == 0:
            obj["body"].update(body)
        obj["prev"] = prev
        data = leaf_input(Entry.model_validate(obj))
        prev = leaf_hash(data).hex()
        out.append(data + b"\n")
    return out


# -- keys and db --------------------------------------------------------------------------------


def test_keys_generate_writes_a_private_signer_file_and_prints_its_verifier_key(
    tmp_path: Path,
) -> None:
    keys = Keys(tmp_path, "govex.test/ledger/keys")
    assert stat.S_IMODE(keys.signer.stat().st_mode) == 0o600
    signer = parse_signer_key(keys.signer.read_text().strip())
    assert signer.name == "govex.test/ledger/keys"
    assert signer.verifier_key.text() == keys.text
    assert keys.verifier_file.read_text() == keys.text + "\n"
    before = keys.signer.read_bytes()
    code, _, err = _run(["keys", "generate", "govex.test/ledger/keys", "--out", str(keys.signer)])
    assert code == 2
    assert "refusing to overwrite" in err
    assert keys.signer.read_bytes() == before


def test_keys_generate_without_a_file_prints_both_keys_and_refuses_bad_names() -> None:
    code, out, _ = _run(["keys", "generate", "govex.test/ledger/x"])
    assert code == 0
    secret, public = out.splitlines()
    assert parse_signer_key(secret).verifier_key == parse_verifier_key(public)
    code, _, err = _run(["keys", "generate", "has space"])
    assert code == 2
    assert "key name" in err


def test_db_upgrade_migrates_both_schemas_once_and_grants_name_every_table(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.sqlite'}"
    code, out, err = _run(["db", "upgrade", "--ledger-url", url])
    assert code == 0, err
    assert "ledger schema: (none) -> " in out
    assert "service schema: (none) -> " in out
    code, out, _ = _run(["db", "upgrade", "--ledger-url", url])
    assert out.splitlines() == ["ledger schema: already at head", "service schema: already at head"]
    code, out, _ = _run(["ledger", "verify", "--ledger-url", url])
    assert code == 0
    assert "ledger unanchored: 0 entries" in out
    code, out, _ = _run(["db", "grants", "--role", "govex_service"])
    assert code == 0
    grants = out.splitlines()
    assert "GRANT SELECT, INSERT ON ledger_entries TO govex_service;" in grants
    assert "GRANT SELECT, INSERT ON ledger_checkpoints TO govex_service;" in grants
    assert "GRANT SELECT, INSERT, UPDATE ON govex_calls TO govex_service;" in grants
    assert "GRANT SELECT, INSERT, UPDATE, DELETE ON govex_leases TO govex_service;" in grants
    # approvals are inserted and read, never changed: the ledger entry is the evidence
    assert "GRANT SELECT, INSERT ON govex_approvals TO govex_service;" in grants
    # DELETE only on leases (operational state, released by deleting), TRUNCATE nowhere
    assert [g for g in grants if "DELETE" in g or "TRUNCATE" in g] == [
        "GRANT SELECT, INSERT, UPDATE, DELETE ON govex_leases TO govex_service;"
    ]
    assert _run(["db", "grants", "--role", "x; DROP TABLE y"])[0] == 2


def test_db_upgrade_and_grants_on_postgresql_leave_the_service_role_append_only(
    postgres: PostgresServer, pg_url: str
) -> None:
    code, _, err = _run(["db", "upgrade", "--ledger-url", pg_url])
    assert code == 0, err
    database = sa.make_url(pg_url).database or ""
    for statement in _run(["db", "grants", "--role", "govex_service"])[1].splitlines():
        postgres.execute(statement, database)
    engine = sa.create_engine(postgres.url(database, "govex_service", SERVICE_PASSWORD))
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("SELECT count(*) FROM ledger_entries")).scalar_one()
            conn.execute(sa.text("SELECT count(*) FROM govex_calls")).scalar_one()
            conn.execute(sa.text("DELETE FROM govex_leases WHERE scope = 'none'"))
        with pytest.raises(sa.exc.ProgrammingError, match="permission denied"), engine.begin() as c:
            c.execute(sa.text("UPDATE ledger_entries SET kind = kind"))
        with pytest.raises(sa.exc.ProgrammingError, match="permission denied"), engine.begin() as c:
            c.execute(sa.text("DELETE FROM ledger_checkpoints"))
    finally:
        engine.dispose()


# -- checkpoint and verify ----------------------------------------------------------------------


def test_without_a_checkpoint_the_ledger_is_unanchored_never_plain_ok(world: Settings) -> None:
    _call(world)
    code, out, _ = _run(["ledger", "verify"], _env(world))
    assert code == 0
    assert f"ledger unanchored: {ENTRIES_PER_CALL} entries, chain intact" in out
    assert "cannot be detected" in out
    code, _, err = _run(["ledger", "verify", "--require-anchor"], _env(world))
    assert code == 1
    assert "unanchored" in err


def test_a_signed_checkpoint_anchors_the_ledger_and_later_entries_are_the_unanchored_tail(
    world: Settings, keys: Keys, tmp_path: Path
) -> None:
    _call(world)
    checkpoint = _checkpoint(world, keys, tmp_path / "cp4")
    opened = open_checkpoint(checkpoint.read_bytes(), keys.verifier)
    assert (opened.origin, opened.size) == (world.origin, ENTRIES_PER_CALL)
    _call(world)
    for key in (keys.text, str(keys.verifier_file)):
        args = ["ledger", "verify", "--checkpoint", str(checkpoint), "--key", key]
        code, out, err = _run([*args, "--require-anchor"], _env(world))
        assert code == 0, err
        assert "ledger anchored: 8 entries, chain intact, tree size 4 matches" in out
        assert "unanchored tail: 4 entries, seq 4..7" in out
    export = tmp_path / "ledger.jsonl"
    assert _run(["ledger", "export", "--out", str(export)], _env(world))[0] == 0
    trusted = ["--checkpoint", str(checkpoint), "--key", keys.text]
    code, out, _ = _run(["ledger", "verify", "--export", str(export), *trusted])
    assert code == 0
    assert "ledger anchored" in out


def test_ledger_checkpoint_prints_the_latest_note_when_the_ledger_has_not_grown(
    world: Settings, keys: Keys, tmp_path: Path
) -> None:
    _call(world)
    first = _checkpoint(world, keys, tmp_path / "a").read_text()
    assert _checkpoint(world, keys, tmp_path / "b").read_text() == first


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        pytest.param([], "no signer key", id="no-key"),
        pytest.param(["--key-file", "KEYS/ledger.key.pub"], "PRIVATE+KEY+", id="verifier-key"),
        pytest.param(["--key-file", "KEYS/absent"], "io_error", id="absent-file"),
    ],
)
def test_ledger_checkpoint_without_a_signer_key_is_a_usage_error(
    world: Settings, keys: Keys, args: list[str], needle: str
) -> None:
    _call(world)
    args = [a.replace("KEYS", str(keys.signer.parent)) for a in args]
    code, _, err = _run(["ledger", "checkpoint", *args], _env(world))
    assert code == 2
    assert needle in err


def test_a_store_truncated_with_its_checkpoints_is_unanchored_until_the_auditors_checkpoint(
    world: Settings, keys: Keys, tmp_path: Path
) -> None:
    _call(world)
    _call(world)
    checkpoint = _checkpoint(world, keys, tmp_path / "cp8")
    _behind_the_triggers(
        world, "DELETE FROM ledger_entries WHERE seq >= 6", "DELETE FROM ledger_checkpoints"
    )
    code, out, _ = _run(["ledger", "verify"], _env(world))
    assert (code, "ledger unanchored: 6 entries" in out) == (0, True)
    code, _, err = _run(
        ["ledger", "verify", "--checkpoint", str(checkpoint), "--key", keys.text], _env(world)
    )
    assert code == 1
    assert "seq 6 is the first missing" in err
    assert "check=truncated" in err


def test_a_recomputed_export_is_a_fork_between_the_matching_and_mismatching_checkpoints(
    world: Settings, keys: Keys, tmp_path: Path
) -> None:
    _call(world)
    cp4 = _checkpoint(world, keys, tmp_path / "cp4")
    _call(world)
    cp8 = _checkpoint(world, keys, tmp_path / "cp8")
    export = tmp_path / "ledger.jsonl"
    _run(["ledger", "export", "--out", str(export)], _env(world))
    forged = tmp_path / "forged.jsonl"
    forged.write_bytes(
        b"".join(_relinked(export.read_bytes().splitlines(keepends=True), 5, forged=True))
    )
    trusted = ["--checkpoint", str(cp4), "--checkpoint", str(cp8), "--key", keys.text]
    code, out, _ = _run(["ledger", "verify", "--export", str(forged)])
    assert (code, "ledger unanchored: 8 entries, chain intact" in out) == (0, True)
    code, _, err = _run(["ledger", "verify", "--export", str(forged), *trusted])
    assert code == 1
    assert "seq 4..7" in err
    assert "check=fork" in err
    truncated = tmp_path / "truncated.jsonl"
    truncated.write_bytes(b"".join(export.read_bytes().splitlines(keepends=True)[:7]))
    code, _, err = _run(["ledger", "verify", "--export", str(truncated), *trusted])
    assert code == 1
    assert "seq 7 is the first missing" in err


def _noncanonical(lines: list[bytes], start: int) -> list[bytes]:
    """Export lines with entry ``start``'s body re-spaced (not JCS), later prevs relinked."""
    out = lines[:start]
    prev = leaf_hash(out[-1][:-1]).hex()
    for offset, line in enumerate(lines[start:]):
        data = line[:-1]
        if offset == 0:
            data = data.replace(b'{"body":{', b'{"body":{ ', 1)
        obj = json.loads(data)
        if offset:
            obj["prev"] = prev
            data = leaf_input(Entry.model_validate(obj))
        prev = leaf_hash(data).hex()
        out.append(data + b"\n")
    return out


def test_full_adds_canonical_form_and_schema_to_what_the_default_checks(
    world: Settings, tmp_path: Path
) -> None:
    _call(world)
    export = tmp_path / "ledger.jsonl"
    _run(["ledger", "export", "--out", str(export)], _env(world))
    spaced = tmp_path / "spaced.jsonl"
    spaced.write_bytes(b"".join(_noncanonical(export.read_bytes().splitlines(keepends=True), 2)))
    code, out, _ = _run(["ledger", "verify", "--export", str(spaced)])
    assert code == 0
    assert "checked per entry: JSON, seq, prev, tree (FORMATS section 3)" in out
    code, _, err = _run(["ledger", "verify", "--export", str(spaced), "--full"])
    assert code == 1
    assert "seq 2" in err
    assert "check=canonical" in err
    code, out, _ = _run(["ledger", "verify", "--export", str(export), "--full"])
    assert code == 0
    assert "checked per entry: JSON, canonical form, schema, seq, prev, tree" in out


def test_full_and_jobs_are_for_exports_and_exclude_each_other(world: Settings) -> None:
    code, _, err = _run(["ledger", "verify", "--full"], _env(world))
    assert (code, "--full and --jobs apply to an export" in err) == (2, True)
    code, _, err = _run(["ledger", "verify", "--jobs", "2"], _env(world))
    assert (code, "--full and --jobs apply to an export" in err) == (2, True)
    code, _, err = _run(["ledger", "verify", "--export", "x.jsonl", "--full", "--jobs", "2"])
    assert (code, "--full verifies in one process" in err) == (2, True)
    code, _, err = _run(["ledger", "verify", "--export", "x.jsonl", "--jobs", "0"])
    assert code == 2


def test_a_checkpoint_file_that_does_not_verify_with_the_key_is_refused_by_name(
    world: Settings, keys: Keys, tmp_path: Path
) -> None:
    _call(world)
    checkpoint = _checkpoint(world, keys, tmp_path / "cp")
    stranger = Keys(tmp_path, world.origin, stem="stranger.key")
    args = ["ledger", "verify", "--checkpoint", str(checkpoint)]
    code, _, err = _run([*args, "--key", stranger.text], _env(world))
    assert code == 1
    assert f"checkpoint {checkpoint}" in err
    assert "no signature by a trusted key" in err
    code, _, err = _run([*args], _env(world))
    assert (code, "--checkpoint needs --key" in err) == (2, True)
    code, _, err = _run([*args, "--key", "not-a-key"], _env(world))
    assert (code, "no such file" in err) == (2, True)


# -- consistency --------------------------------------------------------------------------------


def test_consistency_between_two_checkpoints_writes_a_proof_that_verifies(
    world: Settings, keys: Keys, tmp_path: Path
) -> None:
    _call(world)
    cp4 = _checkpoint(world, keys, tmp_path / "cp4")
    _call(world)
    _call(world)
    cp12 = _checkpoint(world, keys, tmp_path / "cp12")
    out_file = tmp_path / "proof.txt"
    code, out, err = _run(
        ["ledger", "consistency", str(cp4), str(cp12), "--key", keys.text, "--out", str(out_file)],
        _env(world),
    )
    assert code == 0, err
    assert "consistent: the tree of size 12" in out
    proof = [decode_base64(line) or b"" for line in out_file.read_text().splitlines()]
    old, new = (open_checkpoint(p.read_bytes(), keys.verifier) for p in (cp4, cp12))
    verify_consistency(4, 12, old.root, new.root, proof)
    code, _, err = _run(
        ["ledger", "consistency", str(cp12), str(cp4), "--key", keys.text], _env(world)
    )
    assert code == 1
    assert "rolled back" in err


def test_consistency_names_a_fork_the_log_signed(
    world: Settings, keys: Keys, tmp_path: Path
) -> None:
    _call(world)
    cp4 = _checkpoint(world, keys, tmp_path / "cp4")
    _call(world)
    export = tmp_path / "ledger.jsonl"
    _run(["ledger", "export", "--out", str(export)], _env(world))
    forked = tmp_path / "forked.jsonl"
    forked.write_bytes(
        b"".join(_relinked(export.read_bytes().splitlines(keepends=True), 2, forged=True))
    )
    # The log's key signs the forked tree: a checkpoint that does not extend cp4.
    signer = parse_signer_key(keys.signer.read_text().strip())
    from ledger.anchor import verify_anchored  # noqa: PLC0415
    from ledger.checkpoint import Checkpoint, sign_checkpoint  # noqa: PLC0415

    with forked.open("rb") as lines:
        head = verify_anchored(line[:-1] for line in lines)
    fork = tmp_path / "fork"
    fork.write_text(sign_checkpoint(Checkpoint(world.origin, head.size, head.root), signer))
    args = ["ledger", "consistency", str(cp4), str(fork), "--key", keys.text]
    code, _, err = _run(args, _env(world))  # the store's entries: cp4's tree
    assert code == 1
    assert "seq 4..7" in err
    code, _, err = _run([*args, "--export", str(forked)])  # the fork's entries
    assert code == 1
    assert "seq 0..3" in err


# -- prove and packet verify --------------------------------------------------------------------


def test_prove_seq_against_the_latest_or_a_given_checkpoint(
    world: Settings, keys: Keys, tmp_path: Path
) -> None:
    _call(world)
    _checkpoint(world, keys, tmp_path / "cp4")
    _call(world)
    code, _, err = _run(["ledger", "prove", "6"], _env(world))
    assert code == 2
    assert "not in the latest checkpoint (tree size 4)" in err
    code, out, err = _run(["ledger", "prove", "6", "--key-file", str(keys.signer)], _env(world))
    assert code == 0, err
    proof = parse_tlog_proof(out)
    assert verify_tlog_proof(proof, keys.verifier).size == 8
    assert entry_from_leaf_input(proof.extra or b"").seq == 6
    code, out, _ = _run(["ledger", "prove", "1", "--size", "4"], _env(world))
    assert code == 0
    assert verify_tlog_proof(parse_tlog_proof(out), keys.verifier).size == 4
    assert _run(["ledger", "prove", "5", "--size", "4"], _env(world))[0] == 2
    assert _run(["ledger", "prove", "1", "--size", "3"], _env(world))[0] == 2
    assert _run(["ledger", "prove", "99"], _env(world))[0] == 2
    assert _run(["ledger", "prove"], _env(world))[0] == 2


def _prove_packet(world: Settings, keys: Keys, packet_id: str, out: Path) -> Path:
    args = ["ledger", "prove", "--packet", packet_id, "--out", str(out)]
    code, _, err = _run([*args, "--key-file", str(keys.signer)], _env(world))
    assert code == 0, err
    return out


def test_packet_verify_runs_ledger_inclusion_with_a_proof_from_ledger_prove(
    world: Settings, keys: Keys, tmp_path: Path
) -> None:
    result = _call(world)
    packet = world.packet_root / f"{result['packet_id']}.zip"
    proof = _prove_packet(world, keys, result["packet_id"], tmp_path / "p.tlog-proof")
    issued = entry_from_leaf_input(parse_tlog_proof(proof.read_text()).extra or b"")
    assert issued.kind is Kind.packet_issued
    assert issued.body["packet_id"] == result["packet_id"]
    checkpoint = _checkpoint(world, keys, tmp_path / "cp")
    args = ["packet", "verify", str(packet), "--proof", str(proof), "--key", keys.text]
    code, out, err = _run([*args, "--checkpoint", str(checkpoint)])
    assert code == 0, out + err
    assert "OK    ledger_inclusion" in out
    assert "6/6 checks passed, 2 skipped" in out  # no pinned hash, no trusted catalogs

    _call(world)  # the auditor's checkpoint moves on; the proof is against the old tree
    newer = _checkpoint(world, keys, tmp_path / "cp8")
    code, out, _ = _run([*args, "--checkpoint", str(newer)])
    assert code == 1
    assert "fetch a proof against it" in out
    assert "ledger_inclusion failed at checkpoint file" in out


def test_packet_proof_is_found_by_scanning_when_the_call_index_is_gone(
    world: Settings, keys: Keys, tmp_path: Path
) -> None:
    result = _call(world)
    _call(world)
    indexed = _prove_packet(world, keys, result["packet_id"], tmp_path / "a").read_text()
    conn = _db(world)
    conn.execute("DROP TABLE govex_calls")
    conn.commit()
    conn.close()
    scanned = _prove_packet(world, keys, result["packet_id"], tmp_path / "b").read_text()
    assert scanned == indexed
    code, _, err = _run(["ledger", "prove", "--packet", "01JNOSUCHPACKETAAAAAAAAAAA"], _env(world))
    assert (code, "no packet.issued entry" in err) == (2, True)


def _flip_first_hash(text: str) -> str:
    lines = text.split("\n")
    index = next(i for i, line in enumerate(lines) if line.startswith("index "))
    raw = bytearray(decode_base64(lines[index + 1]) or b"")
    raw[0] ^= 1
    from ledger.keys import encode_base64  # noqa: PLC0415

    lines[index + 1] = encode_base64(bytes(raw))
    return "\n".join(lines)


@pytest.mark.parametrize(
    ("tamper", "where"),
    [
        pytest.param("hash", "proof index 7", id="proof-hash"),
        pytest.param("key", "proof checkpoint signatures", id="other-key"),
        pytest.param("other-packet", "proof extra#/body/packet_id", id="other-packet"),
        pytest.param("other-entry", "proof extra#/kind", id="other-entry"),
    ],
)
def test_packet_verify_refuses_a_tampered_proof_or_key_at_its_place(
    world: Settings, keys: Keys, tmp_path: Path, tamper: str, where: str
) -> None:
    first = _call(world)
    second = _call(world)
    packet = world.packet_root / f"{second['packet_id']}.zip"
    proof = _prove_packet(world, keys, second["packet_id"], tmp_path / "p")
    key = keys.text
    if tamper == "hash":
        proof.write_text(_flip_first_hash(proof.read_text()))
    elif tamper == "key":
        key = Keys(tmp_path, world.origin, stem="stranger.key").text
    elif tamper == "other-packet":
        _prove_packet(world, keys, first["packet_id"], proof.with_name("q"))
        proof = proof.with_name("q")
    else:
        args = ["ledger", "prove", "5", "--out", str(proof)]  # call.started of the second call
        assert _run(args, _env(world))[0] == 0
    code, out, _ = _run(["packet", "verify", str(packet), "--proof", str(proof), "--key", key])
    assert code == 1
    assert f"ledger_inclusion failed at {where}" in out


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        pytest.param(["--proof", "P"], "--proof needs --key", id="proof-without-key"),
        pytest.param(["--key", "K"], "give the proof file", id="key-without-proof"),
        pytest.param(["--checkpoint", "P"], "give the proof file", id="checkpoint-only"),
        pytest.param(["--proof", "P", "--key", "a+b+c"], "key_invalid", id="bad-key"),
        pytest.param(["--proof", "ABSENT", "--key", "K"], "io_error", id="absent-proof"),
    ],
)
def test_packet_verify_proof_usage_errors_exit_2(
    world: Settings, keys: Keys, tmp_path: Path, args: list[str], needle: str
) -> None:
    result = _call(world)
    packet = world.packet_root / f"{result['packet_id']}.zip"
    proof = _prove_packet(world, keys, result["packet_id"], tmp_path / "p")
    values = {"P": str(proof), "K": keys.text, "ABSENT": str(tmp_path / "absent")}
    code, _, err = _run(["packet", "verify", str(packet), *[values.get(a, a) for a in args]])
    assert code == 2
    assert needle in err


def _masking_key(directory: Path) -> Path:
    """A fresh masking key file (the demo catalog lists sensitive columns)."""
    path = directory / "masking.key"
    path.write_text(MaskingKey.generate().text() + "\n")
    return path


def test_a_demo_packet_verifies_with_its_ledger_proof(tmp_path: Path) -> None:
    database = tmp_path / "demo.sqlite"
    subprocess.run(
        [sys.executable, str(REPO / "examples/demo/generate.py"), str(database)], check=True
    )
    origin = "govex.localhost/ledger/demo"
    keys = Keys(tmp_path, origin)
    env = {
        **os.environ,
        "GOVEX_CATALOG_DIR": str(REPO / "examples/demo/catalog"),
        "GOVEX_SOURCES": json.dumps({"demo": str(database)}),
        "GOVEX_KEYS_FILE": str(REPO / "examples/demo/keys.json"),
        "GOVEX_LEDGER_URL": f"sqlite:///{tmp_path / 'ledger.sqlite'}",
        "GOVEX_PACKET_ROOT": str(tmp_path / "packets"),
        "GOVEX_ORIGIN": origin,
        "GOVEX_API_KEY": "gvx-demo-alice",  # examples/demo/TOKENS.md: public, demo only
        "GOVEX_LEDGER_KEY_FILE": str(keys.signer),
        "GOVEX_MASKING_KEY_FILE": str(_masking_key(tmp_path)),
    }
    code, out, err = _run(["call", "invoices.unpaid", "-p", "tenant=acme"], env)
    assert code == 0, err
    packet_id = json.loads(out)["packet_id"]
    proof = tmp_path / f"{packet_id}.tlog-proof"
    code, _, err = _run(["ledger", "prove", "--packet", packet_id, "--out", str(proof)], env)
    assert code == 0, err
    packet = tmp_path / "packets" / f"{packet_id}.zip"
    code, out, _ = _run(
        ["packet", "verify", str(packet), "--proof", str(proof), "--key", str(keys.verifier_file)]
    )
    assert code == 0, out
    assert "OK    ledger_inclusion" in out


def test_the_cli_package_exports_only_its_app_and_entry_point() -> None:
    import service.cli  # noqa: PLC0415

    assert service.cli.__all__ == ["app", "main"]


_OFFLINE_PROBE = """
import sys
from typer.testing import CliRunner
from service.cli import app
from service.masking import MaskingKey
result = CliRunner().invoke(app, sys.argv[1:])
heavy = ("fastapi", "sqlalchemy", "uvicorn", "psycopg", "ledger.store")
print(result.exit_code, ",".join(sorted(m for m in heavy if m in sys.modules)))
"""


def test_offline_commands_load_no_database_or_web_code(
    world: Settings, keys: Keys, tmp_path: Path
) -> None:
    result = _call(world)
    checkpoint = _checkpoint(world, keys, tmp_path / "cp")
    proof = _prove_packet(world, keys, result["packet_id"], tmp_path / "p")
    export = tmp_path / "ledger.jsonl"
    _run(["ledger", "export", "--out", str(export)], _env(world))
    packet = world.packet_root / f"{result['packet_id']}.zip"
    key, cp = ["--key", keys.text], str(checkpoint)
    for args in (
        ["ledger", "verify", "--export", str(export), "--checkpoint", cp, *key],
        ["ledger", "consistency", cp, cp, "--export", str(export), *key],
        ["packet", "verify", str(packet), "--proof", str(proof), *key],
    ):
        probe = [sys.executable, "-c", _OFFLINE_PROBE, *args]
        out = subprocess.run(probe, capture_output=True, text=True, check=True).stdout
        assert out.split("\n")[-2] == "0 ", (args, out)
