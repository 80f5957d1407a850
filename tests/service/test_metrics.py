"""Metrics from what the ledger holds, on a real SQLite ledger; labels stay bounded."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ledger.store import LedgerStore
from service.metrics import OTHER_ENTRY, UNMATCHED_ROUTE, Metrics

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
DIGEST = {"sha256": "a" * 64, "blake3": "b" * 64}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LedgerStore]:
    ledger = LedgerStore.open(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    try:
        yield ledger
    finally:
        ledger.close()


@pytest.fixture
def metrics(store: LedgerStore) -> Metrics:
    observed = Metrics(["items.all", "items.slow"])
    store.observe(observed.ledger_entry)
    return observed


def _value(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def _finished(call_id: str, verdict: str, rows: int, size: int, ms: int) -> dict[str, Any]:
    return {
        "call_id": call_id,
        "verdict": verdict,
        "exit_code": 0,
        "result_digest": DIGEST if rows else None,
        "rows": rows,
        "bytes": size,
        "duration_ms": ms,
    }


def test_a_finished_call_counts_by_entry_and_verdict_with_rows_bytes_and_duration(
    store: LedgerStore, metrics: Metrics
) -> None:
    store.append("call.started", {"call_id": "c1", "contract": {"entry": {"id": "items.all"}}}, NOW)
    store.append("call.finished", _finished("c1", "ran_clean", 20, 1500, 250), NOW)
    assert _value(metrics, "govex_calls_total", entry="items.all", verdict="ran_clean") == 1
    assert _value(metrics, "govex_exported_rows_total", entry="items.all") == 20
    assert _value(metrics, "govex_exported_bytes_total", entry="items.all") == 1500
    assert _value(metrics, "govex_call_duration_seconds_count", entry="items.all") == 1
    assert _value(metrics, "govex_call_duration_seconds_sum", entry="items.all") == 0.25
    for kind in ("call.started", "call.finished"):
        assert _value(metrics, "govex_ledger_appends_total", kind=kind) == 1


def test_refusals_count_as_blocked_and_lease_refusals_apart(
    store: LedgerStore, metrics: Metrics
) -> None:
    contract = {"entry": {"id": "items.slow"}}
    store.append(
        "call.denied",
        {"call_id": "c2", "reason": "full", "code": "lease_unavailable", "contract": contract},
        NOW,
    )
    store.append(
        "call.denied",
        {"call_id": "c3", "reason": "no", "code": "policy_denied", "contract": contract},
        NOW,
    )
    assert _value(metrics, "govex_calls_total", entry="items.slow", verdict="blocked") == 2
    assert _value(metrics, "govex_lease_refusals_total", entry="items.slow") == 1


def test_an_entry_the_catalog_does_not_have_is_never_a_label(
    store: LedgerStore, metrics: Metrics
) -> None:
    # A refused request names whatever entry the caller typed: that text stays out.
    store.append(
        "call.denied",
        {
            "call_id": "c4",
            "reason": "unknown entry",
            "code": "unknown_entry",
            "contract": {"entry_id": "drop table; secret=hunter2"},
        },
        NOW,
    )
    text = metrics.render().decode()
    assert "hunter2" not in text
    assert _value(metrics, "govex_calls_total", entry=OTHER_ENTRY, verdict="blocked") == 1


def test_auth_refusals_count_by_code(store: LedgerStore, metrics: Metrics) -> None:
    body = {
        "via": "http",
        "client": "127.0.0.1",
        "request": "GET /v1/catalog",
        "request_id": None,
        "code": "unauthenticated",
        "reason": "unknown API key",
        "where": "api_key",
    }
    store.append("auth.refused", body, NOW)
    store.append("auth.refused", body, NOW)
    assert _value(metrics, "govex_auth_failures_total", code="unauthenticated") == 2


def test_http_requests_are_labelled_by_template_and_bounded_method() -> None:
    metrics = Metrics()
    metrics.http_request("GET", "/v1/calls/{call_id}", 200, 0.01)
    metrics.http_request("BREW", None, 405, 0.001)
    assert (
        _value(
            metrics,
            "govex_http_requests_total",
            method="GET",
            route="/v1/calls/{call_id}",
            status="200",
        )
        == 1
    )
    assert (
        _value(
            metrics,
            "govex_http_requests_total",
            method="OTHER",
            route=UNMATCHED_ROUTE,
            status="405",
        )
        == 1
    )
    assert (
        _value(
            metrics,
            "govex_http_request_duration_seconds_count",
            method="GET",
            route="/v1/calls/{call_id}",
        )
        == 1
    )


def test_each_metrics_object_has_its_own_registry() -> None:
    one, two = Metrics(["a.b"]), Metrics(["a.b"])
    one.call_finished("a.b", "ran_clean", 0.1, 1, 2)
    assert _value(one, "govex_calls_total", entry="a.b", verdict="ran_clean") == 1
    assert _value(two, "govex_calls_total", entry="a.b", verdict="ran_clean") == 0


def test_an_observer_that_fails_never_fails_the_append(store: LedgerStore) -> None:
    def broken(_: object) -> None:
        raise RuntimeError("observer bug")

    store.observe(broken)
    entry = store.append("call.started", {"call_id": "c9", "contract": {"entry": {"id": "x"}}}, NOW)
    assert store.get(entry.seq).seq == entry.seq
