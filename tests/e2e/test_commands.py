"""Command entries over HTTP: a pinned executable run without a shell, whole-argument
parameters, a reduced environment, exit codes mapped to verdicts, a deadline that kills the
whole process group, output caps; stdout and stderr become the packet's data files. Every
case runs on a SQLite and on a PostgreSQL ledger."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import sys
import textwrap
import time
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from catalog.load import SEAL_FILE, load_catalog_dir, write_seal
from catalog.seal import compute_seal
from ledger.store import LedgerStore
from service.app import create_app
from service.errors import StartupRefused
from service.packets.readers import ZipPacketReader
from service.packets.verify import verify_packet
from service.runtime import build_runtime
from service.settings import Settings
from tests.e2e.conftest import CATALOG_TOML, QUERIES, write_keys, write_source

PROBLEM = "application/problem+json"
FLOOD_CAP = 1000
SLOW_TIMEOUT_MS = 700

# Small Python programs run as the catalog's executables (`#!<this interpreter> -I`).
SCRIPTS = {
    # Prints its arguments and the names of the variables it was given, one per line.
    "echo": """
        import json, os, sys
        print(json.dumps(sys.argv[1:]))
        print(json.dumps(sorted(k for k in os.environ if k != "LC_CTYPE")))  # PEP 538 adds it
        print("cwd-empty", os.listdir(".") == [])
        print("to stderr", file=sys.stderr)
    """,
    # Exits with the code it is given.
    "exit_with": """
        import sys
        print("exiting with", sys.argv[1])
        sys.exit(int(sys.argv[1]))
    """,
    # Starts a grandchild that sleeps, prints both pids, then sleeps past any deadline.
    "slow": f"""
        import os, subprocess, sys, time
        sleeper = "import time; time.sleep(60)"
        child = subprocess.Popen([{sys.executable!r}, "-I", "-S", "-c", sleeper])
        print(os.getpid(), child.pid, flush=True)
        time.sleep(60)
    """,
    # Writes to stdout without end.
    "flood": """
        import sys
        block = b"x" * 65536
        while True:
            sys.stdout.buffer.write(block)
    """,
}

COMMANDS_TOML = f"""
[[command]]
id = "cmd.echo"
title = "Echo a word"
argv = ["{{bin}}/echo", "--", "{{word}}", "{{times}}"]
mutating = false
env = ["CMD_TEST_VISIBLE", "CMD_TEST_UNSET"]
[command.params.word]
type = "string"
max_length = 64
[command.params.times]
type = "integer"
min = -5
max = 5
default = 2

[[command]]
id = "cmd.no_end_of_options"
title = "Echo a word, without a -- before it"
argv = ["{{bin}}/echo", "{{word}}", "{{n}}"]
mutating = false
[command.params.word]
type = "string"
max_length = 64
[command.params.n]
type = "integer"
min = -5
max = 5
default = 1

[[command]]
id = "cmd.exit_with"
title = "Exit with a code"
argv = ["{{bin}}/exit_with", "{{code}}"]
mutating = false
exit_codes = {{ "0" = "ran_clean", "1" = "ran_with_drift", "3" = "error_running" }}
[command.params.code]
type = "integer"
min = 0
max = 255

[[command]]
id = "cmd.slow"
title = "Never ends in time"
argv = ["{{bin}}/slow"]
mutating = false
timeout_ms = {SLOW_TIMEOUT_MS}

