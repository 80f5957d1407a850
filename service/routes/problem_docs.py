"""The pages problem ``type`` URIs resolve to: ``GET /problems`` and ``/problems/{code}``.

A problem body's ``type`` is ``/problems/<code>``; following it gives a short page with
the problem's title, HTTP status, CLI exit code and what to do. Static, no script, no
authentication (it describes, it reveals nothing).
"""

from __future__ import annotations

from html import escape

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from service.errors import NotFound
from service.problems import PROBLEM_TYPE_PREFIX, ProblemKind, documented_kinds
from service.routes.json_route import JsonRoute

router = APIRouter(tags=["operations"], route_class=JsonRoute)

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><main>{body}</main></body></html>
"""


def _page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(_PAGE.format(title=escape(title), body=body))


def _describe(kind: ProblemKind) -> str:
    retry = (
        f"<p>Retry after about {kind.retry_after_s} s (the answer's <code>Retry-After</code>).</p>"
        if kind.retry_after_s
        else ""
    )
    return (
        f"<h1>{escape(kind.title)}</h1>"
        f"<dl><dt>code</dt><dd><code>{escape(kind.code)}</code></dd>"
        f"<dt>HTTP status</dt><dd>{kind.status}</dd>"
        f"<dt>govex CLI exit code</dt><dd>{kind.exit_code}</dd></dl>"
        f"<p>{escape(kind.hint)}</p>{retry}"
        "<p>The answer's <code>detail</code> names what was wrong; <code>errors[]</code> "
        "lists each failure with its place; <code>request_id</code> finds it in the log. "
        'All problems: <a href="/problems">/problems</a>.</p>'
    )


@router.get("/problems", response_class=HTMLResponse, include_in_schema=False)
def problem_index() -> HTMLResponse:
    """Every problem type, with its status."""
    items = "".join(
        f'<li><a href="{PROBLEM_TYPE_PREFIX}{escape(code)}"><code>{escape(code)}</code></a> '
        f"({kind.status}): {escape(kind.title)}</li>"
        for code, kind in sorted(documented_kinds().items())
    )
    return _page("govex problem types", f"<h1>govex problem types</h1><ul>{items}</ul>")


@router.get("/problems/{code}", response_class=HTMLResponse, include_in_schema=False)
def problem_page(code: str) -> HTMLResponse:
    """The page of one problem type; 404 (a problem) for a code that does not exist."""
    kind = documented_kinds().get(code)
    if kind is None:
        raise NotFound("problem type", code)
    return _page(kind.title, _describe(kind))
