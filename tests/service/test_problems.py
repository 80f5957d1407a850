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
    ledger_errors.LedgerTruncated: ledger_errors.LedgerTruncated(size=3, checkpoint_size=5),
    ledger_errors.LedgerForked: ledger_errors.LedgerForked(
        start=2, stop=5, expected=b"a" * 32, calculated=b"b" * 32
    ),
    ledger_errors.ProofError: ledger_errors.ProofError("x", index=1, size=2),
    ledger_errors.RootMismatch: ledger_errors.RootMismatch(
        index=1, size=2, expected=b"a", calculated=b"b"
    ),
    ledger_errors.ConsistencyProofError: ledger_errors.ConsistencyProofError(
        "proof has 3 hashes, expected 2", size1=2, size2=5
    ),
    ledger_errors.ConsistencyMismatch: ledger_errors.ConsistencyMismatch(
        size1=2, size2=5, which="old", expected=b"a" * 32, calculated=b"b" * 32
    ),
    ledger_errors.NoteError: ledger_errors.NoteError("no verifiers", where="verifiers"),
    ledger_errors.KeyFormatError: ledger_errors.KeyFormatError("bad id", field="key id"),
    ledger_errors.MalformedNote: ledger_errors.MalformedNote("no blank line", line=4),
    ledger_errors.UnverifiedNote: ledger_errors.UnverifiedNote(
        trusted=("a.example/log",), signed_by=("b.example/log",)
    ),
    ledger_errors.BadSignature: ledger_errors.BadSignature(
        key_name="a.example/log", key_id=b"\x01\x02\x03\x04", line=5
    ),
    ledger_errors.CheckpointError: ledger_errors.CheckpointError("x", where="origin"),
    ledger_errors.MalformedCheckpoint: ledger_errors.MalformedCheckpoint("not decimal", line=2),
    ledger_errors.OriginMismatch: ledger_errors.OriginMismatch(
        origin="a.example/log", key_name="b.example/log"
    ),
    ledger_errors.MalformedProof: ledger_errors.MalformedProof("bad index", line=3),
    ledger_errors.SchemaNotCurrent: ledger_errors.SchemaNotCurrent(
        "ledger schema is at l0001, this govex needs l0002", schema="ledger"
    ),
    ledger_errors.LedgerUnavailable: ledger_errors.LedgerUnavailable(
        "ledger storage failed during append: disk I/O error", operation="append"
    ),
    ledger_errors.LedgerStorageFull: ledger_errors.LedgerStorageFull(
        "ledger storage is full (database or disk is full); nothing was appended",
        operation="append",
    ),
    ledger_errors.CheckpointRefused: ledger_errors.CheckpointRefused(
        "the ledger does not extend the checkpoint of size 4", size=6
    ),
    ServiceError: ServiceError("x"),
    service_errors.Unauthenticated: service_errors.Unauthenticated("no credential"),
    service_errors.TooManyAuthFailures: service_errors.TooManyAuthFailures(
        client="192.0.2.7", failures=5, window_s=60.0, retry_after_s=42
    ),
    PolicyDenied: PolicyDenied("no", action="call", resource="a.b", policies=("forbid-x",)),
    service_errors.NotFound: service_errors.NotFound("call", "01X"),
    service_errors.CatalogNotRunnable: service_errors.CatalogNotRunnable("drift", where="a.b"),
    service_errors.SourceUnavailable: service_errors.SourceUnavailable("gone"),
    service_errors.QueryFailed: service_errors.QueryFailed("syntax"),
    QueryTimedOut: QueryTimedOut("late", timeout_ms=10),
    service_errors.LeaseUnavailable: service_errors.LeaseUnavailable("a.b", 2, 31),
    service_errors.ApprovalRefused: service_errors.ApprovalRefused("needs none", where="entry"),
    service_errors.CommandSpecInvalid: service_errors.CommandSpecInvalid("bad", where="args[0]"),
    service_errors.CommandRefused: service_errors.CommandRefused("option", where="name"),
    service_errors.ExecutableMismatch: service_errors.ExecutableMismatch(
        path="/bin/x", expected="0" * 64, actual="1" * 64
    ),
    service_errors.CommandFailed: service_errors.CommandFailed("exec failed"),
    service_errors.StartupRefused: service_errors.StartupRefused("seal"),
    service_errors.ConfigurationError: service_errors.ConfigurationError("bad"),
    service_errors.SettingsInvalid: service_errors.SettingsInvalid(
        [("key 'ledger_ulr' in govex.toml", "unknown setting (did you mean 'ledger_url'?)")],
        source="govex.toml",
    ),
    service_errors.PacketRemoved: service_errors.PacketRemoved("01P", seq=12),
    service_errors.NotReady: service_errors.NotReady(["ledger", "source:items"]),
    service_errors.SigningKeyMissing: service_errors.SigningKeyMissing(),
    service_errors.OutOfRange: service_errors.OutOfRange("seq 9 is not in size 4", where="seq 9"),
    CallBlocked: CallBlocked(
        PolicyDenied("no", action="call", resource="a.b", policies=("p",)), call_id="01C", seq=9
    ),
    service_errors.ExecutableUnavailable: service_errors.ExecutableUnavailable(
        "executable /bin/x cannot be opened: No such file or directory", where="/bin/x"
    ),
    service_errors.InvalidIdempotencyKey: service_errors.InvalidIdempotencyKey(
        "Idempotency-Key must be 1 to 200 visible ASCII characters", where="Idempotency-Key"
    ),
    service_errors.IdempotencyKeyReused: service_errors.IdempotencyKeyReused(
        "Idempotency-Key 'k' was used for a different request", where="Idempotency-Key"
    ),
    service_errors.CallNotRunning: service_errors.CallNotRunning("call 01C has ended"),
    service_errors.LedgeredRefusal: service_errors.LedgeredRefusal(
        PolicyDenied("no", action="approve", resource="a.b", policies=("p",)), seq=3
    ),
    service_errors.ApprovalBlocked: service_errors.ApprovalBlocked(
        service_errors.ApprovalRefused("too long", where="ttl_s"), seq=4
    ),
    PacketError: PacketError("x"),
    packet_errors.PacketLayoutError: packet_errors.PacketLayoutError(
        path="../x", detail="escapes the bag"
    ),
    packet_errors.BagInvalidError: packet_errors.BagInvalidError(
        [packet_errors.BagProblem("r", "p", "d")]
    ),
    packet_errors.PacketBuildError: packet_errors.PacketBuildError(path="data/x", detail="bad"),
    packet_errors.PacketCheckFailed: packet_errors.PacketCheckFailed(
        "data/x", "sha256 differs", "sha256:00", "sha256:11", check="bagit_manifest"
    ),
    packet_errors.PacketUploadRefused: packet_errors.PacketUploadRefused("refused", where="body"),
    packet_errors.PacketTooLarge: packet_errors.PacketTooLarge(limit=10),
    packet_errors.NotAPacketZip: packet_errors.NotAPacketZip("not a zip archive"),
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
    assert body["type"] == f"/problems/{body['code']}"
    assert body["request_id"] == "r-1"


