"""The newcomer's path: the demo on a real uvicorn, the README's curl, offline verification."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.servers import free_port

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DEMO_TOKEN = "gvx-demo-alice"  # examples/demo/TOKENS.md: public, demo only


@pytest.fixture(scope="module")
def demo_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    var = tmp_path_factory.mktemp("var")
    database = var / "demo.sqlite"
    subprocess.run(
        [sys.executable, str(REPO / "examples/demo/generate.py"), str(database)], check=True
    )
    masking_key = var / "masking.key"  # as `make run` makes var/masking.key
    subprocess.run(
        [str(BIN / "govex"), "keys", "masking", "--out", str(masking_key)],
        check=True,
        capture_output=True,
    )
    return {
        **os.environ,
        "GOVEX_CATALOG_DIR": str(REPO / "examples/demo/catalog"),
        "GOVEX_SOURCES": json.dumps({"demo": str(database)}),
        "GOVEX_KEYS_FILE": str(REPO / "examples/demo/keys.json"),
        "GOVEX_LEDGER_URL": f"sqlite:///{var / 'ledger.sqlite'}",
        "GOVEX_PACKET_ROOT": str(var / "packets"),
        "GOVEX_ORIGIN": "govex.localhost/ledger/demo",
        "GOVEX_MASKING_KEY_FILE": str(masking_key),
    }


@pytest.fixture(scope="module")
def server(demo_env: dict[str, str]) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [str(BIN / "govex"), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=demo_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                output = process.stdout.read().decode() if process.stdout else ""
                pytest.fail(f"govex serve exited with {process.returncode}:\n{output}")
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("govex serve did not become healthy within 30 s")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout:
            process.stdout.close()


def test_the_readme_tour_gives_a_packet_that_verifies(
    server: str, demo_env: dict[str, str], tmp_path: Path
) -> None:
    headers = {"Authorization": f"Bearer {DEMO_TOKEN}"}
    readme = (REPO / "README.md").read_text()
    assert '{"entry": "invoices.unpaid", "params": {"tenant": "acme"}}' in readme
    response = httpx.post(
        f"{server}/v1/calls",
        json={"entry": "invoices.unpaid", "params": {"tenant": "acme"}},
        headers=headers,
        timeout=60,
    )
    assert response.status_code == 201, response.text
    result = response.json()
    assert result["verdict"] == "ran_clean"
    assert result["rows"] > 0
    assert result["claim"]["verdict"] == "EVIDENCE_PRESENT"
    assert result["contract"]["authority_status"] == "sealed"

    packet = tmp_path / "packet.zip"
    packet.write_bytes(
        httpx.get(f"{server}/v1/packets/{result['packet_id']}", headers=headers, timeout=60).content
    )
    pinned = f"sha256:{result['manifest_hash']['sha256']}"
    verify = subprocess.run(
        [str(BIN / "govex"), "packet", "verify", str(packet), "--expect-manifest-hash", pinned],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "checks passed" in verify.stdout

    ledger = subprocess.run(
        [str(BIN / "govex"), "ledger", "verify"],
        env=demo_env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert ledger.returncode == 0, ledger.stderr
    assert "chain intact" in ledger.stdout


def test_customer_names_are_masked_for_an_analyst_and_shown_to_an_operator(
    server: str,
) -> None:
    def rows(token: str) -> tuple[dict[str, object], list[dict[str, object]]]:
        body = {"entry": "orders.large", "params": {"tenant": "acme", "min_total": 1000}}
        headers = {"Authorization": f"Bearer {token}"}
        result = httpx.post(f"{server}/v1/calls", json=body, headers=headers, timeout=60).json()
        packet = httpx.get(f"{server}/v1/packets/{result['packet_id']}", headers=headers).content
        with zipfile.ZipFile(io.BytesIO(packet)) as bag:
            data = bag.read(f"{result['packet_id']}/data/result.jsonl")
        return result["contract"]["masking"], [json.loads(line) for line in data.splitlines()]

    analyst, masked = rows(DEMO_TOKEN)
    operator, shown = rows("gvx-demo-carol")
    assert analyst["unmasked"] is False
    assert analyst["key_id"]
    assert operator["unmasked"] is True
    assert masked
    assert len(masked) == len(shown)
    for hidden, plain in zip(masked, shown, strict=True):
        assert str(hidden["customer_name"]).startswith("hmac-sha256:")
        assert not str(plain["customer_name"]).startswith("hmac-sha256:")
        assert hidden["order_id"] == plain["order_id"]


def test_the_readme_absence_example_proves_absence(server: str) -> None:
    params = {"tenant": "acme", "issued_before": "2026-03-01"}
    assert (
        json.dumps({"entry": "invoices.unpaid", "params": params})
        in (REPO / "README.md").read_text()
    )
    response = httpx.post(
        f"{server}/v1/calls",
        json={"entry": "invoices.unpaid", "params": params},
        headers={"Authorization": f"Bearer {DEMO_TOKEN}"},
        timeout=60,
    )
    result = response.json()
    assert (result["rows"], result["complete"]) == (0, True)
    assert result["claim"] == {
        "expect": "empty",
        "surface": "exhaustive",
        "verdict": "ABSENT",
        "reason": None,
    }


def test_the_readme_command_example_runs_date(server: str) -> None:
    request = {"entry": "calendar.day", "params": {"day": "2026-06-30"}}
    assert json.dumps(request) in (REPO / "README.md").read_text()
    headers = {"Authorization": f"Bearer {DEMO_TOKEN}"}
    response = httpx.post(f"{server}/v1/calls", json=request, headers=headers, timeout=60)
    assert response.status_code == 201, response.text
    result = response.json()
    assert (result["verdict"], result["complete"]) == ("ran_clean", True)
    assert result["contract"]["boundary"]["engine"] == "command"
    packet = httpx.get(f"{server}/v1/packets/{result['packet_id']}", headers=headers, timeout=60)
    with zipfile.ZipFile(io.BytesIO(packet.content)) as archive:
        stdout = archive.read(f"{result['packet_id']}/data/stdout.txt").decode()
    assert stdout == "Tuesday 2026-06-30: ISO week 27 of 2026, day 181 of the year\n"


def test_the_readme_approval_step_lets_the_analyst_run_a_refund_list(server: str) -> None:
    readme = (REPO / "README.md").read_text()
    approval = {
        "entry": "invoices.overpaid",
        "params": {"tenant": "acme"},
        "requester": "alice",
        "requester_tenant": "acme",
        "ttl_s": 3600,
        "reason": "refund review",
    }
    call = {"entry": "invoices.overpaid", "params": {"tenant": "acme"}}
    assert json.dumps(approval) in readme
    assert json.dumps(call) in readme
    alice = {"Authorization": f"Bearer {DEMO_TOKEN}"}
    carol = {"Authorization": "Bearer gvx-demo-carol"}
    # alice may not approve her own call; carol's approval of other inputs does not count
    refused = httpx.post(f"{server}/v1/approvals", json=approval, headers=alice, timeout=60)
    assert refused.status_code == 403, refused.text
    other = {**approval, "params": {"tenant": "globex"}, "requester_tenant": "globex"}
    assert httpx.post(f"{server}/v1/approvals", json=other, headers=carol).status_code == 201
    blocked = httpx.post(f"{server}/v1/calls", json=call, headers=alice, timeout=60)
    assert blocked.status_code == 403, blocked.text
    assert "no approval of invoices.overpaid" in blocked.json()["detail"]
    granted = httpx.post(f"{server}/v1/approvals", json=approval, headers=carol, timeout=60)
    assert granted.status_code == 201, granted.text
    ran = httpx.post(f"{server}/v1/calls", json=call, headers=alice, timeout=60)
    assert ran.status_code == 201, ran.text
    assert ran.json()["verdict"] == "ran_clean"
    terms = ran.json()["contract"]["approval"]
    assert (terms["state"], terms["approval_id"]) == ("valid", granted.json()["approval_id"])


def test_the_demo_catalog_matches_its_committed_seal() -> None:
    result = subprocess.run(
        [str(BIN / "govex"), "catalog", "verify", str(REPO / "examples/demo/catalog")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_make_run_prints_the_curl_the_readme_shows() -> None:
    makefile = (REPO / "Makefile").read_text()
    assert "Bearer gvx-demo-alice" in makefile
    assert '\\"entry\\": \\"invoices.unpaid\\"' in makefile