[[command]]
id = "cmd.flood"
title = "Floods stdout"
argv = ["{{bin}}/flood"]
mutating = false
max_bytes = {FLOOD_CAP}
"""


def _write_scripts(directory: Path) -> Path:
    directory.mkdir()
    for name, body in SCRIPTS.items():
        path = directory / name
        path.write_text(f"#!{sys.executable} -I\n" + textwrap.dedent(body))
        path.chmod(0o755)
    return directory


def _catalog(directory: Path, bin_dir: Path) -> Path:
    (directory / "queries").mkdir(parents=True)
    toml = CATALOG_TOML + COMMANDS_TOML.replace("{bin}", str(bin_dir))
    (directory / "catalog.toml").write_text(toml)
    for name, text in QUERIES.items():
        (directory / "queries" / name).write_text(text)
    write_seal(directory / SEAL_FILE, compute_seal(load_catalog_dir(directory), datetime.now(UTC)))
    return directory


@pytest.fixture(params=["sqlite", "postgresql"])
def command_world(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    ledger_url = (
        f"sqlite:///{tmp_path / 'ledger.sqlite'}"
        if request.param == "sqlite"
        else request.getfixturevalue("pg_url")
    )
    return Settings(
        catalog_dir=_catalog(tmp_path / "catalog", _write_scripts(tmp_path / "bin")),
        sources={"items": str(write_source(tmp_path / "items.sqlite", rows=50))},
        keys_file=write_keys(tmp_path / "keys.json"),
        ledger_url=ledger_url,
        packet_root=tmp_path / "packets",
        origin="govex.test/ledger/commands",
    )


@pytest.fixture
def client(command_world: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("CMD_TEST_VISIBLE", "shown")
    monkeypatch.setenv("CMD_TEST_HIDDEN", "never passed")  # in no entry's env list
    monkeypatch.delenv("CMD_TEST_UNSET", raising=False)
    with TestClient(create_app(command_world), raise_server_exceptions=False) as test_client:
        yield test_client
    if command_world.packet_root.exists():
        shutil.rmtree(command_world.packet_root)


def _auth(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer tok-{name}"}


def _call(client: TestClient, entry: str, **params: Any) -> Any:
    body = {"entry": entry, "params": params}
    return client.post("/v1/calls", json=body, headers=_auth("alice"))


def _entries(settings: Settings) -> list[dict[str, Any]]:
    with LedgerStore.open(settings.ledger_url) as store:
        return [e.model_dump(mode="json") for e in store.list_entries(0, store.size())]


def _of_call(settings: Settings, call_id: str) -> list[dict[str, Any]]:
    return [e for e in _entries(settings) if e["body"].get("call_id") == call_id]


def _packet(client: TestClient, result: dict[str, Any], tmp_path: Path) -> dict[str, bytes]:
    """The packet's files (verified with its pinned manifest hash first), by bag path."""
    response = client.get(f"/v1/packets/{result['packet_id']}", headers=_auth("alice"))
    assert response.status_code == 200, response.text
    path = tmp_path / f"{result['packet_id']}.zip"
    path.write_bytes(response.content)
    with ZipPacketReader(path) as reader:
        report = verify_packet(
            reader, expect_manifest_hash="sha256:" + result["manifest_hash"]["sha256"]
        )
    assert report.ok, report.summary()
    prefix = f"{result['packet_id']}/"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        return {name.removeprefix(prefix): archive.read(name) for name in archive.namelist()}


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, killed but not yet reaped by its new parent, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] not in {"Z", "X"}


def test_a_clean_run_gives_a_packet_with_stdout_and_stderr(
    client: TestClient, command_world: Settings, tmp_path: Path
) -> None:
    response = _call(client, "cmd.echo", word="a b; $(rm -rf /) 'x'")
    assert response.status_code == 201, response.text
    result = response.json()
    assert (result["verdict"], result["exit_code"], result["complete"]) == ("ran_clean", 0, True)
    contract = result["contract"]
    assert contract["entry"]["kind"] == "command"
    bin_dir = command_world.catalog_dir.parent / "bin"
    assert contract["boundary"]["engine"] == "command"
    assert contract["boundary"]["source"] == str(bin_dir / "echo")
    assert "no_shell" in contract["boundary"]["controls"]
    pinned = hashlib.sha256((bin_dir / "echo").read_bytes()).hexdigest()
    assert contract["command"]["argv"] == [str(bin_dir / "echo"), "--", "a b; $(rm -rf /) 'x'", "2"]
    assert contract["command"]["executable_sha256"] == pinned
    assert contract["command"]["exit_codes"] == {"0": "ran_clean"}
    assert contract["max_rows"] is None

    files = _packet(client, result, tmp_path)
    stdout = files["data/stdout.txt"]
    assert stdout.decode().splitlines() == [
        json.dumps(["--", "a b; $(rm -rf /) 'x'", "2"]),  # whole arguments, nothing expanded
        json.dumps(["CMD_TEST_VISIBLE"]),  # the allowlist, only the variables that are set
        "cwd-empty True",  # a fresh working folder
    ]
    assert files["data/stderr.txt"] == b"to stderr\n"
    manifest = json.loads(files["packet.json"])
    by_path = {f["path"]: f for f in manifest["files"]}
    assert by_path["data/stdout.txt"]["digest"]["sha256"] == hashlib.sha256(stdout).hexdigest()
    assert by_path["data/stdout.txt"]["rows"] is None
    assert manifest["contract"]["boundary"]["engine"] == "command"
    assert manifest["contract"]["outcome"]["command"]["exit_code"] == 0
    assert manifest["complete"] is True

    started, finished, issued = _of_call(command_world, result["call_id"])
    assert (started["kind"], finished["kind"], issued["kind"]) == (
        "call.started", "call.finished", "packet.issued",
    )  # fmt: skip
    assert started["body"]["contract"]["command"]["argv"] == contract["command"]["argv"]
    body = finished["body"]
    assert (body["verdict"], body["exit_code"], body["complete"]) == ("ran_clean", 0, True)
    assert body["result_digest"]["sha256"] == hashlib.sha256(stdout).hexdigest()
    assert body["command"]["exit_code"] == 0
    assert body["command"]["signal"] is None
    assert body["command"]["killed_reason"] is None
    assert body["command"]["stdout"]["bytes"] == len(stdout)
    assert body["command"]["stderr"]["truncated"] is False


