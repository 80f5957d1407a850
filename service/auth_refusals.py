"""Every attempt is ledgered, including those refused before anyone is known.

A request whose credential is missing or refused has no principal and so no call;
it is appended as ``auth.refused`` before the refusal goes out: how it came (HTTP
with the peer address, method and path, or the CLI), the request id, and what was
wrong and where. The credential never is: messages name the failed check and quote
a token's claims only shortened (:mod:`service.jwt_auth`).

Bounded growth: a client over the failure limit is answered 429 before its credential
is looked at (:mod:`service.auth_throttle`) and adds no entry, so one client adds at
most ``GOVEX_AUTH_FAILURE_LIMIT`` entries per window.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from service.errors import Unauthenticated
from service.problems import problem_code

if TYPE_CHECKING:
    from service.identity import Principal
    from service.runtime import Runtime


def authenticate_or_ledger(
    runtime: Runtime,
    authorization: str | None,
    *,
    via: Literal["http", "cli"],
    client: str | None = None,
    request: str | None = None,
    request_id: str | None = None,
) -> Principal:
    """The caller of ``authorization``; a refusal is ledgered, then raised with its seq.

    Raises :class:`Unauthenticated` (``ledger_seq`` set), ``TooManyAuthFailures``
    (not ledgered), or a ledger error when the refusal cannot be recorded.
    """
    try:
        return runtime.auth.authenticate(authorization, runtime.clock(), client=client)
    except Unauthenticated as exc:
        ledger_refusal(runtime, exc, via=via, client=client, request=request, request_id=request_id)
        raise


def ledger_refusal(
    runtime: Runtime,
    exc: Unauthenticated,
    *,
    via: Literal["http", "cli"],
    client: str | None = None,
    request: str | None = None,
    request_id: str | None = None,
) -> None:
    """Append ``auth.refused`` for ``exc`` and set its ``ledger_seq`` (the caller raises it)."""
    entry = runtime.ledger.append(
        "auth.refused",
        {
            "via": via,
            "client": client,
            "request": request,
            "request_id": request_id,
            "code": problem_code(exc),
            "reason": exc.message,
            "where": exc.where,
        },
        runtime.clock(),
    )
    exc.ledger_seq = entry.seq
