"""Calls as executions: 201 within the wait or 202 and a Location, status, list, events,
cancel, idempotency keys, graceful shutdown and calls a dead worker left unfinished."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from catalog.load import SEAL_FILE, load_catalog_dir, write_seal
from catalog.seal import compute_seal
from ledger.entry import format_ts
from ledger.store import LedgerStore
from service.app import create_app
from service.call_reaper import INTERRUPTED, reap_interrupted
from service.calls import AcceptedCall, accept, run_accepted
from service.contract import CallRequest
from service.runtime import Runtime
from service.settings import Settings
from service.verdicts import Verdict
from tests.e2e.conftest import CATALOG_TOML, QUERIES, write_keys, write_source

SLEEP_TOML = """
[[command]]
id = "cmd.sleep"
title = "Sleeps far past any test's patience"
argv = ["{bin}/sleep"]
mutating = false
timeout_ms = 30000
"""
LEASED_TOML = """
[[query]]
id = "items.leased"
title = "One run at a time"
source = "items"
sql = "queries/all.sql"
lease = { max_concurrent = 1 }
"""
SLEEP_SCRIPT = "import time\nprint('sleeping', flush=True)\ntime.sleep(60)\n"


@pytest.fixture(params=["sqlite", "postgresql"])
def async_world(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    ledger_url = (
        f"sqlite:///{tmp_path / 'ledger.sqlite'}"
        if request.param == "sqlite"
        else request.getfixturevalue("pg_url")
    )
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "sleep"
    script.write_text(f"#!{sys.executable} -I\n{SLEEP_SCRIPT}")
    script.chmod(0o755)
    catalog = tmp_path / "catalog"
    (catalog / "queries").mkdir(parents=True)
    toml = CATALOG_TOML + SLEEP_TOML.replace("{bin}", str(bin_dir)) + LEASED_TOML
    (catalog / "catalog.toml").write_text(toml)
    for name, text in QUERIES.items():
        (catalog / "queries" / name).write_text(text)
    write_seal(catalog / SEAL_FILE, compute_seal(load_catalog_dir(catalog), datetime.now(UTC)))
    return Settings(
        catalog_dir=catalog,
        sources={"items": str(write_source(tmp_path / "items.sqlite", rows=50))},
        keys_file=write_keys(tmp_path / "keys.json"),
        ledger_url=ledger_url,
        packet_root=tmp_path / "packets",
        origin="govex.test/ledger/async",
        shutdown_grace_s=0.2,
    )


@pytest.fixture
def client(async_world: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(async_world), raise_server_exceptions=False) as test_client:
        yield test_client


def _auth(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer tok-{name}"}


def _post(client: TestClient, entry: str, who: str = "alice", **headers: str) -> Any:
    return client.post("/v1/calls", json={"entry": entry}, headers={**_auth(who), **headers})


def _runtime(client: TestClient) -> Runtime:
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    return runtime


def _until_done(client: TestClient, call_id: str, who: str = "alice") -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        status: dict[str, Any] = client.get(f"/v1/calls/{call_id}", headers=_auth(who)).json()
        if status["state"] in {"completed", "failed"}:
            return status
        assert time.monotonic() < deadline, status
        time.sleep(0.05)


def _until_running(client: TestClient, call_id: str) -> None:
    deadline = time.monotonic() + 20
    while client.get(f"/v1/calls/{call_id}", headers=_auth("alice")).json()["state"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.02)


def _entries(settings: Settings) -> list[dict[str, Any]]:
    with LedgerStore.open(settings.ledger_url) as store:
        return [e.model_dump(mode="json") for e in store.list_entries(0, 10_000)]


def test_a_quick_call_answers_201_with_its_result_within_the_wait(client: TestClient) -> None:
    response = _post(client, "items.all")
    assert response.status_code == 201, response.text
    assert response.json()["verdict"] == "ran_clean"
    assert response.headers["Location"] == f"/v1/calls/{response.json()['call_id']}"


def test_respond_async_answers_202_at_once_and_the_call_completes(client: TestClient) -> None:
    response = _post(client, "items.all", Prefer="respond-async")
    assert response.status_code == 202, response.text
    assert response.headers["Preference-Applied"] == "respond-async"
    status = response.json()
    assert response.headers["Location"] == status["links"]["self"]
    assert status["state"] in {"created", "running", "completed"}
    done = _until_done(client, status["call_id"])
    assert (done["state"], done["verdict"]) == ("completed", "ran_clean")
    assert done["links"]["packet"] == f"/v1/packets/{done['packet_id']}"
    assert done["rows"] == 50


def test_a_call_queued_behind_a_busy_thread_answers_at_once_and_runs_when_it_frees(
    async_world: Settings,
) -> None:
    # One thread, busy: both the respond-async call and the one that waits are queued
    # (accepted on the event loop's pool, row created). Giving up waiting must not drop
    # them: each runs once the thread frees.
    settings = async_world.model_copy(update={"call_workers": 1, "call_wait_s": 0.3})
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        sleeper = _post(client, "cmd.sleep", Prefer="respond-async").json()["call_id"]
        _until_running(client, sleeper)
        queued = _post(client, "items.all", Prefer="respond-async")
        waited = _post(client, "items.all")  # waits 0.3 s for a thread that stays busy
        assert (queued.status_code, waited.status_code) == (202, 202), waited.text
        for response in (queued, waited):
            status = client.get(response.headers["Location"], headers=_auth("alice")).json()
            assert status["state"] == "created"
        cancel = client.delete(f"/v1/calls/{sleeper}", headers=_auth("alice"))
        assert cancel.status_code in {200, 202}, cancel.text  # 200: it ended meanwhile
        for response in (queued, waited):
            done = _until_done(client, response.json()["call_id"])
            assert (done["state"], done["verdict"]) == ("completed", "ran_clean")


def test_a_call_past_the_wait_is_202_and_a_cancel_stops_it_ledgered(
    client: TestClient, async_world: Settings
) -> None:
    response = _post(client, "cmd.sleep", Prefer="wait=0.2")
    assert response.status_code == 202, response.text
    call_id = response.json()["call_id"]
    _until_running(client, call_id)
    started = time.monotonic()
    cancelled = client.delete(f"/v1/calls/{call_id}", headers=_auth("alice"))
    assert cancelled.status_code in {200, 202}, cancelled.text
    done = _until_done(client, call_id)
    assert time.monotonic() - started < 10  # its 30 s timeout did not end it: the cancel did
    assert (done["state"], done["verdict"], done["packet_id"]) == ("failed", "error_running", None)
    assert done["cancel_requested_at"] is not None
    entries = [e for e in _entries(async_world) if e["body"].get("call_id") == call_id]
    kinds = [e["kind"] for e in entries]
    assert kinds == ["call.started", "call.cancelled", "call.finished"]
    assert entries[1]["body"]["by"]["id"] == "alice"
    finished = entries[2]["body"]
    assert finished["command"]["killed_reason"] == "cancelled"
    assert "cancelled while running" in finished["error"]
    again = client.delete(f"/v1/calls/{call_id}", headers=_auth("alice"))
    assert again.status_code == 409
    assert again.json()["code"] == "call_not_running"


def test_only_the_caller_or_an_operator_may_cancel(client: TestClient) -> None:
    call_id = _post(client, "cmd.sleep", Prefer="respond-async").json()["call_id"]
    denied = client.delete(f"/v1/calls/{call_id}", headers=_auth("bob"))
    assert denied.status_code == 403, denied.text
    assert denied.json()["code"] == "policy_denied"
    by_operator = client.delete(f"/v1/calls/{call_id}", headers=_auth("carol"))
    assert by_operator.status_code in {200, 202}, by_operator.text
    assert _until_done(client, call_id)["verdict"] == "error_running"
    unknown = client.delete("/v1/calls/01NOSUCHCALL0000000000000", headers=_auth("carol"))
    assert unknown.status_code == 404


def test_events_stream_each_state_then_end(client: TestClient) -> None:
    call_id = _post(client, "items.all", Prefer="respond-async").json()["call_id"]
    with client.stream("GET", f"/v1/calls/{call_id}/events", headers=_auth("alice")) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        text = "".join(stream.iter_text())
    messages = [m for m in text.split("\n\n") if m.startswith("event:")]
    events = [(m.split("\n")[0].removeprefix("event: "), m.split("\n")[1]) for m in messages]
    assert events[-1][0] == "end"
    states = [json.loads(data.removeprefix("data: ")) for kind, data in events if kind == "state"]
    assert states[-1]["state"] == "completed"
    assert states[-1]["verdict"] == "ran_clean"
    forbidden = client.get(f"/v1/calls/{call_id}/events", headers=_auth("carol"))
    assert forbidden.status_code == 200  # operators read every call
    assert client.get("/v1/calls/01NOSUCH/events", headers=_auth("alice")).status_code == 404


def test_calls_are_listed_newest_first_filtered_and_paged(client: TestClient) -> None:
    ids = [_post(client, "items.all").json()["call_id"] for _ in range(3)]
    _post(client, "items.all", who="carol")
    page = client.get("/v1/calls?limit=2", headers=_auth("alice")).json()
    assert [c["call_id"] for c in page["calls"]] == ids[::-1][:2]  # alice sees her own only
    rest = client.get(page["next"], headers=_auth("alice")).json()
    assert [c["call_id"] for c in rest["calls"]] == ids[:1]
    everyone = client.get("/v1/calls?entry=items.all", headers=_auth("bob")).json()["calls"]
    assert {c["principal"] for c in everyone} == {"alice", "carol"}
    only_carol = client.get("/v1/calls?principal=carol", headers=_auth("bob")).json()["calls"]
    assert [c["principal"] for c in only_carol] == ["carol"]
    refused = client.get("/v1/calls?principal=carol", headers=_auth("alice"))
    assert refused.status_code == 403
    none = client.get("/v1/calls?verdict=timed_out", headers=_auth("bob")).json()
    assert none == {"calls": [], "next": None}


def test_an_idempotency_key_returns_the_call_it_started(
    client: TestClient, async_world: Settings
) -> None:
    first = _post(client, "items.all", **{"Idempotency-Key": "order-42"})
    assert first.status_code == 201, first.text
    retried = _post(client, "items.all", **{"Idempotency-Key": "order-42"})
    assert retried.status_code == 200, retried.text
    assert retried.headers["Idempotent-Replayed"] == "true"
    assert retried.json()["call_id"] == first.json()["call_id"]
    assert retried.json()["packet_id"] == first.json()["packet_id"]
    started = [e for e in _entries(async_world) if e["kind"] == "call.started"]
    assert len(started) == 1  # it ran once
    other_body = client.post(
        "/v1/calls",
        json={"entry": "items.all", "format": "csv"},
        headers={**_auth("alice"), "Idempotency-Key": "order-42"},
    )
    assert other_body.status_code == 422
    assert other_body.json()["code"] == "idempotency_key_reused"
    own_key = _post(client, "items.all", who="carol", **{"Idempotency-Key": "order-42"})
    assert own_key.status_code == 201  # keys are per principal
    assert own_key.json()["call_id"] != first.json()["call_id"]
    bad = _post(client, "items.all", **{"Idempotency-Key": "x" * 201})
    assert bad.status_code == 400
    assert bad.json()["code"] == "invalid_idempotency_key"


def test_shutdown_cancels_what_outlives_the_grace_and_finishes_it_in_the_ledger(
    async_world: Settings,
) -> None:
    with TestClient(create_app(async_world), raise_server_exceptions=False) as client:
        call_id = _post(client, "cmd.sleep", Prefer="respond-async").json()["call_id"]
        _until_running(client, call_id)
    finished = [
        e
        for e in _entries(async_world)
        if e["kind"] == "call.finished" and e["body"]["call_id"] == call_id
    ]
    assert len(finished) == 1
    assert finished[0]["body"]["verdict"] == "error_running"
    assert finished[0]["body"]["command"]["killed_reason"] == "cancelled"
    with TestClient(create_app(async_world), raise_server_exceptions=False) as client:
        status = client.get(f"/v1/calls/{call_id}", headers=_auth("alice")).json()
    assert (status["state"], status["verdict"]) == ("failed", "error_running")


def test_a_call_a_dead_worker_left_unfinished_is_finished_as_interrupted(
    client: TestClient, async_world: Settings
) -> None:
    runtime = _runtime(client)
    principal = runtime.auth.authenticate("Bearer tok-alice", runtime.clock())
    accepted = accept(runtime, principal, CallRequest(entry="items.all"), request_id=None)
    assert isinstance(accepted, AcceptedCall)  # started in the ledger, then its worker "died"
    assert reap_interrupted(runtime) == []  # its deadline has not passed
    runtime.calls.update(accepted.call_id, deadline_at=format_ts(runtime.clock()))
    assert reap_interrupted(runtime) == [accepted.call_id]
    assert reap_interrupted(runtime) == []  # finished once
    finished = _entries(async_world)[-1]
    assert (finished["kind"], finished["body"]["call_id"]) == ("call.finished", accepted.call_id)
    assert (finished["body"]["verdict"], finished["body"]["error"]) == (
        "error_running",
        INTERRUPTED,
    )
    status = client.get(f"/v1/calls/{accepted.call_id}", headers=_auth("alice")).json()
    assert (status["state"], status["verdict"]) == ("failed", "error_running")


def test_a_call_reaped_while_waiting_for_a_thread_never_runs(
    client: TestClient, async_world: Settings
) -> None:
    runtime = _runtime(client)
    principal = runtime.auth.authenticate("Bearer tok-alice", runtime.clock())
    accepted = accept(runtime, principal, CallRequest(entry="items.all"), request_id=None)
    assert isinstance(accepted, AcceptedCall)
    runtime.calls.update(accepted.call_id, deadline_at=format_ts(runtime.clock()))
    assert reap_interrupted(runtime) == [accepted.call_id]
    result = run_accepted(runtime, accepted)  # its thread frees up only now
    assert (result.verdict, result.packet_id) == (Verdict.error_running, None)
    finished = [
        e
        for e in _entries(async_world)
        if e["kind"] == "call.finished" and e["body"]["call_id"] == accepted.call_id
    ]
    assert len(finished) == 1  # the reaper's; the late run added none
    assert list(async_world.packet_root.glob("*.zip")) == []


def test_a_call_whose_lease_was_reclaimed_while_it_waited_is_blocked_not_run(
    client: TestClient,
) -> None:
    runtime = _runtime(client)
    principal = runtime.auth.authenticate("Bearer tok-alice", runtime.clock())
    accepted = accept(runtime, principal, CallRequest(entry="items.leased"), request_id=None)
    assert isinstance(accepted, AcceptedCall)
    assert accepted.lease is not None
    # It waited past its lease's TTL; the lease was reclaimed and another call took the slot.
    assert runtime.leases.release(accepted.lease)
    other = runtime.leases.acquire(
        "items.leased",
        "01OTHERCALL",
        max_concurrent=1,
        ttl=timedelta(seconds=30),
        now=runtime.clock(),
    )
    result = run_accepted(runtime, accepted)
    assert (result.verdict, result.packet_id) == (Verdict.blocked, None)
    assert "lease expired while it waited" in (result.error or "")
    assert runtime.leases.release(other)  # the other call's lease was left alone


def test_a_call_that_starts_renews_its_lease_for_its_whole_run(client: TestClient) -> None:
    runtime = _runtime(client)
    principal = runtime.auth.authenticate("Bearer tok-alice", runtime.clock())
    accepted = accept(runtime, principal, CallRequest(entry="items.leased"), request_id=None)
    assert isinstance(accepted, AcceptedCall)
    result = run_accepted(runtime, accepted)
    assert result.verdict == Verdict.ran_clean
