"""Errors of the service package.

    ServiceError                    every service-level refusal or failure
    ├── Unauthenticated             no credential, or one that does not verify
    ├── TooManyAuthFailures         a client failed authentication too often (retry_after_s)
    ├── PolicyDenied                Cedar said no (or could not decide: a deny)
    ├── NotFound                    an unknown call or packet (``kind``, ``ident``)
    ├── CatalogNotRunnable          the catalog entry no longer matches its seal
    ├── SourceUnavailable           a source the entry names is not configured or cannot open
    ├── QueryFailed                 the engine refused or failed the statement
    ├── QueryTimedOut               the engine stopped the statement at its deadline
    ├── CommandSpecInvalid          a command spec that cannot run safely (``where``: its field)
    ├── CommandRefused              a command not started: a refused value or executable (``where``)
    │   └── ExecutableMismatch      the executable's SHA-256 is not the pinned one (path, digests)
    ├── CommandFailed               a checked command could not start, or its output not be written
    ├── StartupRefused              the runtime cannot start (seal mismatch, bad keys file, ...)
    ├── ConfigurationError          settings that cannot work
    │   └── SettingsInvalid         govex.toml or GOVEX_* refused: every problem, each in its place
    ├── PacketRemoved               a packet whose file retention removed (``packet.removed`` seq)
    ├── NotReady                    a readiness check failed (``failed``: the checks' names)
    ├── SigningKeyMissing           a checkpoint is needed but no ledger signing key is configured
    ├── OutOfRange                  a seq or tree size the ledger (or its checkpoints) does not hold
    ├── LeaseUnavailable            every run slot of a lease scope is held (scope, limit, retry)
    ├── ApprovalRefused             an approval that cannot be granted (``where``: entry or ttl_s)
    └── CallBlocked                 refused before it ran, ledgered as call.denied (cause, seq)

Errors of ``catalog`` (inputs, seal, SQL rules), ``ledger`` (verification) and
``service.packets`` (consumption checks) keep their own trees; ``service.problems``
maps all of them, once, to problem+json and exit codes.
"""

from __future__ import annotations


