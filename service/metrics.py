"""Prometheus metrics of one server process, in a registry of their own (``GET /metrics``).

Each app holds one :class:`Metrics` (``app.state.metrics``): no global registry, so many
apps can live in one process (the tests build dozens). Two feeds fill it:

- the ledger: :meth:`Metrics.ledger_entry` observes every entry this process appends
  (``LedgerStore.observe``), once it is durable, and derives the call metrics from what is
  ledgered: ``call.finished`` (entry, verdict, run duration, rows, bytes), ``call.denied``
  (verdict ``blocked``; a lease refusal when its code is ``lease_unavailable``) and
  ``auth.refused``. Metrics then count exactly what the evidence holds, and the call path
  needs no hook of its own;
- the HTTP middleware (``service.app``): :meth:`Metrics.http_request` per request, by route
  template (``/v1/calls/{call_id}``, never the raw path) and status.

No label holds an input, a credential or a caller-chosen text: entries are labelled only
when the catalog has them (``_other`` otherwise), methods outside the HTTP verbs are
``OTHER``, an unrouted path is ``_unmatched``, and auth failures are labelled by the
problem code. Values are per process: with several workers, each has its own (see
docs/operations.md).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from ledger.entry import Entry

CONTENT_TYPE = CONTENT_TYPE_LATEST
OTHER_ENTRY = "_other"
UNMATCHED_ROUTE = "_unmatched"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_MAX_RUNNING = 10_000  # call ids remembered between call.started and call.finished
_CALL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
_HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Metrics:
    """The counters and histograms of one app; thread-safe (prometheus_client's are)."""

    def __init__(self, entries: Iterable[str] = ()) -> None:
        """A fresh registry; ``entries`` are the catalog's entry ids (the only entry labels)."""
        self.registry = CollectorRegistry(auto_describe=True)
        self._entries = frozenset(entries)
        self._running: OrderedDict[str, str] = OrderedDict()  # call id -> entry label
        self._lock = threading.Lock()
        registry = self.registry
        self.calls = Counter(
            "govex_calls",
            "Calls ended, by entry and verdict.",
            ["entry", "verdict"],
            registry=registry,
        )
        self.call_duration = Histogram(
            "govex_call_duration_seconds",
            "How long calls ran (call.finished duration_ms), by entry.",
            ["entry"],
            buckets=_CALL_BUCKETS,
            registry=registry,
        )
        self.rows = Counter(
            "govex_exported_rows",
            "Rows written to result files, by entry.",
            ["entry"],
            registry=registry,
        )
        self.bytes = Counter(
            "govex_exported_bytes",
            "Bytes of result files written, by entry.",
            ["entry"],
            registry=registry,
        )
        self.ledger_appends = Counter(
            "govex_ledger_appends",
            "Ledger entries this process appended, by kind.",
            ["kind"],
            registry=registry,
        )
        self.lease_refusals = Counter(
            "govex_lease_refusals",
            "Calls refused because every run slot of their lease was held, by entry.",
            ["entry"],
            registry=registry,
        )
        self.auth_failures = Counter(
            "govex_auth_failures",
            "Refused authentications (auth.refused), by code.",
            ["code"],
            registry=registry,
        )
        self.http_requests = Counter(
            "govex_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.http_duration = Histogram(
            "govex_http_request_duration_seconds",
            "HTTP request durations, by method and route template.",
            ["method", "route"],
            buckets=_HTTP_BUCKETS,
            registry=registry,
        )

    def render(self) -> bytes:
        """The registry in the Prometheus text format (:data:`CONTENT_TYPE`)."""
        return generate_latest(self.registry)

    def entry_label(self, entry_id: object) -> str:
        """``entry_id`` when the catalog has it; :data:`OTHER_ENTRY` for anything else."""
        return entry_id if isinstance(entry_id, str) and entry_id in self._entries else OTHER_ENTRY

    # -- the API for the call path ---------------------------------------------------------

    def call_finished(
        self,
        entry: str,
        verdict: str,
        duration_s: float | None = None,
        rows: int | None = None,
        bytes_: int | None = None,
    ) -> None:
        """One call ended with ``verdict`` (``blocked`` for a refusal: no duration)."""
        label = self.entry_label(entry)
        self.calls.labels(entry=label, verdict=verdict).inc()
        if duration_s is not None:
            self.call_duration.labels(entry=label).observe(max(duration_s, 0.0))
        if rows:
            self.rows.labels(entry=label).inc(rows)
        if bytes_:
            self.bytes.labels(entry=label).inc(bytes_)

    def ledger_append(self, kind: str) -> None:
        self.ledger_appends.labels(kind=kind).inc()

    def lease_refused(self, entry: str) -> None:
        self.lease_refusals.labels(entry=self.entry_label(entry)).inc()

    def auth_failed(self, code: str) -> None:
        self.auth_failures.labels(code=code).inc()

    def http_request(self, method: str, route: str | None, status: int, duration_s: float) -> None:
        """One answered request; ``route`` is the matched route's template (None: unrouted)."""
        verb = method if method in _METHODS else "OTHER"
        template = route or UNMATCHED_ROUTE
        self.http_requests.labels(method=verb, route=template, status=str(status)).inc()
        self.http_duration.labels(method=verb, route=template).observe(max(duration_s, 0.0))

    # -- the ledger feed -------------------------------------------------------------------

    def ledger_entry(self, entry: Entry) -> None:
        """Count one durable entry, and what it says of calls and authentications."""
        kind = entry.kind.value
        body = entry.body
        self.ledger_append(kind)
        if kind == "call.started":
            self._started(str(body.get("call_id")), _contract_entry(body.get("contract")))
        elif kind == "call.finished":
            self._finished(body)
        elif kind == "call.denied":
            entry_id = _contract_entry(body.get("contract"))
            self.call_finished(entry_id, "blocked")
            if body.get("code") == "lease_unavailable":
                self.lease_refused(entry_id)
        elif kind == "auth.refused":
            self.auth_failed(str(body.get("code")))

    def _started(self, call_id: str, entry_id: str) -> None:
        with self._lock:
            self._running[call_id] = entry_id
            while len(self._running) > _MAX_RUNNING:
                self._running.popitem(last=False)

    def _finished(self, body: Mapping[str, Any]) -> None:
        with self._lock:
            entry_id = self._running.pop(str(body.get("call_id")), OTHER_ENTRY)
        duration_ms = body.get("duration_ms")
        self.call_finished(
            entry_id,
            str(body.get("verdict")),
            duration_ms / 1000 if isinstance(duration_ms, int) else None,
            _count(body.get("rows")),
            _count(body.get("bytes")),
        )


def _contract_entry(contract: object) -> str:
    """Private: the entry id a ledgered contract names (a built one, or a refused request's)."""
    if not isinstance(contract, dict):
        return OTHER_ENTRY
    entry = contract.get("entry")
    if isinstance(entry, dict) and isinstance(entry.get("id"), str):
        return str(entry["id"])
    entry_id = contract.get("entry_id")
    return entry_id if isinstance(entry_id, str) else OTHER_ENTRY


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
