"""Console routes: sign in (a form, then the API's authentication), sign out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from service.console.csrf import FIELD, check_csrf, csrf_token
from service.console.deps import ConsoleDep, SignedFormDep, client_of, request_id_of
from service.console.errors import CsrfRefused
from service.console.forms import read_form
from service.console.render import page
from service.console.route import ConsoleRoute
from service.console.session import COOKIE, COOKIE_PATH, IssuedSession
from service.console.sign_in import (
    HOME,
    PRE_COOKIE,
    SIGN_IN_PATH,
    new_form_nonce,
    safe_next,
    sign_in,
)
from service.deps import RuntimeDep
from service.errors import Unauthenticated

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)

_PRE_COOKIE_MAX_AGE_S = 3600
# Fixed texts by code: a notice never reflects text from the address bar.
_NOTICES = {
    "required": ("Sign in to use the console.", ""),
    "expired": ("Your session expired: sign in again.", "warn"),
    "ended": (
        "Your session ended: its key was revoked, replaced or expired. Sign in again.",
        "warn",
    ),
    "signed_out": ("You are signed out.", "ok"),
}


@router.get("")
@router.get("/")
def console_home() -> Response:
    return RedirectResponse(HOME, status_code=303)


@router.get("/sign-in")
def sign_in_form(
    request: Request,
    console: ConsoleDep,
    next_page: Annotated[str | None, Query(alias="next", max_length=2000)] = None,
    notice: Annotated[str | None, Query(max_length=32)] = None,
) -> Response:
    """The sign-in form, its CSRF token bound to a nonce cookie of its own."""
    nonce = request.cookies.get(PRE_COOKIE) or new_form_nonce()
    return _sign_in_page(request, console, nonce, next_page, notice=notice)


@router.post("/sign-in")
async def sign_in_submit(request: Request, runtime: RuntimeDep, console: ConsoleDep) -> Response:
    """Authenticate as the API does (throttled; a refusal ledgered), then set the session."""
    form = await read_form(request)
    nonce = request.cookies.get(PRE_COOKIE)
    if not nonce:
        raise CsrfRefused(
            "the sign-in form's cookie is missing: allow cookies for this site and reload the form",
            where=PRE_COOKIE,
        )
    check_csrf(console.require_keys(), f"pre:{nonce}", form.get(FIELD))
    try:
        issued = await run_in_threadpool(
            sign_in,
            runtime,
            console,
            form.get("token") or "",
            client=client_of(request),
            request_id=request_id_of(request),
        )
    except Unauthenticated as exc:
        return _sign_in_page(request, console, nonce, form.get("next"), refused=exc)
    response = RedirectResponse(safe_next(form.get("next")), status_code=303)
    _set_session_cookie(request, response, issued)
    response.delete_cookie(PRE_COOKIE, path=SIGN_IN_PATH)
    return response


@router.post("/sign-out")
def sign_out(_form: SignedFormDep) -> Response:
    """Forget the session cookie (its CSRF token checked first)."""
    response = RedirectResponse(f"{SIGN_IN_PATH}?notice=signed_out", status_code=303)
    response.delete_cookie(COOKIE, path=COOKIE_PATH)
    return response


def _sign_in_page(
    request: Request,
    console: ConsoleDep,
    nonce: str,
    next_page: str | None,
    *,
    notice: str | None = None,
    refused: Unauthenticated | None = None,
) -> Response:
    text, style = _NOTICES.get(notice or "", ("", ""))
    response = page(
        request,
        "sign_in.html",
        status=401 if refused is not None else 200,
        session=None,
        title="Sign in",
        form_csrf=csrf_token(console.require_keys(), f"pre:{nonce}"),
        next=safe_next(next_page),
        notice=text,
        notice_class=style,
        refusal=None
        if refused is None
        else {"detail": refused.message, "ledger_seq": refused.ledger_seq},
    )
    response.set_cookie(
        PRE_COOKIE,
        nonce,
        max_age=_PRE_COOKIE_MAX_AGE_S,
        path=SIGN_IN_PATH,
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return response


def _set_session_cookie(request: Request, response: Response, issued: IssuedSession) -> None:
    response.set_cookie(
        COOKIE,
        issued.cookie,
        max_age=issued.claims.exp - issued.claims.iat,
        path=COOKIE_PATH,
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
