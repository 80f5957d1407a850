"""Errors become console output here, once: an HTML page with the API's words, or a redirect.

The JSON API answers problem+json (:mod:`service.app`); a console page answers the same
refusal as HTML, with the status, title, detail, hint, failures and ledger seq of
:func:`service.problems.problem_body`, so both surfaces say the same thing. A refusal by
policy is a 403 page that names the action and the determining policies, never an
empty page. :class:`SignInRequired` is a redirect to the sign-in page (with a fixed
notice, never reflected text). An unexpected error is a 500 page with the request id;
its traceback goes to the server log only.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import structlog
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.console.errors import ConsoleError, SignInRequired
from service.console.render import SECURITY_HEADERS, page
from service.console.session import COOKIE, COOKIE_PATH
from service.errors import TooManyAuthFailures, Unauthenticated
from service.problems import INTERNAL, problem_body, problem_kind

if TYPE_CHECKING:
    from fastapi import Request, Response

_log = structlog.get_logger("govex.console")
SIGN_IN = "/console/sign-in"
_STATUSES = frozenset(s.value for s in HTTPStatus)
_HINTS = {
    401: "Sign in again with an API key or token the operator issued.",
    403: "Ask an operator if you need this; the refusal is as the API would give it.",
    404: "Check the address, or start again from the catalog.",
}


def error_response(request: Request, exc: Exception) -> Response:
    """The page (or redirect) that answers ``exc`` raised while serving ``request``."""
    if isinstance(exc, SignInRequired):
        return sign_in_redirect(request, notice=exc.where or "required")
    request_id = getattr(request.state, "request_id", None)
    if isinstance(exc, ConsoleError):
        view = _view(exc.status, exc.title, exc.message, exc.where, request_id)
    elif isinstance(exc, RequestValidationError):
        errors = [
            {"where": ".".join(str(p) for p in err["loc"]), "detail": err["msg"]}
            for err in exc.errors()
        ]
        view = _view(422, "Invalid request", f"{len(errors)} invalid field(s)", "", request_id)
        view["errors"] = errors
    elif isinstance(exc, StarletteHTTPException):
        title = HTTPStatus(exc.status_code).phrase if exc.status_code in _STATUSES else "Error"
        view = _view(exc.status_code, title, str(exc.detail), "", request_id)
    else:
        if problem_kind(exc) is INTERNAL:
            _log.error("console.failed", path=request.url.path, exc_info=exc)
        view = problem_body(exc, request_id=request_id, instance=request.url.path)
    headers: dict[str, str] = {}
    retry = getattr(exc, "retry_after_s", None)
    if isinstance(exc, TooManyAuthFailures) and retry is not None:
        headers["Retry-After"] = str(retry)
    response = page(
        request,
        "error.html",
        status=int(view["status"]),
        headers=headers,
        session=None
        if isinstance(exc, Unauthenticated)
        else getattr(request.state, "console_session", None),
        title=str(view["title"]),
        problem=view,
    )
    if isinstance(exc, Unauthenticated):  # a forged cookie: the browser forgets it
        response.delete_cookie(COOKIE, path=COOKIE_PATH)
    return response


def sign_in_redirect(request: Request, *, notice: str) -> Response:
    """303 to the sign-in page, back to this page after (GET pages only); forgets the cookie."""
    query: dict[str, str] = {"notice": notice}
    if request.method == "GET":
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        query["next"] = target
    response = RedirectResponse(f"{SIGN_IN}?{urlencode(query)}", status_code=303)
    response.headers.update(SECURITY_HEADERS)
    if notice != "required":
        response.delete_cookie(COOKIE, path=COOKIE_PATH)
    return response


def _view(
    status: int, title: str, detail: str, where: str, request_id: str | None
) -> dict[str, Any]:
    """Private: a problem-shaped view of a refusal that has no problem kind of its own."""
    return {
        "status": status,
        "title": title,
        "detail": detail,
        "hint": _HINTS.get(status, "Go back and try again."),
        "errors": [{"where": where, "detail": detail}] if where else [],
        "request_id": request_id,
        "code": f"console_{status}",
    }
