"""A forged session cookie is refused like a refused bearer credential: throttled, ledgered.

The order is :meth:`service.authenticate.Authenticator.authenticate`'s: a client over the
failure limit is refused first (``TooManyAuthFailures``, 429, no entry); otherwise the
failure counts against the client and is appended as ``auth.refused`` with the same body
as :mod:`service.auth_refusals` gives a refused header (how it came, the request, what
was wrong), never the cookie. An expired session is not a failure: it only asks to sign
in again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from service.auth_refusals import ledger_refusal

if TYPE_CHECKING:
    from service.errors import Unauthenticated
    from service.runtime import Runtime


def refuse_forged_session(
    runtime: Runtime,
    exc: Unauthenticated,
    *,
    client: str,
    request: str,
    request_id: str | None,
) -> None:
    """Throttle and ledger ``exc`` (a cookie that does not verify); sets its ``ledger_seq``.

    Raises ``TooManyAuthFailures`` when ``client`` is throttled, and the ledger's errors
    when the refusal cannot be recorded (fail closed: the request is refused either way).
    """
    now = runtime.clock()
    runtime.auth.throttle.check(client, now)
    runtime.auth.throttle.record_failure(client, now)
    ledger_refusal(runtime, exc, via="http", client=client, request=request, request_id=request_id)