@pytest.mark.parametrize(
    ("exc", "status", "code", "exit_status"),
    [
        pytest.param(SAMPLES[InputErrors], 422, "invalid_input", 4, id="inputs-blocked"),
        pytest.param(SAMPLES[PolicyDenied], 403, "policy_denied", 4, id="policy-blocked"),
        pytest.param(SAMPLES[UnknownEntry], 404, "unknown_entry", 4, id="unknown-entry-blocked"),
        pytest.param(SAMPLES[QueryTimedOut], 504, "timed_out", 3, id="timed-out"),
        pytest.param(
            SAMPLES[service_errors.LeaseUnavailable], 429, "lease_unavailable", 4, id="lease"
        ),
        pytest.param(
            SAMPLES[service_errors.ExecutableMismatch], 409, "executable_mismatch", 4, id="exe"
        ),
        pytest.param(
            SAMPLES[service_errors.QueryFailed], 502, "query_failed", 2, id="error-running"
        ),
        pytest.param(
            SAMPLES[LedgerVerifyError], 409, "ledger_invalid", 1, id="ledger-check-failed"
        ),
        pytest.param(
            SAMPLES[service_errors.Unauthenticated], 401, "unauthenticated", 4, id="unauthenticated"
        ),
        pytest.param(
            SAMPLES[service_errors.TooManyAuthFailures], 429, "auth_throttled", 4, id="throttled"
        ),
        pytest.param(SAMPLES[CallBlocked], 403, "policy_denied", 4, id="blocked-takes-its-cause"),
        pytest.param(
            SAMPLES[ledger_errors.LedgerStorageFull],
            503,
            "ledger_storage_full",
            2,
            id="storage-full",
        ),
        pytest.param(
            SAMPLES[ledger_errors.LedgerUnavailable],
            503,
            "ledger_unavailable",
            2,
            id="storage-unavailable",
        ),
        pytest.param(
            SAMPLES[ledger_errors.LedgerTruncated], 409, "ledger_invalid", 1, id="truncated"
        ),
        pytest.param(SAMPLES[ledger_errors.LedgerForked], 409, "ledger_invalid", 1, id="forked"),
        pytest.param(
            SAMPLES[ledger_errors.SchemaNotCurrent], 503, "schema_not_current", 2, id="schema"
        ),
        pytest.param(
            SAMPLES[ledger_errors.CheckpointRefused], 409, "checkpoint_refused", 1, id="refused"
        ),
        pytest.param(
            SAMPLES[service_errors.SigningKeyMissing], 503, "no_signing_key", 2, id="no-key"
        ),
        pytest.param(SAMPLES[service_errors.OutOfRange], 422, "out_of_range", 2, id="range"),
        pytest.param(
            SAMPLES[service_errors.PacketRemoved], 410, "packet_removed", 2, id="packet-removed"
        ),
        pytest.param(SAMPLES[service_errors.NotReady], 503, "not_ready", 2, id="not-ready"),
        pytest.param(
            SAMPLES[service_errors.SettingsInvalid], 500, "configuration_error", 2, id="settings"
        ),
        pytest.param(
            SAMPLES[packet_errors.PacketTooLarge], 413, "packet_too_large", 2, id="upload-too-big"
        ),
        pytest.param(SAMPLES[packet_errors.NotAPacketZip], 415, "not_a_zip", 2, id="not-a-zip"),
        pytest.param(
            SAMPLES[packet_errors.PacketCheckFailed], 422, "packet_invalid", 1, id="check-failed"
        ),
    ],
)
def test_mappings_follow_formats_section_6(
    exc: Exception, status: int, code: str, exit_status: int
) -> None:
    assert problem_kind(exc).status == status
    assert problem_code(exc) == code
    assert exit_code(exc) == exit_status


