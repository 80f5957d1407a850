"""The verification report: what a person reads, and JSON that matches its checked-in schema."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jsonschema
import pytest
from pydantic import ValidationError

from catalog.authority import AuthorityStatus
from ledger.keys import SignerKey
from service.packets.bag_checks import verify_bag_file
from service.packets.report import (
    CheckResult,
    ChunkDamage,
    Enforced,
    FileResult,
    TrustedKey,
    VerifyReport,
    render_text,
)
from service.packets.verify import InclusionEvidence, verify_packet_file

if TYPE_CHECKING:
    from conftest import PacketKit  # type: ignore[import-not-found]

SCHEMA = Path(__file__).resolve().parents[3] / "schemas" / "packet-verify-report.schema.json"
KEY = SignerKey.from_seed("govex.test/ledger", bytes(32)).verifier_key
PIN = "sha256:" + "ab" * 32


def _report(files: tuple[FileResult, ...] = ()) -> VerifyReport:
    checks = (
        CheckResult(name="layout", status="pass", detail="2 payload files, 6 tag files"),
        CheckResult(
            name="bagit_manifest",
            status="fail",
            detail="sha256 listed in manifest-sha256.txt does not match the bytes",
            where="data/result.csv",
            expected="sha256:" + "0" * 64,
            actual="sha256:" + "1" * 64,
        ),
        CheckResult(name="file_digests", status="skip", detail="not run: bagit_manifest failed"),
    )
    enforced = Enforced(
        require_authority=AuthorityStatus.governed,
        manifest_hash=PIN,
        trusted_catalogs=(PIN,),
        trusted_keys=(
            TrustedKey(name=KEY.name, key_id=KEY.key_id.hex(), key=KEY.text(), source="given"),
        ),
        origin=KEY.name,
        proof=True,
        checkpoint=True,
    )
    return VerifyReport.of(enforced=enforced, checks=checks, files=files)


def test_text_says_what_is_enforced_then_a_line_per_check_and_file_then_the_verdict() -> None:
    ok = FileResult(path="data/summary.csv", status="pass", bytes=1234, rows=3, detail="matches")
    lines = render_text(_report((ok,)), "packet.zip")
    assert lines[:9] == [
        "Verifying packet.zip",
        "Enforcing:",
        "  authority         at least governed",
        f"  manifest hash     {PIN} (pinned)",
        f"  trusted catalogs  {PIN}",
        f"  trusted keys      {KEY.text()} (given)",
        "  ledger origin     govex.test/ledger",
        "  checkpoint        yours: the proof must be against its tree",
        "Checks:",
    ]
    assert lines[9].startswith("OK    layout            2 payload files")
    assert lines[10].startswith("FAIL  bagit_manifest    sha256 listed in manifest-sha256.txt")
    assert lines[11].strip() == "at data/result.csv"
    assert lines[12].strip() == f"expected sha256:{'0' * 64}, found sha256:{'1' * 64}"
    assert lines[13] == "SKIP  file_digests      not run: bagit_manifest failed"
    assert lines[14:] == [
        "Files:",
        "OK    data/summary.csv  1,234 bytes, 3 rows",
        "FAIL: 1/2 checks passed, 1 skipped; bagit_manifest failed at data/result.csv",
    ]


def test_a_damaged_chunk_is_located_below_its_file_by_bytes_and_rows() -> None:
    chunk = ChunkDamage(
        offset=3_145_728,
        bytes=1_048_576,
        first_row=41_002,
        rows=13_879,
        expected="a" * 64,
        found="b" * 64,
    )
    damaged = FileResult(
        path="data/result.csv",
        status="fail",
        bytes=9_000_000,
        rows=120_000,
        detail="sha256 differs from manifest-sha256.txt",
        damaged=(chunk,),
        damaged_chunks=3,
    )
    lines = render_text(_report((damaged,)), "p.zip")
    at = lines.index("Files:")
    assert lines[at + 1] == (
        "FAIL  data/result.csv   9,000,000 bytes, 120,000 rows: "
        "sha256 differs from manifest-sha256.txt"
    )
    assert lines[at + 2].strip() == (
        f"data/result.csv bytes 3,145,728-4,194,303 (rows 41,002-54,880) blake3 expected "
        f"{'a' * 64} found {'b' * 64}"
    )
    assert lines[at + 3].strip() == "... 2 more damaged chunks"


def test_unset_options_say_what_is_not_enforced() -> None:
    report = VerifyReport.of(
        enforced=Enforced(), checks=(CheckResult(name="layout", status="pass", detail="x"),)
    )
    text = "\n".join(render_text(report, "p.zip"))
    assert "manifest hash     not pinned: any manifest hash is accepted" in text
    assert "trusted catalogs  none given: any catalog is accepted" in text
    assert "trusted keys      none given: ledger inclusion is not checked" in text
    assert "ledger origin" not in text
    assert text.endswith("OK: 1/1 checks passed")


def test_the_service_key_is_reported_as_such() -> None:
    enforced = Enforced(
        trusted_keys=(
            TrustedKey(name=KEY.name, key_id=KEY.key_id.hex(), key=KEY.text(), source="service"),
        ),
        proof=True,
    )
    report = VerifyReport.of(
        enforced=enforced, checks=(CheckResult(name="layout", status="pass", detail="x"),)
    )
    assert f"{KEY.text()} (the verifying service own key)" in "\n".join(
        render_text(report, "p.zip")
    )


def test_ok_and_summary_cannot_contradict_the_checks() -> None:
    report = _report()
    data = report.to_json()
    assert (data["ok"], data["summary"]) == (False, report.summary())
    with pytest.raises(ValidationError, match="follow from the checks"):
        VerifyReport.model_validate_json(json.dumps({**data, "ok": True}))
    with pytest.raises(ValidationError, match="follow from the checks"):
        VerifyReport.model_validate_json(json.dumps({**data, "summary": "all good"}))
    assert VerifyReport.model_validate_json(json.dumps(data)) == report


def _reports(kit: PacketKit) -> list[dict[str, Any]]:
    built = kit.build()
    members = kit.members(built.zip_path)
    members["data/result.jsonl"] = members["data/result.jsonl"].replace(b"1", b"2", 1)
    signer = SignerKey.from_seed("govex.test/ledger", bytes(32))
    return [
        verify_packet_file(
            built.zip_path, expect_manifest_hash=built.staged.manifest_hash
        ).to_json(),
        verify_packet_file(
            built.zip_path,
            require_authority=AuthorityStatus.governed,
            trusted_catalog_digests=[PIN],
            inclusion=InclusionEvidence(proof=b"not a proof", key=signer.verifier_key),
        ).to_json(),
        verify_packet_file(kit.write(members)).to_json(),
        verify_packet_file(kit.root / "absent.zip").to_json(),
        verify_bag_file(built.zip_path).to_json(),
    ]


def test_every_kind_of_report_matches_the_checked_in_schema(kit: PacketKit) -> None:
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    reports = _reports(kit)
    assert [r["ok"] for r in reports] == [True, False, False, False, True]
    for report in reports:
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(report)]
        assert errors == [], report["summary"]
    assert {"format", "ok", "summary", "enforced", "checks", "files"} <= set(reports[0])
    assert reports[2]["files"][0]["damaged"], "the damaged file lists its chunks"


def test_the_schema_refuses_a_report_without_its_verdict() -> None:
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text()))
    data = _report().to_json()
    del data["ok"]
    assert not validator.is_valid(data)


def test_an_unreadable_zip_is_reported_not_raised(tmp_path: Path) -> None:
    path = tmp_path / "p.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("p/bagit.txt", "x")
    report = verify_packet_file(path)
    assert report.check("layout").status == "fail"
    assert report.files == ()
