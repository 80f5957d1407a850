"""``GET /v1/selftest``: the report of ``govex selftest`` (:mod:`service.selftest`), over HTTP.

For whoever may read the ledger (policy ``read_ledger``: auditors and operators by
default). Always ``200`` with the report, failed checks included: read ``ok``.
"""

from __future__ import annotations

from fastapi import APIRouter

from service.deps import PrincipalDep, RuntimeDep
from service.routes.json_route import JsonRoute
from service.selftest import SelftestReport, selftest_for

router = APIRouter(prefix="/v1", tags=["operations"], route_class=JsonRoute)


@router.get("/selftest")
def get_selftest(runtime: RuntimeDep, principal: PrincipalDep) -> SelftestReport:
    """Every built-in check, ``N/N checks passed`` and the build's ``module_sha256``.

    The checks: catalog seal, policies, ledger chain, checkpoint signature, packet root,
    sources read-only, schemas, module_sha256 (docs/http.md).
    """
    return selftest_for(runtime, principal)
