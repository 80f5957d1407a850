"""Console routes: the catalog, one entry with its form, its dry run, and starting a run."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse

from service.console import actions
from service.console.deps import SessionDep, SignedFormDep, request_id_of
from service.console.forms import PARAM_PREFIX
from service.console.render import page
from service.console.route import ConsoleRoute
from service.console.view_catalog import catalog_page, entry_view
from service.deps import ExecutorDep, RuntimeDep

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)


@router.get("/catalog")
def catalog(request: Request, runtime: RuntimeDep, session: SessionDep) -> Response:
    """Every entry, the seal, the catalog's authority."""
    view = catalog_page(runtime)
    return page(
        request, "catalog.html", session=session, section="catalog", title="Catalog", view=view
    )


@router.get("/catalog/{entry_id}")
def entry(
    request: Request,
    entry_id: str,
    runtime: RuntimeDep,
    session: SessionDep,
    output_format: Annotated[str, Query(alias="format", max_length=16)] = actions.DEFAULT_FORMAT,
) -> Response:
    """One entry as sealed, and the form that dry-runs it (``p.<name>`` pre-fills an input)."""
    values = {
        name.removeprefix(PARAM_PREFIX): value
        for name, value in request.query_params.items()
        if name.startswith(PARAM_PREFIX)
    }
    return page(
        request,
        "entry.html",
        session=session,
        section="catalog",
        title=entry_id,
        entry=entry_view(runtime, entry_id, values),
        output_format=output_format,
    )


@router.post("/catalog/{entry_id}/dry-run")
def dry_run(
    request: Request,
    entry_id: str,
    runtime: RuntimeDep,
    session: SessionDep,
    form: SignedFormDep,
) -> Response:
    """Every check a run would meet, and the would-be contract (``call.dry_run`` ledgered)."""
    params = form.params()
    output_format = form.get("format") or actions.DEFAULT_FORMAT
    request_ = actions.call_request(entry_id, params, output_format, "dry_run")
    result = actions.dry_run(
        runtime, session.principal, request_, request_id=request_id_of(request)
    )
    report = result.dry_run
    checks = report.checks if report is not None else ()
    change = {f"{PARAM_PREFIX}{name}": value for name, value in params.items()}
    return page(
        request,
        "dry_run.html",
        session=session,
        section="catalog",
        title=f"Dry run of {entry_id}",
        entry_id=entry_id,
        report=report,
        failed=[c.check for c in checks if not c.passed],
        contract=result.contract.record(),
        policy_check=next((c for c in checks if c.check == "policy"), None),
        params=params,
        output_format=output_format,
        change_href=f"/console/catalog/{entry_id}?{urlencode({**change, 'format': output_format})}",
    )


@router.post("/catalog/{entry_id}/run")
def run(
    request: Request,
    entry_id: str,
    runtime: RuntimeDep,
    executor: ExecutorDep,
    session: SessionDep,
    form: SignedFormDep,
) -> Response:
    """Start a run (every check again, ``call.started`` durable) and follow it on its page."""
    request_ = actions.call_request(
        entry_id, form.params(), form.get("format") or actions.DEFAULT_FORMAT, "run"
    )
    call_id = actions.start_run(
        runtime, executor, session.principal, request_, request_id=request_id_of(request)
    )
    return RedirectResponse(f"/console/calls/{call_id}", status_code=303)
