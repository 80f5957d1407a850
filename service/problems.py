"""Every error becomes output here, once: an RFC 9457 problem and a CLI exit code.

Core code raises domain errors and knows nothing of HTTP or exit codes (STYLE G3).
Each problem carries a stable ``code``, a ``hint`` saying what to do, every
validation failure in ``errors[]`` and the ``request_id``. Unknown exceptions
become a bare ``internal_error``: no stack trace or message reaches a user.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from catalog.errors import (
    CatalogError,
    CatalogErrors,
    InputError,
    InputErrors,
    SealMismatch,
    SqlRejected,
    UnknownEntry,
)
from ledger.errors import (
    BadSignature,
    CheckpointError,
    CheckpointRefused,
    ConsistencyMismatch,
    KeyFormatError,
    LedgerError,
    LedgerStorageFull,
    LedgerUnavailable,
    LedgerVerifyError,
    MalformedProof,
    NoteError,
    ProofError,
    SchemaNotCurrent,
    UnverifiedNote,
)
from service.errors import (
    ApprovalRefused,
    CallBlocked,
    CallNotRunning,
    CatalogNotRunnable,
    CommandFailed,
    CommandRefused,
    CommandSpecInvalid,
    ConfigurationError,
    ExecutableMismatch,
    ExecutableUnavailable,
    IdempotencyKeyReused,
    InvalidIdempotencyKey,
    LeaseUnavailable,
    LedgeredRefusal,
    NotFound,
    NotReady,
    OutOfRange,
    PacketRemoved,
    PolicyDenied,
    QueryFailed,
    QueryTimedOut,
    ServiceError,
    SettingsInvalid,
    SigningKeyMissing,
    SourceUnavailable,
    StartupRefused,
    TooManyAuthFailures,
    Unauthenticated,
)
from service.packets.errors import NotAPacketZip, PacketError, PacketTooLarge
from service.verdicts import Verdict

PROBLEM_MEDIA_TYPE = "application/problem+json"
# A problem's ``type`` is a relative URI reference (RFC 9457 section 3.1.1): resolved
# against the service's own address it is the page describing the problem
# (service.routes.problem_docs).
PROBLEM_TYPE_PREFIX = "/problems/"
EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2
_RETRY_HINT = "Retry later; if it persists, give the operator the request_id."
STORAGE_RETRY_AFTER_S = 30
_VERIFY_HINT = "Do not trust what this names; check the file, key or proof you supplied."


@dataclass(frozen=True)
class ProblemKind:
    status: int
    code: str
    title: str
    hint: str
    exit_code: int
    retry_after_s: int | None = None  # sent as Retry-After: the failure is expected to pass


# Most specific first: the first class an error is an instance of decides.
PROBLEM_KINDS: tuple[tuple[type[Exception], ProblemKind], ...] = (
    (
        Unauthenticated,
        ProblemKind(
            401,
            "unauthenticated",
            "Authentication required",
            "Send 'Authorization: Bearer <token>': an API key the operator issued or, where "
            "JWTs are enabled, a token from the configured issuer.",
            Verdict.blocked.exit_code,
        ),
    ),
    (
        TooManyAuthFailures,
        ProblemKind(
            429,
            "auth_throttled",
            "Too many failed authentications",
            "Wait Retry-After seconds, then send a valid credential; until then every request "
            "from this client is refused.",
            Verdict.blocked.exit_code,
        ),
    ),
    (
        ExecutableMismatch,
        ProblemKind(
            409,
            "executable_mismatch",
            "Executable changed since the seal",
            "An operator must restore the sealed executable or reseal the catalog.",
            Verdict.blocked.exit_code,
        ),
    ),
    (
        InvalidIdempotencyKey,
        ProblemKind(
            400,
            "invalid_idempotency_key",
            "Invalid Idempotency-Key",
            "Send 1 to 200 visible ASCII characters, unique per request.",
            EXIT_USAGE,
        ),
    ),
    (
        IdempotencyKeyReused,
        ProblemKind(
            422,
            "idempotency_key_reused",
            "Idempotency-Key reused for another request",
            "A key names one request: retry with the same body, or use a new key.",
            EXIT_USAGE,
        ),
    ),
    (
        CallNotRunning,
        ProblemKind(
            409,
            "call_not_running",
            "The call is not running",
            "Only a call that is created or running can be cancelled.",
            EXIT_USAGE,
        ),
    ),
    (
        ExecutableUnavailable,
        ProblemKind(
            503,
            "executable_unavailable",
            "Sealed executable unavailable",
            "The executable the seal pins is missing or not executable on this host; an "
            "operator must restore it.",
            Verdict.blocked.exit_code,
        ),
    ),
    (
        CommandRefused,
        ProblemKind(
            422,
            "command_refused",
            "Command refused",
            "Fix the parameter named in detail; values never become options or shell text.",
            Verdict.blocked.exit_code,
        ),
    ),
    (
        CommandSpecInvalid,
        ProblemKind(
            409,
            "command_spec_invalid",
            "Command entry cannot run",
            "An operator must fix the command entry named in detail and reseal the catalog.",
            Verdict.blocked.exit_code,
        ),
    ),
    (
        CommandFailed,
        ProblemKind(
            502,
            "command_failed",
            "Command could not run",
            _RETRY_HINT,
            Verdict.error_running.exit_code,
        ),
    ),
    (
        LeaseUnavailable,
        ProblemKind(
            429,
            "lease_unavailable",
            "Entry is busy",
            "Retry after Retry-After seconds: the entry allows only a few runs at once.",
            Verdict.blocked.exit_code,
        ),
    ),
    (
        ApprovalRefused,
        ProblemKind(
            422,
            "approval_refused",
            "Approval refused",
            "Approve only entries that require approval, with a TTL within the maximum.",
            EXIT_USAGE,
        ),
    ),
    (
        PolicyDenied,
        ProblemKind(
            403,
            "policy_denied",
            "Denied by policy",
            "Ask an operator for a role the policies allow, or call an entry you may use.",
            Verdict.blocked.exit_code,
        ),
    ),
    (
        UnknownEntry,
        ProblemKind(
            404,
            "unknown_entry",
            "No such catalog entry",
            "List the entries with GET /v1/catalog and use one of their ids.",
            Verdict.blocked.exit_code,
        ),
    ),
    (
        NotFound,
        ProblemKind(
            404,
            "not_found",
            "Not found",
            "Check the id; call and packet ids are returned by POST /v1/calls.",
            EXIT_USAGE,
        ),
    ),
    (
        InputErrors,
        ProblemKind(
            422,
            "invalid_input",
            "Invalid call inputs",
            "Fix each parameter in errors[]; GET /v1/catalog/{id} shows the parameter schema.",
            Verdict.blocked.exit_code,
        ),
    ),
    (
        InputError,
        ProblemKind(
            422,
            "invalid_input",
            "Invalid call input",
            "Fix the parameter named in errors[]; GET /v1/catalog/{id} shows the parameter schema.",
            Verdict.blocked.exit_code,
        ),
    ),
    (
        CatalogNotRunnable,
        ProblemKind(
            409,
            "catalog_not_runnable",
            "Entry cannot run",
            "The entry differs from the sealed catalog or cannot run here; an operator must act.",
            Verdict.blocked.exit_code,
        ),
    ),
    (
        SealMismatch,
        ProblemKind(
            409,
            "seal_mismatch",
            "Catalog does not match its seal",
            "Review the changed entries, then run 'govex catalog seal DIR'.",
            EXIT_CHECK_FAILED,
        ),
    ),
    (
        SqlRejected,
        ProblemKind(
            422,
            "sql_rejected",
            "Query refused by the read-only check",
            "Rewrite the statement so it only reads, with a top-level ORDER BY.",
            EXIT_CHECK_FAILED,
        ),
    ),
    (
        CatalogErrors,
        ProblemKind(
            422,
            "catalog_invalid",
            "Catalog has problems",
            "Fix each problem listed in errors[] and run 'govex catalog check DIR' again.",
            EXIT_CHECK_FAILED,
        ),
    ),
    (
        CatalogError,
        ProblemKind(
            422,
            "catalog_invalid",
            "Catalog is invalid",
            "Fix the file and key named in detail and run 'govex catalog check DIR' again.",
            EXIT_CHECK_FAILED,
        ),
    ),
    (
        SourceUnavailable,
        ProblemKind(
            503,
            "source_unavailable",
            "Source unavailable",
            "An operator must configure the source (GOVEX_SOURCES) and make its file readable.",
            Verdict.error_running.exit_code,
        ),
    ),
    (
        QueryTimedOut,
        ProblemKind(
            504,
            "timed_out",
            "Query timed out",
            "Narrow the inputs, or ask for a larger timeout in the catalog.",
            Verdict.timed_out.exit_code,
        ),
    ),
    (
        QueryFailed,
        ProblemKind(
            502,
            "query_failed",
            "Query failed",
            "The source refused the statement; an operator should check the source.",
            Verdict.error_running.exit_code,
        ),
    ),
    (
        LedgerStorageFull,
        ProblemKind(
            503,
            "ledger_storage_full",
            "Ledger storage is full",
            "Nothing was recorded or issued for this request. Retry later; an operator must free "
            "space on the ledger's storage.",
            EXIT_USAGE,
            STORAGE_RETRY_AFTER_S,
        ),
    ),
    (
        LedgerUnavailable,
        ProblemKind(
            503,
            "ledger_unavailable",
            "Ledger storage unavailable",
            "Nothing was recorded or issued for this request. Retry later; if it persists, an "
            "operator should check the ledger database.",
            EXIT_USAGE,
            STORAGE_RETRY_AFTER_S,
        ),
    ),
    (
        SchemaNotCurrent,
        ProblemKind(
            503,
            "schema_not_current",
            "Database schema is not current",
            "The database owner must run 'govex db upgrade' for this govex version.",
            EXIT_USAGE,
        ),
    ),
    (
        CheckpointRefused,
        ProblemKind(
            409,
            "checkpoint_refused",
            "Checkpoint refused",
            "The ledger does not extend its last checkpoint: treat it as tampered; an operator "
            "must investigate before anything is signed.",
            EXIT_CHECK_FAILED,
        ),
    ),
    (
        ConsistencyMismatch,
        ProblemKind(
            422,
            "ledger_inconsistent",
            "Ledger is not consistent with the checkpoint",
            "The ledger does not extend the checkpoint you trust (rolled back or forked): "
            "keep both checkpoints as evidence.",
            EXIT_CHECK_FAILED,
        ),
    ),
    (
        ProofError,
        ProblemKind(
            422,
            "proof_invalid",
            "Proof does not verify",
            _VERIFY_HINT,
            EXIT_CHECK_FAILED,
        ),
    ),
    (
        MalformedProof,
        ProblemKind(
            422,
            "proof_invalid",
            "Proof is malformed",
            _VERIFY_HINT,
            EXIT_CHECK_FAILED,
        ),
    ),
    (
        KeyFormatError,
        ProblemKind(
            422,
            "key_invalid",
            "Key is malformed",
            "Give the verifier key in its text form <name>+<8 hex key id>+<base64>.",
            EXIT_CHECK_FAILED,
        ),
    ),
    (
        UnverifiedNote,
        ProblemKind(
            422,
            "signature_invalid",
            "No trusted signature",
            "The note is not signed by a key you trust: check the key and its origin.",
            EXIT_CHECK_FAILED,
        ),
    ),
    (
        BadSignature,
        ProblemKind(
            422,
            "signature_invalid",
            "Signature does not verify",
            _VERIFY_HINT,
            EXIT_CHECK_FAILED,
        ),
    ),
    (
        CheckpointError,
        ProblemKind(
            422,
            "checkpoint_invalid",
            "Checkpoint is invalid",
            _VERIFY_HINT,
            EXIT_CHECK_FAILED,
        ),
    ),
    (
        NoteError,
        ProblemKind(
            422,
            "note_invalid",
            "Signed note is invalid",
            _VERIFY_HINT,
            EXIT_CHECK_FAILED,
        ),
    ),
    (
        LedgerVerifyError,
        ProblemKind(
            409,
            "ledger_invalid",
            "Ledger verification failed",
            "The ledger was altered at the seq named; treat everything after it as untrusted.",
            EXIT_CHECK_FAILED,
        ),
    ),
    (
        LedgerError,
        ProblemKind(
            500,
            "ledger_error",
            "Ledger error",
            "An operator should check the ledger database.",
            EXIT_USAGE,
        ),
    ),
    (
        PacketTooLarge,
        ProblemKind(
            413,
            "packet_too_large",
            "Packet too large to verify here",
            "Verify it offline with 'govex packet verify', which has no upload bound.",
            EXIT_USAGE,
        ),
    ),
    (
        NotAPacketZip,
        ProblemKind(
            415,
            "not_a_zip",
            "Not a packet zip",
            "Send the packet zip itself as the body, with Content-Type: application/zip.",
            EXIT_USAGE,
        ),
    ),
    (
        PacketError,
        ProblemKind(
            422,
            "packet_invalid",
            "Packet is invalid",
            "Do not rely on this packet; fetch it again from the service that issued it.",
            EXIT_CHECK_FAILED,
        ),
    ),
    (
        SigningKeyMissing,
        ProblemKind(
            503,
            "no_signing_key",
            "No ledger signing key configured",
            "Checkpoints and proofs need a signing key: an operator must set "
            "GOVEX_LEDGER_KEY_FILE (see 'govex keys generate').",
            EXIT_USAGE,
        ),
    ),
    (
        OutOfRange,
        ProblemKind(
            422,
            "out_of_range",
            "Not in the ledger",
            "Ask for a seq below the tree size and sizes the ledger holds; "
            "GET /v1/ledger/checkpoint gives the latest size.",
            EXIT_USAGE,
        ),
    ),
    (
        StartupRefused,
        ProblemKind(
            503,
            "startup_refused",
            "Service cannot start",
            "Fix what detail names (seal, keys, policies or sources) and start again.",
            EXIT_USAGE,
        ),
    ),
    (
        PacketRemoved,
        ProblemKind(
            410,
            "packet_removed",
            "Packet removed",
            "The retention policy removed the file; its ledger entries (packet.issued, "
            "packet.removed at ledger_seq) remain and still prove what it held.",
            EXIT_USAGE,
        ),
    ),
    (
        NotReady,
        ProblemKind(
            503,
            "not_ready",
            "Not ready",
            "See checks[] for what failed; the details are in the server log.",
            EXIT_USAGE,
        ),
    ),
    (
        ConfigurationError,
        ProblemKind(
            500,
            "configuration_error",
            "Configuration error",
            "Fix the setting named in detail.",
            EXIT_USAGE,
        ),
    ),
    (
        ServiceError,
        ProblemKind(
            500,
            "service_error",
            "Service error",
            _RETRY_HINT,
            EXIT_USAGE,
        ),
    ),
)
INTERNAL = ProblemKind(
    500,
    "internal_error",
    "Internal error",
    _RETRY_HINT,
    EXIT_USAGE,
)
INVALID_REQUEST = ProblemKind(
    422,
    "invalid_request",
    "Invalid request",
    "Fix each field listed in errors[] (JSON pointers into the request).",
    EXIT_USAGE,
)


ROUTING_KINDS = (
    ProblemKind(404, "not_found", "Not found", "Check the path against the API docs.", EXIT_USAGE),
    ProblemKind(
        405,
        "method_not_allowed",
        "Method not allowed",
        "Check the method against the API docs.",
        EXIT_USAGE,
    ),
    ProblemKind(
        413,
        "request_too_large",
        "Request body too large",
        "Send a smaller body: the limit is the service's GOVEX_MAX_REQUEST_BYTES.",
        EXIT_USAGE,
    ),
)


def documented_kinds() -> dict[str, ProblemKind]:
    """Every problem kind the service can answer with, by code (each has its page)."""
    kinds = [kind for _, kind in PROBLEM_KINDS] + [INTERNAL, INVALID_REQUEST, *ROUTING_KINDS]
    return {kind.code: kind for kind in kinds}


def problem_kind(exc: BaseException) -> ProblemKind:
    """The kind of ``exc``; a ledgered refusal takes its cause's kind."""
    if isinstance(exc, LedgeredRefusal):
        return problem_kind(exc.cause)
    for cls, kind in PROBLEM_KINDS:
        if isinstance(exc, cls):
            return kind
    return INTERNAL


