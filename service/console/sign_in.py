"""Signing in: the API's authentication of a bearer credential, then a session for it.

:func:`sign_in` sends the credential through :func:`service.auth_refusals.authenticate_or_ledger`,
the path of every API request: the same throttle per client, the same checks, and a
refusal ledgered as ``auth.refused`` (with the request ``POST /console/sign-in``). Only
then is a session issued (:mod:`service.console.session`). The credential is dropped
here: it reaches no cookie, message, log or ledger entry.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from service.auth_refusals import authenticate_or_ledger
from service.console.errors import SignInRequired
from service.console.session import IssuedSession, issue_session, token_expiry

if TYPE_CHECKING:
    from service.console.state import ConsoleState
    from service.runtime import Runtime

SIGN_IN_PATH = "/console/sign-in"
PRE_COOKIE = "govex_console_signin"
HOME = "/console/catalog"


def sign_in(
    runtime: Runtime,
    console: ConsoleState,
    credential: str,
    *,
    client: str,
    request_id: str | None,
) -> IssuedSession:
    """A session for the principal of ``credential`` (an API key or a JWT, "Bearer " optional).

    Raises what API authentication raises: ``Unauthenticated`` (ledgered, ``ledger_seq``
    set), ``TooManyAuthFailures``; and :class:`SignInRequired` in the rare case that the
    key left the keys file between the two reads.
    """
    keys = console.require_keys()
    text = credential.strip()
    authorization = text if text[:7].lower() == "bearer " else f"Bearer {text}"
    principal = authenticate_or_ledger(
        runtime,
        authorization,
        via="http",
        client=client,
        request=f"POST {SIGN_IN_PATH}",
        request_id=request_id,
    )
    if principal.auth_method == "jwt":
        token = authorization[7:].strip()
        return issue_session(
            keys,
            principal,
            now=runtime.clock(),
            ttl_s=console.ttl_s,
            token_exp=token_expiry(token),
        )
    record = console.records.get(principal.key_id)
    if record is None:
        raise SignInRequired(f"API key {principal.key_id} just left the keys file", where="ended")
    return issue_session(
        keys, principal, now=runtime.clock(), ttl_s=console.ttl_s, key_record=record
    )


def new_form_nonce() -> str:
    """The random value the sign-in form's CSRF token is bound to (its own cookie)."""
    return secrets.token_urlsafe(16)


def safe_next(value: str | None) -> str:
    """After sign-in: a console path of this site, else the catalog (never an open redirect)."""
    if (
        value
        and value.startswith("/console/")
        and "//" not in value
        and "\\" not in value
        and value.isprintable()
        and not any(c.isspace() for c in value)
    ):
        return value
    return HOME