@pytest.mark.parametrize(
    ("code", "verdict", "cli_exit"),
    [
        pytest.param(0, "ran_clean", 0, id="zero-clean"),
        pytest.param(1, "ran_with_drift", 1, id="one-drift"),
        pytest.param(3, "error_running", 2, id="three-error"),
        pytest.param(5, "error_running", 2, id="unmapped-error"),
    ],
)
def test_exit_codes_map_to_verdicts_through_the_entry(
    client: TestClient, command_world: Settings, code: int, verdict: str, cli_exit: int
) -> None:
    response = _call(client, "cmd.exit_with", code=code)
    assert response.status_code == 201, response.text
    result = response.json()
    assert (result["verdict"], result["exit_code"]) == (verdict, cli_exit)
    assert result["packet_id"] is not None  # the output is evidence whatever the exit
    finished = _of_call(command_world, result["call_id"])[1]
    assert finished["kind"] == "call.finished"
    assert finished["body"]["verdict"] == verdict
    assert finished["body"]["command"]["exit_code"] == code
    assert finished["body"]["command"]["reason"].startswith(f"exit code {code}")
    assert (result["error"] is None) == (verdict != "error_running")


@pytest.mark.parametrize(
    ("entry", "params", "where"),
    [
        pytest.param("cmd.no_end_of_options", {"word": "-rf"}, "word", id="option-looking"),
        pytest.param(
            "cmd.no_end_of_options", {"word": "--output=/etc/x"}, "word", id="long-option"
        ),
        pytest.param("cmd.no_end_of_options", {"word": "ok", "n": -1}, "n", id="negative-number"),
    ],
)
def test_an_option_looking_value_is_refused_and_nothing_runs(
    client: TestClient, command_world: Settings, entry: str, params: dict[str, Any], where: str
) -> None:
    before = _entries(command_world)
    response = _call(client, entry, **params)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    problem = response.json()
    assert problem["code"] == "command_refused"
    refusal = f"parameter {where}: a value starting with '-' would be read as an option"
    assert refusal in problem["detail"]
    entries = _entries(command_world)
    assert len(entries) == len(before) + 1  # the refusal only: nothing started
    denied = entries[-1]
    assert denied["kind"] == "call.denied"
    assert denied["body"]["code"] == "command_refused"
    assert denied["body"]["where"] == where
    assert str(params[where]) not in denied["body"]["reason"]  # a refused value is not echoed


def test_a_value_after_end_of_options_is_an_operand(client: TestClient) -> None:
    result = _call(client, "cmd.echo", word="-rf", times=-1).json()
    assert result["verdict"] == "ran_clean", result
    assert result["contract"]["command"]["argv"][1:] == ["--", "-rf", "-1"]


def test_a_timeout_kills_the_process_group(
    client: TestClient, command_world: Settings, tmp_path: Path
) -> None:
    t0 = time.monotonic()
    response = _call(client, "cmd.slow")
    assert time.monotonic() - t0 < 10  # the script sleeps 60 s
    assert response.status_code == 201, response.text
    result = response.json()
    assert (result["verdict"], result["exit_code"], result["complete"]) == ("timed_out", 3, False)
    assert "contract timeout" in result["error"]
    files = _packet(client, result, tmp_path)
    leader, grandchild = map(int, files["data/stdout.txt"].split())
    deadline = time.monotonic() + 5
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(leader)
    assert not _alive(grandchild)  # killed with its group, though its parent never waited
    manifest = json.loads(files["packet.json"])
    assert manifest["complete"] is False
    assert manifest["contract"]["outcome"]["cut_by"] == "timeout"
    finished = _of_call(command_world, result["call_id"])[1]
    assert finished["kind"] == "call.finished"
    assert finished["body"]["verdict"] == "timed_out"
    assert finished["body"]["exit_code"] == 3
    assert finished["body"]["command"]["killed_reason"] == "timeout"
    assert finished["body"]["command"]["signal"] == 9  # SIGKILL
    assert finished["body"]["duration_ms"] >= SLOW_TIMEOUT_MS