# What an auditor supplies (a key, a checkpoint, a signed note, a proof) and fails to verify.
VERIFICATION_FAILURES = (
    ledger_errors.ProofError,
    ledger_errors.RootMismatch,
    ledger_errors.ConsistencyProofError,
    ledger_errors.ConsistencyMismatch,
    ledger_errors.NoteError,
    ledger_errors.KeyFormatError,
    ledger_errors.MalformedNote,
    ledger_errors.UnverifiedNote,
    ledger_errors.BadSignature,
    ledger_errors.CheckpointError,
    ledger_errors.MalformedCheckpoint,
    ledger_errors.OriginMismatch,
    ledger_errors.MalformedProof,
)


@pytest.mark.parametrize("cls", VERIFICATION_FAILURES, ids=lambda c: c.__name__)
def test_bad_keys_checkpoints_and_proofs_are_verification_failures(
    cls: type[Exception],
) -> None:
    exc = SAMPLES[cls]
    assert problem_kind(exc).status == 422
    assert exit_code(exc) == 1
    body = problem_body(exc, request_id=None)
    assert body["errors"] == [{"where": exc.where, "detail": exc.message}]  # type: ignore[attr-defined]


def test_a_ledger_inconsistent_with_a_checkpoint_has_its_own_code() -> None:
    assert problem_code(SAMPLES[ledger_errors.ConsistencyMismatch]) == "ledger_inconsistent"
    assert problem_code(SAMPLES[ledger_errors.ConsistencyProofError]) == "proof_invalid"
    assert problem_code(SAMPLES[ledger_errors.BadSignature]) == "signature_invalid"


@pytest.mark.parametrize(
    "cls", [ledger_errors.LedgerUnavailable, ledger_errors.LedgerStorageFull], ids=str
)
def test_storage_failures_ask_to_retry_later_and_name_storage(cls: type[Exception]) -> None:
    kind = problem_kind(SAMPLES[cls])
    assert kind.retry_after_s is not None
    assert kind.retry_after_s > 0
    body = problem_body(SAMPLES[cls], request_id=None)
    assert "storage" in body["detail"]
    assert "storage" in body["title"].lower()
    assert "Nothing was recorded" in body["hint"]


def test_only_transient_failures_carry_a_retry_after() -> None:
    retrying = {cls for cls, exc in SAMPLES.items() if problem_kind(exc).retry_after_s is not None}
    assert retrying == {ledger_errors.LedgerUnavailable, ledger_errors.LedgerStorageFull}


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


def test_auth_throttling_says_when_to_retry_and_not_who() -> None:
    exc = SAMPLES[service_errors.TooManyAuthFailures]
    body = problem_body(exc, request_id=None)
    assert "retry in 42 s" in body["detail"]
    assert "192.0.2.7" not in str(body)
    assert exc.retry_after_s == 42  # type: ignore[attr-defined]