class ServiceError(Exception):
    """Base of the service's own errors; ``where`` names the place when there is one."""

    def __init__(self, message: str, *, where: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.where = where


class Unauthenticated(ServiceError):
    """No usable credential; ``ledger_seq`` is its ``auth.refused`` entry once ledgered."""

    def __init__(self, message: str, *, where: str = "") -> None:
        super().__init__(message, where=where)
        self.ledger_seq: int | None = None


class TooManyAuthFailures(ServiceError):
    """A client failed authentication ``failures`` times within ``window_s`` seconds.

    Every request from that client is refused, whatever its credential, for
    ``retry_after_s`` more seconds (at least 1, rounded up). ``client`` is the peer
    address the failures were counted under; the message does not repeat it.
    """

    def __init__(self, *, client: str, failures: int, window_s: float, retry_after_s: int) -> None:
        super().__init__(
            f"too many failed authentications from this client ({failures} within "
            f"{window_s:g} s): retry in {retry_after_s} s",
            where="client",
        )
        self.client = client
        self.failures = failures
        self.window_s = window_s
        self.retry_after_s = retry_after_s


class PolicyDenied(ServiceError):
    """The policy engine denied the action."""

    def __init__(
        self, message: str, *, action: str, resource: str, policies: tuple[str, ...]
    ) -> None:
        super().__init__(message, where=resource)
        self.action = action
        self.resource = resource
        self.policies = policies


class NotFound(ServiceError):
    """An unknown call, packet or entry id."""

    def __init__(self, kind: str, ident: str) -> None:
        super().__init__(f"no {kind} with id {ident!r}", where=ident)
        self.kind = kind
        self.ident = ident


class InvalidIdempotencyKey(ServiceError):
    """An ``Idempotency-Key`` header that is empty, too long or not visible ASCII."""


class IdempotencyKeyReused(ServiceError):
    """An ``Idempotency-Key`` already bound to a different request of the same principal."""


class CallNotRunning(ServiceError):
    """A cancel of a call that has ended (or does not run in this process)."""


class CatalogNotRunnable(ServiceError):
    """The in-memory entry no longer matches the seal the service started with."""


class SourceUnavailable(ServiceError):
    """The entry's source is not configured or cannot be opened read-only."""


class QueryFailed(ServiceError):
    """The engine failed the statement (after it started)."""


class QueryTimedOut(ServiceError):
    """The engine stopped the statement at the contract's deadline."""

    def __init__(self, message: str, *, timeout_ms: int) -> None:
        super().__init__(message)
        self.timeout_ms = timeout_ms


class CommandSpecInvalid(ServiceError):
    """A command specification refused when it is built; ``where`` names the field.

    For example an embedded placeholder (``args[2]``), a relative executable, a malformed
    pin, a bad environment name or a limit that is not positive (``limits.cpu_seconds``).
    """


class CommandRefused(ServiceError):
    """The command was not started; ``where`` names the parameter(s) or the executable path.

    A parameter value the template refuses (option-looking, missing, unknown, NUL byte, not
    representable), or an executable that is missing, not a regular file or not executable.
    """


class ExecutableUnavailable(CommandRefused):
    """The sealed executable cannot be run here: missing, not a regular file, not executable.

    An operator's problem (the host changed under the seal), not the caller's; nothing ran.
    """


class ExecutableMismatch(CommandRefused):
    """The executable's SHA-256 differs from the digest pinned at seal time; nothing ran."""

    def __init__(self, *, path: str, expected: str, actual: str) -> None:
        super().__init__(
            f"executable {path} has sha256 {actual}, but the seal pins sha256 {expected}",
            where=path,
        )
        self.path = path
        self.expected = expected
        self.actual = actual


class CommandFailed(ServiceError):
    """A command that passed its checks could not be started, or its output not be written."""


class StartupRefused(ServiceError):
    """The runtime refuses to start."""


class ConfigurationError(ServiceError):
    """Settings that cannot work together."""


class SigningKeyMissing(ServiceError):
    """A checkpoint must be signed, but no ledger signing key is configured."""

    def __init__(self) -> None:
        super().__init__(
            "no ledger signing key configured (GOVEX_LEDGER_KEY_FILE): no checkpoint can be signed",
            where="ledger_key_file",
        )


class OutOfRange(ServiceError):
    """A proof asked for a seq or tree size outside what the ledger or its checkpoint holds."""


class LeaseUnavailable(ServiceError):
    """Every run slot of ``scope`` is held: the call is ``blocked`` (FORMATS §6), to retry later.

    ``scope`` is an entry id, or ``<entry id>|<resource key>``; ``held`` live
    leases against ``max_concurrent`` (it may exceed a lowered limit), and the
    earliest of them expires in ``retry_after_s`` seconds (at least 1, rounded up).
    """

    def __init__(
        self, scope: str, max_concurrent: int, retry_after_s: int, *, held: int | None = None
    ) -> None:
        entry, _, resource = scope.partition("|")
        where = f"entry {entry!r}" + (f" (resource {resource!r})" if resource else "")
        held = max_concurrent if held is None else held
        super().__init__(
            f"lease unavailable for {where}: {held} of {max_concurrent} runs in progress; "
            f"retry in {retry_after_s} s",
            where=scope,
        )
        self.scope = scope
        self.max_concurrent = max_concurrent
        self.held = held
        self.retry_after_s = retry_after_s


class ApprovalRefused(ServiceError):
    """An approval that cannot be granted: the entry needs none, or its TTL is out of bounds."""


class LedgeredRefusal(ServiceError):
    """A refusal already in the ledger at ``seq``; ``cause`` is the refusal itself.

    ``service.problems`` shapes the answer from the cause and adds ``ledger_seq``.
    """

    def __init__(self, cause: Exception, *, seq: int) -> None:
        super().__init__(str(cause), where=getattr(cause, "where", ""))
        self.cause = cause
        self.seq = seq


class CallBlocked(LedgeredRefusal):
    """A call refused before it ran; it is in the ledger as ``call.denied`` at ``seq``.

    ``cause`` is the refusal (unknown entry, bad inputs, seal mismatch, policy deny).
    """

    def __init__(self, cause: Exception, *, call_id: str, seq: int) -> None:
        super().__init__(cause, seq=seq)
        self.call_id = call_id


class ApprovalBlocked(LedgeredRefusal):
    """An approval refused; it is in the ledger as ``approval.denied`` at ``seq``."""


class SettingsInvalid(ConfigurationError):
    """Settings refused at start: ``problems`` lists each one as ``(where, detail)``.

    ``where`` is the place to fix: a key of the configuration file (``key 'ledger_url' in
    /etc/govex/govex.toml``), an environment variable (``GOVEX_LEDGER_URL``), or the file
    itself. Details never repeat a value: it may be a secret.
    """

    def __init__(self, problems: list[tuple[str, str]], *, source: str = "") -> None:
        first_where, first_detail = problems[0] if problems else ("", "settings refused")
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"{first_where}: {first_detail}{more}", where=first_where or source)
        self.problems = tuple(problems)
        self.source = source


class PacketRemoved(ServiceError):
    """The packet's file was removed by retention; ``seq`` is its ``packet.removed`` entry."""

    def __init__(self, packet_id: str, *, seq: int) -> None:
        super().__init__(
            f"packet {packet_id} was removed by the retention policy (ledger seq {seq}); its "
            "ledger entries remain",
            where=packet_id,
        )
        self.packet_id = packet_id
        self.seq = seq


class NotReady(ServiceError):
    """At least one readiness check failed; ``failed`` names them (``GET /readyz``)."""

    def __init__(self, failed: list[str]) -> None:
        super().__init__(
            f"{len(failed)} readiness check(s) failed: {', '.join(failed)}",
            where=failed[0] if failed else "",
        )
        self.failed = tuple(failed)
