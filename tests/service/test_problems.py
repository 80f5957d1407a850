"""Every error class maps once to a problem and an exit code (STYLE G3)."""

from __future__ import annotations

import pytest

from catalog.errors import (
    CanonicalizationError,
    CatalogError,
    CatalogErrors,
    CatalogLoadError,
    InputError,
    InputErrors,
    SealError,
    SealMismatch,
    SqlRejected,
    UnknownEntry,
)
from ledger import errors as ledger_errors
from ledger.errors import LedgerError, LedgerVerifyError
from service import errors as service_errors
from service.errors import CallBlocked, PolicyDenied, QueryTimedOut, ServiceError
from service.packets import errors as packet_errors
from service.packets.errors import PacketError
from service.problems import INTERNAL, exit_code, problem_body, problem_code, problem_kind

ROOTS: tuple[type[Exception], ...] = (CatalogError, LedgerError, ServiceError, PacketError)


def _input_error() -> InputError:
    return InputError(entry="a.b", parameter="n", reason="above the maximum 3")


SAMPLES: dict[type[Exception], Exception] = {
    CatalogError: CatalogError("x"),
    CanonicalizationError: CanonicalizationError("x", where="/a"),
    CatalogLoadError: CatalogLoadError(
        "bad key", file="catalog.toml", line=3, entry="a.b", key="title"
    ),
    SqlRejected: SqlRejected(
        entry="a.b", file="q.sql", line=2, rule="locking_clause", detail="FOR UPDATE"
    ),
    CatalogErrors: CatalogErrors([CatalogError("one"), CatalogError("two")]),
    UnknownEntry: UnknownEntry("a.b"),
    SealError: SealError("no seal"),
    SealMismatch: SealMismatch(changed=["a.b"], added=[], removed=["c.d"]),
    InputError: _input_error(),
    InputErrors: InputErrors([_input_error()]),
    LedgerError: LedgerError("x"),
    ledger_errors.CanonicalizationError: ledger_errors.CanonicalizationError("x"),
    ledger_errors.InvalidTimestamp: ledger_errors.InvalidTimestamp("naive"),
    ledger_errors.AppendRefused: ledger_errors.AppendRefused("bad body", kind="call.started"),
    ledger_errors.EntryNotFound: ledger_errors.EntryNotFound(7),
    ledger_errors.CorruptEntry: ledger_errors.CorruptEntry(seq=3, detail="not JSON"),
    LedgerVerifyError: LedgerVerifyError(seq=4, check="prev", detail="mismatch"),
    ledger_errors.ProofError: ledger_errors.ProofError("x", index=1, size=2),
    ledger_errors.RootMismatch: ledger_errors.RootMismatch(
        index=1, size=2, expected=b"a", calculated=b"b"
    ),
    ServiceError: ServiceError("x"),
    service_errors.Unauthenticated: service_errors.Unauthenticated("no credential"),
    PolicyDenied: PolicyDenied("no", action="call", resource="a.b", policies=("forbid-x",)),
    service_errors.NotFound: service_errors.NotFound("call", "01X"),
    service_errors.CatalogNotRunnable: service_errors.CatalogNotRunnable("drift", where="a.b"),
    service_errors.SourceUnavailable: service_errors.SourceUnavailable("gone"),
    service_errors.QueryFailed: service_errors.QueryFailed("syntax"),
    QueryTimedOut: QueryTimedOut("late", timeout_ms=10),
    service_errors.StartupRefused: service_errors.StartupRefused("seal"),
    service_errors.ConfigurationError: service_errors.ConfigurationError("bad"),
    CallBlocked: CallBlocked(
        PolicyDenied("no", action="call", resource="a.b", policies=("p",)), call_id="01C", seq=9
    ),
    PacketError: PacketError("x"),
    packet_errors.PacketLayoutError: packet_errors.PacketLayoutError(
        path="../x", detail="escapes the bag"
    ),
    packet_errors.BagInvalidError: packet_errors.BagInvalidError(
        [packet_errors.BagProblem("r", "p", "d")]
    ),
    packet_errors.PacketBuildError: packet_errors.PacketBuildError(path="data/x", detail="bad"),
    packet_errors.UnsupportedValueError: packet_errors.UnsupportedValueError(
        path="data/x", row=1, column="c", detail="bad"
    ),
}