def test_an_output_flood_is_cut_at_the_cap_and_is_error_running(
    client: TestClient, command_world: Settings, tmp_path: Path
) -> None:
    response = _call(client, "cmd.flood")
    assert response.status_code == 201, response.text
    result = response.json()
    assert (result["verdict"], result["exit_code"], result["complete"]) == (
        "error_running", 2, False,
    )  # fmt: skip
    assert result["error"].startswith("output flood: stdout passed the byte cap")
    assert result["bytes"] == FLOOD_CAP
    files = _packet(client, result, tmp_path)
    assert files["data/stdout.txt"] == b"x" * FLOOD_CAP
    manifest = json.loads(files["packet.json"])
    assert manifest["complete"] is False
    assert manifest["contract"]["outcome"]["cut_by"] == "max_bytes"
    finished = _of_call(command_world, result["call_id"])[1]
    body = finished["body"]
    assert (finished["kind"], body["verdict"], body["exit_code"]) == (
        "call.finished", "error_running", 2,
    )  # fmt: skip
    assert body["error"].startswith("output flood")
    assert body["complete"] is False
    assert body["command"]["killed_reason"] == "output_cap"
    assert body["command"]["stdout"] == {
        "bytes": FLOOD_CAP,
        "digest": body["result_digest"],
        "truncated": True,
    }
    assert body["result_digest"]["sha256"] == hashlib.sha256(b"x" * FLOOD_CAP).hexdigest()


def test_an_executable_edited_after_start_is_blocked_before_the_call_starts(
    client: TestClient, command_world: Settings
) -> None:
    script = command_world.catalog_dir.parent / "bin" / "echo"
    script.write_text(script.read_text() + "print('edited')\n")
    before = _entries(command_world)
    body = {"entry": "cmd.echo", "params": {"word": "hi"}, "mode": "dry_run"}
    dry = client.post("/v1/calls", json=body, headers=_auth("alice"))
    assert dry.status_code == 200, dry.text
    pin = next(c for c in dry.json()["dry_run"]["checks"] if c["check"] == "executable")
    assert (pin["passed"], pin["code"]) == (False, "executable_mismatch")
    assert f"executable {script} has sha256 " in pin["detail"]
    assert dry.json()["dry_run"]["would_run"] is False
    response = client.post("/v1/calls", json={**body, "mode": "run"}, headers=_auth("alice"))
    assert response.status_code == 409, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    problem = response.json()
    assert problem["code"] == "executable_mismatch"
    assert f"executable {script} has sha256 " in problem["detail"]
    assert "but the seal pins sha256" in problem["detail"]
    entries = _entries(command_world)
    assert [e["kind"] for e in entries[len(before) :]] == ["call.dry_run", "call.denied"]
    denied = entries[-1]["body"]
    assert (denied["code"], denied["where"]) == ("executable_mismatch", str(script))
    now = hashlib.sha256(script.read_bytes()).hexdigest()
    assert denied["contract"]["command"]["executable_sha256"] != now


def test_an_executable_removed_after_start_is_a_503_refusal_before_the_call_starts(
    client: TestClient, command_world: Settings
) -> None:
    script = command_world.catalog_dir.parent / "bin" / "echo"
    script.chmod(0o644)
    response = _call(client, "cmd.echo", word="hi")
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    problem = response.json()
    assert problem["code"] == "executable_unavailable"
    assert problem["detail"] == f"executable {script} has no execute permission"
    denied = _entries(command_world)[-1]
    assert (denied["kind"], denied["body"]["code"]) == ("call.denied", "executable_unavailable")


def test_an_executable_edited_before_start_refuses_the_start(command_world: Settings) -> None:
    script = command_world.catalog_dir.parent / "bin" / "flood"
    script.write_text(script.read_text() + "# edited\n")
    with pytest.raises(StartupRefused, match=r"changed: cmd\.flood"):
        build_runtime(command_world)


def test_a_dry_run_gives_the_command_contract_and_runs_nothing(
    client: TestClient, command_world: Settings
) -> None:
    before = len(_entries(command_world))
    body = {"entry": "cmd.flood", "params": {}, "mode": "dry_run"}
    response = client.post("/v1/calls", json=body, headers=_auth("alice"))
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["verdict"], result["packet_id"]) == (None, None)
    terms = result["contract"]["command"]
    assert terms["argv"] == [str(command_world.catalog_dir.parent / "bin" / "flood")]
    assert (terms["env"], terms["max_stderr_bytes"]) == ([], 1024 * 1024)
    assert terms["limits"]["cpu_seconds"] == 30
    assert result["contract"]["max_bytes"] == FLOOD_CAP
    assert [c["check"] for c in result["dry_run"]["checks"]] == [
        "entry",
        "inputs",
        "policy",
        "executable",
    ]
    assert result["dry_run"]["would_run"] is True
    after = _entries(command_world)
    assert [e["kind"] for e in after[before:]] == ["call.dry_run"]  # ledgered, nothing started
