"""The adversarial corpus through the whole call path: ledgered, refused, no packet, no change.

The runtime the service builds refuses to load a catalog that fails the static check, so
this test swaps a catalog of corpus statements into a running runtime (the test-only seam
:func:`tests.hardening.corpus_world.unchecked_catalog`: nothing in the service can reach it),
then calls :func:`service.calls.execute`, the core path behind ``POST /v1/calls`` and
``govex call``. Each call must end ``error_running`` with the boundary's refusal in its
``call.finished`` entry, publish no packet, and leave the source, the packet root and the
folder the statement aims at exactly as they were.

``make test`` runs the first statement of each rule on each engine (not marked ``soak``);
``make soak`` runs them all.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.calls import execute
from service.contract import CallRequest
from service.identity import Principal
from service.runtime import Runtime, build_runtime
from service.settings import Settings
from service.verdicts import Verdict
from tests.e2e.conftest import make_world
from tests.hardening.corpus_data import RAN, Mutating, mutating
from tests.hardening.corpus_world import (
    PgShop,
    SqliteShop,
    unchecked_catalog,
    unchecked_entry_id,
)
from tests.hardening.fingerprint import Fingerprint, folder_fingerprint
from tests.pg_harness import PostgresServer

ALICE = Principal(
    id="alice", roles=("analyst",), tenant="acme", auth_method="api_key", key_id="k-alice"
)
REFUSED = [m for m in mutating() if m.boundary != RAN]


def _bounded(records: list[Mutating]) -> set[str]:
    """The first statement of each (engine, rule) not marked ``soak``: what ``make test`` runs."""
    firsts: dict[tuple[str, str], str] = {}
    for record in records:
        if not record.soak:
            firsts.setdefault((record.engine, record.rule), record.id)
    return set(firsts.values())


BOUNDED = _bounded(REFUSED)
RUNS = [
    pytest.param(r, id=r.id, marks=() if r.id in BOUNDED else (pytest.mark.soak,)) for r in REFUSED
]


@pytest.fixture(scope="module")
def world(
    postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Runtime, PgShop, SqliteShop]]:
    root = tmp_path_factory.mktemp("calls")
    pg = PgShop.create(postgres, root / "pg-var")
    sq = SqliteShop.create(root / "sqlite", wal=False)
    base = make_world(root / "service")
    settings = Settings(
        **{
            **base.model_dump(),
            "sources": {**base.sources, "shop_pg": pg.source.conninfo, "shop_sq": str(sq.path)},
        }
    )
    runtime = build_runtime(settings)
    hostile = unchecked_catalog(
        [
            (r, "shop_pg" if r.engine == "postgresql" else "shop_sq", _var(r, pg, sq))
            for r in REFUSED
        ]
    )
    try:
        yield dataclasses.replace(runtime, sealed=hostile), pg, sq
    finally:
        runtime.close()
        pg.close()


def _var(record: Mutating, pg: PgShop, sq: SqliteShop) -> Path:
    return pg.var if record.engine == "postgresql" else sq.var


def _fingerprint(runtime: Runtime, pg: PgShop, sq: SqliteShop, record: Mutating) -> Fingerprint:
    service = folder_fingerprint(runtime.settings.packet_root)
    source = pg.fingerprint() if record.engine == "postgresql" else sq.fingerprint()
    return Fingerprint({**service.parts, **source.parts})


@pytest.mark.parametrize("record", RUNS)
def test_a_mutating_entry_ends_error_running_with_no_packet_and_no_change(
    world: tuple[Runtime, PgShop, SqliteShop], record: Mutating
) -> None:
    runtime, pg, sq = world
    before = _fingerprint(runtime, pg, sq, record)
    request = CallRequest(entry=unchecked_entry_id(record))
    result = execute(runtime, ALICE, request, request_id=None)
    changed = before.diff(_fingerprint(runtime, pg, sq, record))
    assert result.verdict is Verdict.error_running
    assert result.error is not None
    assert record.expected(copy=record.engine == "postgresql") in result.error
    assert result.packet_id is None
    assert result.finished_seq is not None
    finished = runtime.ledger.get(result.finished_seq)
    assert finished.kind == "call.finished"
    assert finished.body["verdict"] == "error_running"
    assert finished.body["error"] == result.error
    assert changed == {}