def problem_code(exc: BaseException) -> str:
    return problem_kind(exc).code


def exit_code(exc: BaseException) -> int:
    return problem_kind(exc).exit_code


def problem_errors(exc: BaseException) -> list[dict[str, Any]]:  # noqa: PLR0911 - one return per error shape
    """The individual failures behind ``exc``, each naming its place."""
    if isinstance(exc, LedgeredRefusal):
        return problem_errors(exc.cause)
    if isinstance(exc, InputErrors):
        return [_input_error(e) for e in exc.errors]
    if isinstance(exc, InputError):
        return [_input_error(exc)]
    if isinstance(exc, CatalogErrors):
        return [{"where": e.where, "detail": e.message} for e in exc.errors]
    if isinstance(exc, SealMismatch):
        return [
            {"entry": ident, "change": change}
            for change, ids in (
                ("changed", exc.changed),
                ("added", exc.added),
                ("removed", exc.removed),
            )
            for ident in ids
        ] + [{"catalog": field, "change": "changed"} for field in exc.header]
    if isinstance(exc, LedgerVerifyError):
        return [{"seq": exc.seq, "check": exc.check, "detail": exc.detail}]
    if isinstance(exc, SettingsInvalid):
        return [{"where": where, "detail": detail} for where, detail in exc.problems]
    if isinstance(exc, LedgerError | OutOfRange | Unauthenticated) and exc.where:
        return [{"where": exc.where, "detail": exc.message}]
    return []


