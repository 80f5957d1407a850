"""`govex gate`: passes only a verified packet, of high enough authority, whose claim holds.

Real packets from the app in-process: exit 0 on a good packet with a satisfied claim; 1 on
a tampered one (a forged claim included); 4 on a provisional packet where sealed is
required; 3 on an unsatisfied claim or a packet without one; 2 on usage errors; ``--json``
for machines. The command also runs in a subprocess with the network disabled.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from ledger.keys import SignerKey
from service.app import create_app
from service.cli import app as cli
from tests.e2e.conftest import make_world
from tests.e2e.packet_world import issue, proof_of

EXTRA = """
[[query]]
id = "gate.found"
title = "Items, claimed empty: rows are found"
source = "items"
sql = "queries/all.sql"
max_rows = 10
claim = { expect = "empty", surface = "exhaustive" }

[[query]]
id = "gate.scoped"
title = "No negative amount, over part of what the claim is about"
source = "items"
sql = "queries/missing.sql"
claim = { expect = "empty", surface = "scoped" }
"""
WRAPPER = Path(__file__).with_name("offline_govex.py")
REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Issued:
    path: Path
    result: dict[str, Any]

    @property
    def pin(self) -> str:
        return "sha256:" + str(self.result["manifest_hash"]["sha256"])

    @property
    def catalog(self) -> str:
        return "sha256:" + str(self.result["contract"]["catalog"]["catalog_digest"]["sha256"])


@dataclass(frozen=True)
class Packets:
    absent: Issued
    found: Issued
    scoped: Issued
    no_claim: Issued
    provisional: Issued
    proof: Path
    key: str


@pytest.fixture(scope="module")
def packets(tmp_path_factory: pytest.TempPathFactory) -> Packets:
    """One packet per case, from one sealed world (its ledger signs) and one provisional."""
    root = tmp_path_factory.mktemp("gate")
    world = make_world(root / "sealed", extra_toml=EXTRA)
    signer = SignerKey.generate(world.origin)
    key_file = root / "ledger.key"
    key_file.write_text(signer.text() + "\n")
    key_file.chmod(0o600)
    world = world.model_copy(update={"ledger_key_file": key_file})
    out = root / "packets"
    out.mkdir()
    with TestClient(create_app(world)) as client:
        absent = Issued(*issue(client, out, entry="items.missing"))
        found = Issued(*issue(client, out, entry="gate.found"))
        scoped = Issued(*issue(client, out, entry="gate.scoped"))
        no_claim = Issued(*issue(client, out, entry="items.all"))
        proof = proof_of(client, absent.result["packet_id"], out)
    dev = make_world(root / "dev").model_copy(update={"provisional": True})
    with TestClient(create_app(dev)) as client:
        provisional = Issued(*issue(client, out, entry="items.missing"))
    return Packets(absent, found, scoped, no_claim, provisional, proof, signer.verifier_key.text())


def _gate(*args: str | Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["gate", *(str(a) for a in args)])
    return result.exit_code, result.stdout, result.stderr


def _forge(source: Path, target: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    """Rewrite packet.json with ``edit`` and recompute the tag manifest, as a forger would."""
    with zipfile.ZipFile(source) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    name = next(n for n in members if n.endswith("/packet.json"))
    document = json.loads(members[name])
    edit(document)
    members[name] = rfc8785.dumps(document)
    root = name.split("/", 1)[0]
    tags = {
        n.split("/", 1)[1]: d
        for n, d in members.items()
        if "/data/" not in n and not n.endswith("/tagmanifest-sha256.txt")
    }
    members[f"{root}/tagmanifest-sha256.txt"] = "".join(
        f"{hashlib.sha256(d).hexdigest()}  {n}\n" for n, d in sorted(tags.items())
    ).encode()
    with zipfile.ZipFile(target, "w") as archive:
        for member, data in sorted(members.items()):
            archive.writestr(member, data)
    return target


def test_a_good_packet_with_a_satisfied_claim_passes(packets: Packets) -> None:
    good = packets.absent
    code, out, err = _gate(
        good.path,
        "--expect-manifest-hash", good.pin,
        "--trust-catalog", good.catalog,
        "--proof", packets.proof,
        "--key", packets.key,
    )  # fmt: skip
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        (
            f'PASS {good.result["packet_id"]}: verified; claim expect "empty", surface '
            "exhaustive: ABSENT"
        )
    ]


def test_a_tampered_packet_fails_verification(packets: Packets, tmp_path: Path) -> None:
    with zipfile.ZipFile(packets.absent.path) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    page = next(n for n in members if n.endswith("/report.html"))
    members[page] = members[page].replace(b"ABSENT", b"ABSENT!")
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(tampered, "w") as archive:
        for member, data in sorted(members.items()):
            archive.writestr(member, data)
    code, out, _ = _gate(tampered)
    assert code == 1
    lines = out.splitlines()
    assert lines[0].startswith("FAIL verification: bagit_manifest failed at report.html:")
    assert lines[1].startswith("  expected sha256:")


def test_a_forged_claim_fails_against_the_pin_and_the_ledger(
    packets: Packets, tmp_path: Path
) -> None:
    def to_absent(document: dict[str, Any]) -> None:
        document["claim"]["verdict"] = "ABSENT"

    forged = _forge(packets.found.path, tmp_path / "forged.zip", to_absent)
    assert _gate(forged)[0] == 0  # a consistent bag: only a pin or a proof tells
    code, out, _ = _gate(forged, "--expect-manifest-hash", packets.found.pin)
    assert code == 1
    assert out.startswith("FAIL verification: manifest_hash failed at packet.json:")


def test_a_provisional_packet_fails_when_sealed_is_required(packets: Packets) -> None:
    code, out, _ = _gate(packets.provisional.path)
    assert code == 4
    assert out.splitlines() == [
        "FAIL authority: provisional is below the required sealed at packet.json#/authority_status"
    ]
    assert _gate(packets.provisional.path, "--require-authority", "provisional")[0] == 0
    assert _gate(packets.absent.path, "--require-authority", "governed")[0] == 4


def test_an_unsatisfied_claim_fails_with_its_verdict(packets: Packets) -> None:
    code, out, _ = _gate(packets.found.path, "--expect-manifest-hash", packets.found.pin)
    assert code == 3
    assert out.splitlines() == [
        'FAIL claim: EVIDENCE_PRESENT; the claim (expect "empty", surface exhaustive) needs ABSENT',
        "  accept it explicitly with --accept EVIDENCE_PRESENT",
    ]
    assert _gate(packets.found.path, "--accept", "EVIDENCE_PRESENT")[0] == 0


def test_not_evidenced_fails_with_its_reason_unless_accepted(packets: Packets) -> None:
    code, out, _ = _gate(packets.scoped.path)
    assert code == 3
    assert out.splitlines()[0] == (
        "FAIL claim: NOT_EVIDENCED (scoped_surface: the entry reads part of what the claim is "
        'about); the claim (expect "empty", surface scoped) needs ABSENT'
    )
    assert _gate(packets.scoped.path, "--accept", "EVIDENCE_PRESENT")[0] == 3
    code, out, _ = _gate(packets.scoped.path, "--accept", "NOT_EVIDENCED")
    assert code == 0
    assert out.rstrip().endswith("(accepted by --accept)")


def test_a_packet_without_a_claim_passes_only_when_allowed(packets: Packets) -> None:
    bare = packets.no_claim
    code, out, _ = _gate(bare.path, "--expect-manifest-hash", bare.pin)
    assert code == 3
    assert out.splitlines() == [
        f"FAIL claim: {bare.result['packet_id']} states no claim (its entry has none)",
        "  gate on verification alone with --allow-no-claim",
    ]
    code, out, _ = _gate(bare.path, "--expect-manifest-hash", bare.pin, "--allow-no-claim")
    assert code == 0
    assert "no claim (allowed by --allow-no-claim)" in out


def test_json_gives_the_decision_the_claim_and_the_verify_report(packets: Packets) -> None:
    code, out, _ = _gate(packets.found.path, "--json")
    document = json.loads(out)
    assert code == document["exit_code"] == 3
    assert document["format"] == "govex.gate-result/v1"
    assert (document["passed"], document["outcome"]) == (False, "claim_not_satisfied")
    assert document["claim"] == packets.found.result["claim"]
    assert document["positive_verdicts"] == ["ABSENT"]
    assert document["manifest_hash"] == packets.found.result["manifest_hash"]
    assert document["verification"]["ok"] is True
    assert document["reason"].startswith("FAIL claim: EVIDENCE_PRESENT")

    code, out, _ = _gate(packets.absent.path, "--json", "--accept", "NOT_EVIDENCED")
    document = json.loads(out)
    assert (code, document["passed"], document["outcome"]) == (0, True, "passed")
    assert document["positive_verdicts"] == ["ABSENT", "NOT_EVIDENCED"]

    code, out, _ = _gate(packets.provisional.path, "--json")
    document = json.loads(out)
    assert (code, document["outcome"]) == (4, "authority_below_required")
    assert document["verification"]["ok"] is False


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--proof", "x.tlog-proof"], "--proof needs --key", id="proof-without-key"),
        pytest.param(["--expect-manifest-hash", "md5:00"], "md5", id="bad-pin"),
        pytest.param(["--accept", "MAYBE"], "MAYBE", id="bad-verdict"),
    ],
)
def test_usage_errors_exit_2(packets: Packets, args: list[str], message: str) -> None:
    code, _, err = _gate(packets.absent.path, *args)
    assert code == 2
    assert message in err


def test_a_missing_packet_exits_2(tmp_path: Path) -> None:
    code, _, err = _gate(tmp_path / "nope.zip")
    assert code == 2
    assert "does not exist" in err


def test_the_gate_runs_with_the_network_disabled(packets: Packets) -> None:
    good = packets.absent
    ran = subprocess.run(
        [
            sys.executable, str(WRAPPER), "gate", str(good.path),
            "--expect-manifest-hash", good.pin, "--proof", str(packets.proof),
            "--key", packets.key,
        ],
        capture_output=True, text=True, check=False, cwd=REPO, timeout=120,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert ran.stdout.startswith("PASS ")
