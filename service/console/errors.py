"""Errors of the web console; :mod:`service.console.pages` turns each into a page or a redirect.

    ConsoleError                a console request refused before the core was asked
    ├── SignInRequired          no session, or one that expired or whose key ended: sign in again
    ├── CsrfRefused             a POST form without its session's CSRF token (403)
    ├── FormRefused             a body that is not a urlencoded form, too large, or malformed
    └── ConsoleUnavailable      no session secret is configured, or it cannot be read (503)

The core's refusals (policy, unknown ids, inputs) keep their own classes and their
problem kinds (:mod:`service.problems`), so a page says what the API would. A session
cookie whose signature does not verify is an ``Unauthenticated`` (ledgered as
``auth.refused``, like a refused bearer token), not one of these: it is a forgery, not
an ended session. This tree is apart from ``ServiceError``'s on purpose: these never
become problem+json, only pages.
"""

from __future__ import annotations


class ConsoleError(Exception):
    """Base of the console's refusals: an HTTP ``status``, a ``title`` and the place."""

    status = 400
    title = "Request refused"

    def __init__(self, message: str, *, where: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.where = where


class SignInRequired(ConsoleError):
    """No session, or one that ended (expired, key revoked or rotated); ``message`` says which."""

    status = 401
    title = "Sign in required"


class CsrfRefused(ConsoleError):
    """A POST form whose CSRF token is missing or is not its session's."""

    status = 403
    title = "Form refused"


class FormRefused(ConsoleError):
    """A POST body that is not ``application/x-www-form-urlencoded``, too large, or malformed."""

    def __init__(self, message: str, *, status: int = 400, where: str = "") -> None:
        super().__init__(message, where=where)
        self.status = status


class ConsoleUnavailable(ConsoleError):
    """Sign-in is off: no session secret is configured, or its file cannot be used."""

    status = 503
    title = "Console unavailable"