def _all_subclasses(root: type[Exception]) -> set[type[Exception]]:
    found = {root}
    for sub in root.__subclasses__():
        found |= _all_subclasses(sub)
    return found


def test_every_error_class_has_a_sample() -> None:
    every = set().union(*(_all_subclasses(r) for r in ROOTS))
    assert every - set(SAMPLES) == set(), "add the new error class to SAMPLES and check its mapping"


@pytest.mark.parametrize("exc", list(SAMPLES.values()), ids=[c.__name__ for c in SAMPLES])
def test_each_error_maps_to_a_problem_and_an_exit_code(exc: Exception) -> None:
    kind = problem_kind(exc)
    assert kind is not INTERNAL, "domain errors never become internal_error"
    assert 400 <= kind.status < 600
    assert kind.hint
    assert exit_code(exc) in {0, 1, 2, 3, 4}
    body = problem_body(exc, request_id="r-1", instance="/v1/x")
    assert {"type", "title", "status", "detail", "code", "hint", "errors", "request_id"} <= set(
        body
    )
    assert body["type"] == f"urn:govex:problem:{body['code']}"
    assert body["request_id"] == "r-1"


@pytest.mark.parametrize(
    ("exc", "status", "code", "exit_status"),
    [
        pytest.param(SAMPLES[InputErrors], 422, "invalid_input", 4, id="inputs-blocked"),
        pytest.param(SAMPLES[PolicyDenied], 403, "policy_denied", 4, id="policy-blocked"),
        pytest.param(SAMPLES[UnknownEntry], 404, "unknown_entry", 4, id="unknown-entry-blocked"),
        pytest.param(SAMPLES[QueryTimedOut], 504, "timed_out", 3, id="timed-out"),
        pytest.param(
            SAMPLES[service_errors.QueryFailed], 502, "query_failed", 2, id="error-running"
        ),
        pytest.param(
            SAMPLES[LedgerVerifyError], 409, "ledger_invalid", 1, id="ledger-check-failed"
        ),
        pytest.param(
            SAMPLES[service_errors.Unauthenticated], 401, "unauthenticated", 4, id="unauthenticated"
        ),
        pytest.param(SAMPLES[CallBlocked], 403, "policy_denied", 4, id="blocked-takes-its-cause"),
    ],
)
def test_mappings_follow_formats_section_6(
    exc: Exception, status: int, code: str, exit_status: int
) -> None:
    assert problem_kind(exc).status == status
    assert problem_code(exc) == code
    assert exit_code(exc) == exit_status


def test_errors_list_names_each_place() -> None:
    assert problem_body(SAMPLES[InputErrors], request_id=None)["errors"] == [
        {"entry": "a.b", "parameter": "n", "pointer": "/params/n", "detail": "above the maximum 3"}
    ]
    assert problem_body(SAMPLES[SealMismatch], request_id=None)["errors"] == [
        {"entry": "a.b", "change": "changed"},
        {"entry": "c.d", "change": "removed"},
    ]
    blocked = problem_body(SAMPLES[CallBlocked], request_id=None)
    assert (blocked["call_id"], blocked["ledger_seq"], blocked["determining_policies"]) == (
        "01C",
        9,
        ["p"],
    )


def test_unknown_exceptions_say_nothing_of_their_cause() -> None:
    body = problem_body(RuntimeError("password=hunter2 at /srv/x.py line 3"), request_id="r")
    assert body["code"] == "internal_error"
    assert body["status"] == 500
    assert "hunter2" not in str(body)
    assert exit_code(RuntimeError()) == 2
