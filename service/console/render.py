"""Rendering pages: one Jinja2 environment (autoescaped, strict), the headers every page gets.

Every value reaches the HTML through Jinja2's autoescape: a principal id, an input or a
ledger body that holds markup shows as text. Pages load nothing from another origin:
the stylesheet and the one script are the console's own (``/console/static``), and the
``Content-Security-Policy`` below tells the browser to refuse anything else, inline
scripts and styles included.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined

if TYPE_CHECKING:
    from collections.abc import Mapping

    from fastapi import Request

    from service.console.state import ConsoleState

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")
_STEP = 1024


class Renderer:
    """The console's templates, with its filters."""

    def __init__(self, directory: Path = TEMPLATES) -> None:
        self._env = Environment(
            loader=FileSystemLoader(directory),
            autoescape=True,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._env.filters.update(pretty=pretty, count=count, size=size)

    def render(self, template: str, context: Mapping[str, Any]) -> str:
        return self._env.get_template(template).render(context)


def page(
    request: Request,
    template: str,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    **context: Any,  # noqa: ANN401 - template values
) -> HTMLResponse:
    """``template`` rendered with ``context`` (plus the request id), as an HTML response.

    ``context`` should name ``session`` (None on pages shown signed out) and ``title``.
    """
    state: ConsoleState = request.app.state.console
    session = context.get("session")
    base = {
        "request_id": getattr(request.state, "request_id", None),
        "principal": None if session is None else session.principal,
        "csrf": None if session is None else session.csrf,
        "section": "",
    }
    html = state.renderer.render(template, {**base, **context})
    return HTMLResponse(html, status_code=status, headers={**SECURITY_HEADERS, **(headers or {})})


def pretty(value: object) -> str:
    """``value`` as indented JSON, keys sorted, for reading (never for hashing)."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def size(value: int | None) -> str:
    """A byte count for people: ``1,234 B``, ``12.1 KiB``."""
    if value is None:
        return "-"
    amount = float(value)
    for unit in _UNITS:
        if amount < _STEP or unit == _UNITS[-1]:
            return f"{value:,} B" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= _STEP
    return f"{value:,} B"  # pragma: no cover - the loop returns at the last unit
