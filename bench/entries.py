"""Realistic ledger entry bodies for the ledger benchmarks: what one call records.

A call appends ``call.started`` (its whole Call Contract, 19 fields as
``service.contract.CallContract.record()`` gives them, about 1.7 kB of entry
bytes) and ``call.finished`` (about 0.5 kB). The values vary from call to call
(caller, entry, inputs, digests, row counts); the shapes are the real ones,
taken from a demo call.
"""

from __future__ import annotations

import functools
import hashlib
from typing import Any

from service.run_sql import BOUNDARY_SQLITE

CALL_ID_LENGTH = 26  # a ULID's length; the ledger takes any opaque id of 1..128 [A-Za-z0-9_-]

_USERS = (
    ("alice", "acme", "analyst"),
    ("bob", "acme", "operator"),
    ("carol", "globex", "analyst"),
    ("dave", "initech", "auditor"),
)
_ENTRIES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("orders.by_customer", {"customer_id": 48}),
    ("invoices.unpaid", {}),
    ("orders.by_day", {"day": "2026-11-23", "limit": 500}),
    ("customers.search", {"name_prefix": "Sm", "active": True}),
)
_VERDICTS = (("ran_clean", 0), ("ran_with_drift", 1), ("ran_clean", 0), ("timed_out", 3))


def call_id(number: int, prefix: str = "01BENCH") -> str:
    """A 26-character opaque call id, unique per ``number`` (and per ``prefix``)."""
    return f"{prefix}{number:0{CALL_ID_LENGTH - len(prefix)}d}"


def _digest(seed: str) -> dict[str, str]:
    """A FORMATS digest set with real-looking (but made-up) values."""
    return {
        "blake3": hashlib.sha256(b"b3:" + seed.encode()).hexdigest(),
        "sha256": hashlib.sha256(seed.encode()).hexdigest(),
    }


VARIANTS = len(_USERS) * len(_ENTRIES)  # distinct call shapes before they repeat


def service_started_body() -> dict[str, Any]:
    """The ``service.started`` body a ledger begins with."""
    return {
        "authority_status": "sealed",
        "catalog": {"name": "demo", "version": "1.0.0"},
        "catalog_digest": _digest("catalog"),
        "module_sha256": hashlib.sha256(b"module").hexdigest(),
        "origin": "bench.localhost/ledger",
        "policy_digest": _digest("policy"),
        "provisional_reason": None,
        "version": "0.1.0",
    }


def started(call: str, variant: int) -> dict[str, Any]:
    """:func:`call_started_body` from a cached template: fresh top-level dicts, shared leaves.

    What a caller costs to build a body is not what the ledger benchmark
    measures; the store never mutates a body it was given.
    """
    template = _started_template(variant % VARIANTS)
    return {"call_id": call, "contract": {**template["contract"], "call_id": call}}


def finished(call: str, variant: int) -> dict[str, Any]:
    """:func:`call_finished_body` from a cached template (see :func:`started`)."""
    return {**_finished_template(variant % VARIANTS), "call_id": call}


@functools.cache
def _started_template(variant: int) -> dict[str, Any]:
    return call_started_body(call_id(0), variant)


@functools.cache
def _finished_template(variant: int) -> dict[str, Any]:
    return call_finished_body(call_id(0), variant)


def call_started_body(call: str, variant: int) -> dict[str, Any]:
    """The ``call.started`` body of call ``call``: ``{"call_id", "contract"}``."""
    user, tenant, role = _USERS[variant % len(_USERS)]
    entry_id, extra_inputs = _ENTRIES[variant // len(_USERS) % len(_ENTRIES)]
    inputs: dict[str, Any] = {"tenant": tenant, **extra_inputs}
    contract = {
        "authority_status": "sealed",
        "boundary": {
            "controls": list(BOUNDARY_SQLITE),
            "engine": "sqlite",
            "source": "demo",
        },
        "call_id": call,
        "catalog": {"catalog_digest": _digest("catalog"), "name": "demo", "version": "1.0.0"},
        "entry": {"entry_digest": _digest(entry_id), "id": entry_id, "kind": "query"},
        "exit_semantics": {
            "blocked": 4,
            "error_running": 2,
            "ran_clean": 0,
            "ran_with_drift": 1,
            "timed_out": 3,
        },
        "identity": {
            "auth_method": "api_key",
            "id": user,
            "key_id": f"demo-{user}",
            "roles": [role],
            "tenant": tenant,
        },
        "inputs": inputs,
        "inputs_digest": _digest(f"inputs-{variant}"),
        "lease": None,
        "max_bytes": 5_000_000,
        "max_rows": 10_000,
        "mode": "run",
        "output_format": "jsonl",
        "policy": {
            "action": "call",
            "decision": "allow",
            "determining_policies": ["permit-call-analysts-operators"],
            "errors": [],
            "policy_digest": _digest("policy"),
        },
        "request_id": None,
        "tenant_relation": "own",
        "timeout_ms": 5000,
    }
    return {"call_id": call, "contract": contract}


def call_finished_body(call: str, variant: int) -> dict[str, Any]:
    """The ``call.finished`` body of call ``call`` (verdict, exit code, result digest, sizes)."""
    verdict, exit_code = _VERDICTS[variant % len(_VERDICTS)]
    rows = (variant * 7919) % 10_000
    return {
        "bytes": rows * 155 + 61,
        "call_id": call,
        "complete": True,
        "duration_ms": 3 + variant % 40,
        "error": None,
        "exit_code": exit_code,
        "result_digest": _digest(f"result-{variant}"),
        "rows": rows,
        "verdict": verdict,
    }
