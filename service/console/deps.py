"""FastAPI dependencies of the console: its state, the session's principal, a checked form.

The runtime and the executor are the API's own (:mod:`service.deps`).

:func:`get_session` is the console's ``PrincipalDep``: the cookie verified, then the key
checked again (:mod:`service.console.session`); a forged cookie is refused like a bad
bearer credential (:mod:`service.console.refusals`). :func:`get_signed_form` reads a POST
form and checks its CSRF token against the session before the route sees it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from service.console.csrf import FIELD, check_csrf, csrf_token
from service.console.errors import SignInRequired
from service.console.forms import Form, read_form
from service.console.refusals import refuse_forged_session
from service.console.session import COOKIE, SessionClaims, read_claims, session_principal
from service.console.state import ConsoleState
from service.deps import UNKNOWN_CLIENT, RuntimeDep
from service.errors import Unauthenticated
from service.identity import Principal


def get_console(request: Request) -> ConsoleState:
    state: ConsoleState = request.app.state.console
    return state


ConsoleDep = Annotated[ConsoleState, Depends(get_console)]


@dataclass(frozen=True)
class Session:
    """A signed-in request: who, the session's claims, and the CSRF token of its forms."""

    principal: Principal
    claims: SessionClaims
    csrf: str


def client_of(request: Request) -> str:
    """The peer address failures are counted under, as the API's ``get_principal`` does."""
    return request.client.host if request.client is not None else UNKNOWN_CLIENT


def request_id_of(request: Request) -> str | None:
    request_id: str | None = getattr(request.state, "request_id", None)
    return request_id


def get_session(request: Request, runtime: RuntimeDep, console: ConsoleDep) -> Session:
    """The signed-in principal, checked again now.

    Raises :class:`SignInRequired` (no cookie, expired, key ended), ``Unauthenticated``
    (a forged cookie; ledgered), ``TooManyAuthFailures`` or ``ConsoleUnavailable``.
    """
    keys = console.require_keys()
    cookie = request.cookies.get(COOKIE)
    if not cookie:
        raise SignInRequired("sign in to use the console", where="required")
    try:
        claims = read_claims(keys, cookie, runtime.clock())
    except Unauthenticated as exc:
        refuse_forged_session(
            runtime,
            exc,
            client=client_of(request),
            request=f"{request.method} {request.url.path}",
            request_id=request_id_of(request),
        )
        raise
    principal = session_principal(runtime, keys, console.records, claims)
    session = Session(principal, claims, csrf_token(keys, f"session:{claims.sid}"))
    request.state.console_session = session  # error pages keep the signed-in header
    return session


SessionDep = Annotated[Session, Depends(get_session)]


async def get_signed_form(request: Request, session: SessionDep, console: ConsoleDep) -> Form:
    """The POST form of a signed-in page, once its CSRF token is the session's."""
    form = await read_form(request)
    check_csrf(console.require_keys(), f"session:{session.claims.sid}", form.get(FIELD))
    return form


SignedFormDep = Annotated[Form, Depends(get_signed_form)]