def _input_error(e: InputError) -> dict[str, Any]:
    return {
        "entry": e.entry,
        "parameter": e.parameter,
        "pointer": f"/params/{e.parameter}",
        "detail": e.reason,
    }


def problem_body(
    exc: BaseException, *, request_id: str | None, instance: str | None = None
) -> dict[str, Any]:
    """The RFC 9457 body for ``exc``. An internal error says nothing about its cause."""
    kind = problem_kind(exc)
    detail = kind.title if kind is INTERNAL else str(getattr(exc, "message", exc))
    body = _body(kind, detail, request_id=request_id, instance=instance, errors=problem_errors(exc))
    if isinstance(exc, CallBlocked):
        body["call_id"] = exc.call_id
    if isinstance(exc, LedgeredRefusal):
        body["ledger_seq"] = exc.seq
    if isinstance(exc, Unauthenticated) and exc.ledger_seq is not None:
        body["ledger_seq"] = exc.ledger_seq
    if isinstance(exc, PacketRemoved):
        body["ledger_seq"] = exc.seq
    cause = exc.cause if isinstance(exc, LedgeredRefusal) else exc
    if isinstance(cause, PolicyDenied):
        body["determining_policies"] = list(cause.policies)
    return body


def invalid_request_body(
    errors: list[dict[str, Any]], *, request_id: str | None, instance: str | None = None
) -> dict[str, Any]:
    """The body for a request that does not match its schema (FastAPI validation)."""
    return _body(
        INVALID_REQUEST,
        f"{len(errors)} invalid field(s)",
        request_id=request_id,
        instance=instance,
        errors=errors,
    )


def http_error_body(
    status: int, detail: str, *, request_id: str | None, instance: str | None
) -> dict[str, Any]:
    """The body for a routing-level error (unknown path, wrong method, a body too large)."""
    code = {404: "not_found", 405: "method_not_allowed"}.get(status, "http_error")
    kind = ProblemKind(
        status, code, detail, "Check the method and path against the API docs at /docs.", EXIT_USAGE
    )
    kind = next((k for k in ROUTING_KINDS if k.status == status), kind)
    return _body(kind, detail, request_id=request_id, instance=instance, errors=[])


def _body(
    kind: ProblemKind,
    detail: str,
    *,
    request_id: str | None,
    instance: str | None,
    errors: list[dict[str, Any]],
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_PREFIX + kind.code,
        "title": kind.title,
        "status": kind.status,
        "detail": detail,
        "code": kind.code,
        "hint": kind.hint,
        "errors": errors,
        "request_id": request_id,
    }
    if instance is not None:
        body["instance"] = instance
    return body
