"""Verification never opens a network connection: it passes with sockets disabled.

In-process, every socket entry point is patched to raise; in a subprocess, the CLI runs
through ``offline_govex.py``, which disables the network before importing govex. Every
check runs, ledger inclusion against a checkpoint included, so nothing is skipped that
might have needed the network.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from service.app import create_app
from service.cli import app as cli
from service.packets.verify import InclusionEvidence, verify_packet_file
from tests.e2e.packet_world import HEADERS, issue, proof_of, signed_world

WRAPPER = Path(__file__).with_name("offline_govex.py")


class NetworkUsedError(AssertionError):
    """The code under test tried to reach the network."""


def _refuse(*_args: Any, **_kwargs: Any) -> Any:
    raise NetworkUsedError("verification tried to open a network connection")


@pytest.fixture
def evidence(tmp_path: Path) -> dict[str, Any]:
    """A packet, its proof, the trusted checkpoint and key, and the pins: the full option set."""
    world, key = signed_world(tmp_path)
    with TestClient(create_app(world), raise_server_exceptions=False) as client:
        packet, result = issue(client, tmp_path)
        checkpoint = tmp_path / "checkpoint"
        response = client.get("/v1/ledger/checkpoint", headers=HEADERS)
        assert response.status_code == 200, response.text
        checkpoint.write_text(response.text)
        proof = proof_of(client, result["packet_id"], tmp_path)
    key_file = tmp_path / "ledger.pub"
    key_file.write_text(key.text() + "\n")
    return {
        "packet": packet,
        "proof": proof,
        "checkpoint": checkpoint,
        "key": key,
        "key_file": key_file,
        "pin": "sha256:" + result["manifest_hash"]["sha256"],
        "catalog": "sha256:" + result["contract"]["catalog"]["catalog_digest"]["sha256"],
    }


def _args(evidence: dict[str, Any], packet: Path | None = None) -> list[str]:
    return [
        "packet",
        "verify",
        str(packet or evidence["packet"]),
        "--expect-manifest-hash",
        evidence["pin"],
        "--trust-catalog",
        evidence["catalog"],
        "--require-authority",
        "sealed",
        "--proof",
        str(evidence["proof"]),
        "--checkpoint",
        str(evidence["checkpoint"]),
        "--key",
        str(evidence["key_file"]),
    ]


@pytest.fixture
def no_network(evidence: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The evidence (made by the service first); then every socket entry point raises."""
    for name in ("create_connection", "getaddrinfo", "gethostbyname"):
        monkeypatch.setattr(socket, name, _refuse)
    for name in ("connect", "connect_ex", "sendto"):
        monkeypatch.setattr(socket.socket, name, _refuse)
    return evidence


def test_in_process_verification_runs_every_check_with_sockets_disabled(
    no_network: dict[str, Any],
) -> None:
    evidence = no_network
    with pytest.raises(NetworkUsedError):
        socket.create_connection(("127.0.0.1", 9))  # the patch is in force
    report = verify_packet_file(
        evidence["packet"],
        expect_manifest_hash=evidence["pin"],
        trusted_catalog_digests=[evidence["catalog"]],
        inclusion=InclusionEvidence(
            proof=evidence["proof"].read_bytes(),
            key=evidence["key"],
            checkpoint=evidence["checkpoint"].read_bytes(),
        ),
    )
    assert [c.status for c in report.checks] == ["pass"] * 8, report.summary()
    result = CliRunner().invoke(cli, _args(evidence))
    assert result.exit_code == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == "OK: 8/8 checks passed"


def _offline(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(WRAPPER), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_the_wrapper_really_disables_the_network() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        socket.create_connection(("127.0.0.1", port), timeout=2).close()  # reachable here
        checked = _offline("--self-check", str(port))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_cli_in_a_subprocess_verifies_a_packet_with_the_network_disabled(
    evidence: dict[str, Any], tmp_path: Path
) -> None:
    done = _offline(*_args(evidence))
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1] == "OK: 8/8 checks passed"
    assert any(line.startswith("OK    ledger_inclusion") for line in lines)
    assert "NetworkDisabled" not in done.stderr

    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(evidence["packet"]) as source, zipfile.ZipFile(tampered, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            target.writestr(info, data + b"x" if info.filename.endswith(".jsonl") else data)
    done = _offline(*_args(evidence, tampered), "--json")
    assert done.returncode == 1, done.stdout + done.stderr
    assert '"name": "bagit_manifest"' in done.stdout
