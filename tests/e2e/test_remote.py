"""The Python client and ``govex remote`` against a real uvicorn on loopback."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.app import create_app
from service.client import GovexClient, GovexProblem
from service.settings import Settings
from tests.e2e.servers import running_uvicorn


@pytest.fixture
def base_url(world: Settings) -> Iterator[str]:
    with running_uvicorn(create_app(world)) as url:
        yield url


@pytest.fixture
def govex(base_url: str) -> Iterator[GovexClient]:
    with GovexClient(base_url, "tok-alice") as client:
        yield client


def test_call_then_verify_offline_pinned_to_the_reported_manifest_hash(
    govex: GovexClient, tmp_path: Path
) -> None:
    result = govex.call("items.all")
    assert result["verdict"] == "ran_clean"
    report = govex.verify(result["call_id"], tmp_path / "packet.zip")
    assert report.ok, report.summary_text
    assert zipfile.is_zipfile(tmp_path / "packet.zip")
    assert not list(tmp_path.glob(".download-*"))  # nothing half-written is left


def test_a_packet_changed_at_rest_fails_verification(
    govex: GovexClient, world: Settings, tmp_path: Path
) -> None:
    result = govex.call("items.all")
    stored = world.packet_root / f"{result['packet_id']}.zip"
    other = govex.call("items.by_tenant")
    stored.write_bytes((world.packet_root / f"{other['packet_id']}.zip").read_bytes())
    report = govex.verify(result["call_id"], tmp_path / "swapped.zip")
    assert not report.ok
    failed = [check.name for check in report.checks if check.status == "fail"]
    assert failed[0] in {"schema", "manifest_hash"}, failed


def test_respond_async_then_wait_follows_events_to_the_end(govex: GovexClient) -> None:
    accepted = govex.call("items.all", respond_async=True)
    assert accepted["state"] in {"created", "running", "completed"}
    seen: list[dict[str, Any]] = []
    done = govex.wait(accepted["call_id"], timeout_s=30, on_progress=seen.append)
    assert (done["state"], done["verdict"]) == ("completed", "ran_clean")
    assert all(status["call_id"] == accepted["call_id"] for status in seen)


def test_calls_pages_through_every_call(govex: GovexClient) -> None:
    ids = [govex.call("items.all")["call_id"] for _ in range(3)]
    listed = [status["call_id"] for status in govex.calls(entry="items.all", limit=1)]
    assert listed == ids[::-1]


def test_a_refusal_is_a_problem_with_its_code(govex: GovexClient) -> None:
    with pytest.raises(GovexProblem) as caught:
        govex.call("items.nope")
    assert (caught.value.status, caught.value.code) == (404, "unknown_entry")


def _remote(*args: str) -> tuple[int, str, str]:
    """``govex remote ...`` in its own process (the server logs to this one's stdout)."""
    result = subprocess.run(
        [str(Path(sys.executable).parent / "govex"), "remote", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return result.returncode, result.stdout, result.stderr


def test_govex_remote_call_waits_downloads_and_verifies(base_url: str, tmp_path: Path) -> None:
    out = tmp_path / "p.zip"
    code, stdout, stderr = _remote(
        "call", "items.all", "--url", base_url, "--key", "tok-alice", "--out", str(out)
    )
    assert code == 0, stderr
    assert json.loads(stdout)["verdict"] == "ran_clean"
    assert out.is_file()
    assert "checks passed" in stderr


def test_govex_remote_exit_codes_follow_the_verdict_and_refusals(base_url: str) -> None:
    common = ("--url", base_url, "--key", "tok-alice")
    code, stdout, _ = _remote("call", "items.slow", *common)
    assert code == 3  # timed_out
    assert json.loads(stdout)["verdict"] == "timed_out"
    code, _, stderr = _remote("call", "items.nope", *common)
    assert code == 4
    assert "error [unknown_entry]" in stderr
    code, stdout, stderr = _remote("call", "items.all", "--no-wait", *common)
    assert code == 0, stderr
    call_id = json.loads(stdout)["call_id"]
    code, stdout, stderr = _remote("wait", call_id, *common)
    assert code == 0, stderr
    assert json.loads(stdout)["state"] == "completed"
    code, _, stderr = _remote("cancel", call_id, *common)
    assert code == 4
    assert "call_not_running" in stderr
    code, stdout, _ = _remote("list", "--limit", "2", *common)
    assert code == 0
    assert len(stdout.splitlines()) == 2
    code, _, stderr = _remote("status", call_id, "--url", "http://127.0.0.1:9", "--key", "k")
    assert code == 2
    assert "error [unreachable]" in stderr


def test_the_client_reports_an_unreachable_service_as_a_transport_error() -> None:
    with (
        GovexClient("http://127.0.0.1:9", "k", timeout_s=2) as client,
        pytest.raises(httpx.TransportError),
    ):
        client.status("01ANYCALL")
