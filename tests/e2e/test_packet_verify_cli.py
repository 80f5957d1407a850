"""`govex packet verify`: output a person can act on, --json, --bag-only, and the exit codes.

First what is enforced, then one OK/FAIL/SKIP line per check and per file, a damaged
chunk of a large file located below its file line, then the summary. Exit 0 when every
check passes, 1 when one fails, 2 on usage or I/O errors (FORMATS section 6).
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import blake3
import jsonschema
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from service.app import create_app
from service.cli import app as cli
from tests.e2e.conftest import make_world
from tests.e2e.packet_world import issue

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "schemas" / "packet-verify-report.schema.json"
VECTORS = REPO.parent / "shared" / "vectors" / "bagit" / "v1.0"


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["packet", "verify", *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Any]]]:
    """A packet of 120,000 rows (about 5 MiB of JSON Lines, several 1 MiB chunks)."""
    root = tmp_path_factory.mktemp("large")
    with TestClient(create_app(make_world(root, rows=120_000))) as client:
        yield issue(client, root)


def _manifest(path: Path) -> dict[str, Any]:
    with zipfile.ZipFile(path) as archive:
        name = next(n for n in archive.namelist() if n.endswith("/packet.json"))
        document: dict[str, Any] = json.loads(archive.read(name))
    return document


def test_a_good_packet_prints_what_is_enforced_each_check_each_file_and_the_verdict(
    large: tuple[Path, dict[str, Any]],
) -> None:
    path, result = large
    pin = "sha256:" + result["manifest_hash"]["sha256"]
    code, out, _ = _run(str(path), "--expect-manifest-hash", pin)
    assert code == 0, out
    lines = out.splitlines()
    assert lines[:3] == [f"Verifying {path}", "Enforcing:", "  authority         at least sealed"]
    assert lines[3] == f"  manifest hash     {pin} (pinned)"
    checks = lines[lines.index("Checks:") + 1 : lines.index("Files:")]
    assert [line.split()[:2] for line in checks] == [
        ["OK", "layout"],
        ["OK", "schema"],
        ["OK", "bagit_manifest"],
        ["OK", "file_digests"],
        ["OK", "manifest_hash"],
        ["OK", "authority_status"],
        ["SKIP", "catalog_pin"],
        ["SKIP", "ledger_inclusion"],
    ]
    files = lines[lines.index("Files:") + 1 : -1]
    assert files[0].split()[:2] == ["OK", "data/result.jsonl"]
    assert "120,000 rows" in files[0]
    assert {line.split()[1] for line in files} >= {"packet.json", "datapackage.json"}
    assert lines[-1] == "OK: 6/6 checks passed, 2 skipped"


def test_a_byte_flipped_deep_in_a_large_file_is_located_below_its_file_line(
    large: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    path, _ = large
    record = _manifest(path)["files"][0]
    assert len(record["chunks"]) >= 4
    chunk = record["chunks"][3]
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(tampered, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename.endswith("data/result.jsonl"):
                flipped = bytearray(data)
                flipped[chunk["offset"] + 100] ^= 0x01
                found = blake3.blake3(
                    bytes(flipped[chunk["offset"] : chunk["offset"] + chunk["bytes"]])
                ).hexdigest()
                data = bytes(flipped)
            target.writestr(info, data)
    code, out, _ = _run(str(tampered))
    assert code == 1
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("FAIL  data/result.jsonl"))
    first, last = chunk["offset"], chunk["offset"] + chunk["bytes"] - 1
    rows = f"{chunk['first_row']:,}-{chunk['first_row'] + chunk['rows'] - 1:,}"
    assert lines[at + 2].strip() == (
        f"data/result.jsonl bytes {first:,}-{last:,} (rows {rows}) "
        f"blake3 expected {chunk['blake3']} found {found}"
    )
    assert "FAIL  bagit_manifest" in out
    assert (
        lines[-1]
        == "FAIL: 2/3 checks passed, 5 skipped; bagit_manifest failed at data/result.jsonl"
    )


def test_json_is_the_report_of_the_checked_in_schema(large: tuple[Path, dict[str, Any]]) -> None:
    code, out, _ = _run(str(large[0]), "--json")
    assert code == 0
    report = json.loads(out)
    jsonschema.validate(report, json.loads(SCHEMA.read_text()))
    assert (report["ok"], report["format"]) == (True, "govex.packet-verify-report/v1")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        pytest.param(["--expect-manifest-hash", "md5:00"], "unknown digest algorithm", id="pin"),
        pytest.param(["--trust-catalog", "sha256:123"], "64 hex digits", id="catalog"),
        pytest.param(["--bag-only", "--trust-catalog", "sha256:" + "0" * 64], "--bag-only",
                     id="bag-only-with-a-pin"),
        pytest.param(["--require-authority", "trusted"], "trusted", id="authority"),
    ],
)  # fmt: skip
def test_usage_errors_exit_2(
    large: tuple[Path, dict[str, Any]], args: list[str], needle: str
) -> None:
    code, out, err = _run(str(large[0]), *args)
    assert code == 2, out
    assert needle in err + out
    assert "Traceback" not in err + out


def test_an_absent_packet_exits_2(tmp_path: Path) -> None:
    code, _, err = _run(str(tmp_path / "absent.zip"))
    assert (code, "does not exist" in err) == (2, True)


@pytest.fixture
def vectors() -> Path:
    if not VECTORS.is_dir():
        reason = f"BagIt conformance vectors not found at {VECTORS} (see shared/vectors)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return VECTORS


def test_bag_only_judges_the_conformance_bags(vectors: Path) -> None:
    code, out, _ = _run(str(vectors / "valid" / "basicBag"), "--bag-only")
    assert code == 0, out
    assert "Enforcing: BagIt 1.0 only" in out
    assert out.splitlines()[-1] == "OK: 2/2 checks passed"
    bag = vectors / "invalid" / "same-filename-listed-twice-with-different-hashes"
    code, out, _ = _run(str(bag), "--bag-only")
    assert code == 1
    assert "FAIL  layout" in out
    assert "also at manifest-sha256.txt:2: duplicate_path" in out
    code, out, _ = _run(str(vectors / "valid" / "basicBag"))  # not a govex packet
    assert code == 1
    assert "layout failed at bag-info.txt" in out
