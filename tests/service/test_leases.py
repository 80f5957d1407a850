"""Call leases on SQLite and PostgreSQL: the limit, release, reclaim, retry-after, processes.

Every test runs on a fresh database of each dialect, migrated with the service's own
upgrade path (``SERVICE_SCHEMA``). The clock is pinned: expiry is a later ``now``, never
a sleep. The process tests use ``spawn`` children, each with its own engine.
"""

from __future__ import annotations

import multiprocessing
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from structlog.testing import capture_logs

from ledger.migrate import current_revision, head_revision, upgrade
from ledger.sql_session import WRITE_OPTION, prepare_engine
from service.call_index import SERVICE_SCHEMA
from service.errors import LeaseUnavailable, ServiceError
from service.leases import Lease, LeaseGate, holding, lease_scope

if TYPE_CHECKING:
    from collections.abc import Iterator
    from multiprocessing.queues import Queue
    from multiprocessing.synchronize import Barrier

REPO_ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 23, 9, 15, 2, 123456, tzinfo=UTC)
TTL = timedelta(seconds=30)
ENTRY = "orders.by_day"
PROCESSES, LIMIT = 8, 3
_TIMEOUT_S = 120.0


def _engine(url: str) -> sa.Engine:
    """An engine as the ledger store prepares it, with the service schema at head."""
    engine = sa.create_engine(url)
    prepare_engine(engine)
    upgrade(engine.execution_options(**{WRITE_OPTION: True}), SERVICE_SCHEMA)
    return engine


@pytest.fixture(params=["sqlite", "postgresql"])
def lease_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database URL: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def engine(lease_url: str) -> Iterator[sa.Engine]:
    migrated = _engine(lease_url)
    yield migrated
    migrated.dispose()


@pytest.fixture
def gate(engine: sa.Engine) -> LeaseGate:
    return LeaseGate(engine)


def _rows(engine: sa.Engine, scope: str) -> list[tuple[str, str]]:
    """(lease_id, holder) of every stored lease of ``scope``, expired ones included."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT lease_id, holder FROM govex_leases WHERE scope = :s ORDER BY holder"),
            {"s": scope},
        )
        return [(str(lease_id), str(holder)) for lease_id, holder in rows]


def _take(
    gate: LeaseGate, holder: str, *, at: datetime = T0, limit: int = 2, ttl: timedelta = TTL
) -> Lease:
    return gate.acquire(ENTRY, holder, max_concurrent=limit, ttl=ttl, now=at)


# --- the migration ---------------------------------------------------------------------------


def test_the_service_upgrade_creates_the_lease_table_and_its_index(engine: sa.Engine) -> None:
    assert current_revision(engine, SERVICE_SCHEMA) == head_revision(SERVICE_SCHEMA)
    inspector = sa.inspect(engine)
    columns = {c["name"] for c in inspector.get_columns("govex_leases")}
    assert columns == {"lease_id", "scope", "holder", "acquired_at", "expires_at"}
    assert inspector.get_pk_constraint("govex_leases")["constrained_columns"] == ["lease_id"]
    indexes = {i["name"]: i["column_names"] for i in inspector.get_indexes("govex_leases")}
    assert indexes["ix_govex_leases_scope_expires"] == ["scope", "expires_at"]


def test_a_database_at_s0001_upgrades_to_the_lease_table(lease_url: str) -> None:
    engine = sa.create_engine(lease_url)
    prepare_engine(engine)
    try:
        with engine.begin() as conn:  # what deployments hold today: the call index only
            config = Config()
            config.set_main_option("script_location", str(SERVICE_SCHEMA.scripts))
            config.attributes["connection"] = conn
            config.attributes["version_table"] = SERVICE_SCHEMA.version_table
            command.upgrade(config, "s0001")
        assert current_revision(engine, SERVICE_SCHEMA) == "s0001"
        assert not sa.inspect(engine).has_table("govex_leases")
        upgrade(engine.execution_options(**{WRITE_OPTION: True}), SERVICE_SCHEMA)
        assert current_revision(engine, SERVICE_SCHEMA) == head_revision(SERVICE_SCHEMA)
        assert sa.inspect(engine).has_table("govex_leases")
        assert sa.inspect(engine).has_table("govex_calls")
    finally:
        engine.dispose()


# --- one process -----------------------------------------------------------------------------


def test_the_limit_is_respected_and_the_refusal_names_scope_limit_and_retry(
    gate: LeaseGate, engine: sa.Engine
) -> None:
    first, second = _take(gate, "call-a"), _take(gate, "call-b")
    with pytest.raises(LeaseUnavailable) as refused:
        _take(gate, "call-c", at=T0 + timedelta(seconds=1))
    error = refused.value
    assert isinstance(error, ServiceError)
    assert (error.scope, error.where, error.max_concurrent, error.held) == (ENTRY, ENTRY, 2, 2)
    assert error.retry_after_s == 29
    assert str(error) == (
        "lease unavailable for entry 'orders.by_day': 2 of 2 runs in progress; retry in 29 s"
    )
    assert _rows(engine, ENTRY) == [(first.lease_id, "call-a"), (second.lease_id, "call-b")]
    assert first.lease_id != second.lease_id
    assert (first.scope, first.holder) == (ENTRY, "call-a")
    assert (first.acquired_at, first.expires_at) == (T0, T0 + TTL)


def test_release_frees_a_slot_and_a_second_release_reports_false(gate: LeaseGate) -> None:
    first, _ = _take(gate, "call-a"), _take(gate, "call-b")
    assert gate.release(first) is True
    third = _take(gate, "call-c", at=T0 + timedelta(seconds=1))
    assert third.holder == "call-c"
    assert gate.release(first) is False
    with pytest.raises(LeaseUnavailable):
        _take(gate, "call-d", at=T0 + timedelta(seconds=2))


def test_expired_leases_are_reclaimed_and_their_release_reports_false(
    gate: LeaseGate, engine: sa.Engine
) -> None:
    stale = _take(gate, "call-a", limit=1)
    with pytest.raises(LeaseUnavailable):  # one microsecond before expiry it still holds
        _take(gate, "call-b", at=T0 + TTL - timedelta(microseconds=1), limit=1)
    fresh = _take(gate, "call-b", at=T0 + TTL, limit=1)  # expires_at <= now: reclaimed
    assert _rows(engine, ENTRY) == [(fresh.lease_id, "call-b")]
    assert gate.release(stale) is False
    assert gate.release(fresh) is True
    assert _rows(engine, ENTRY) == []


def test_a_refused_acquire_still_commits_its_reclaim(gate: LeaseGate, engine: sa.Engine) -> None:
    _take(gate, "call-a", ttl=timedelta(seconds=10))
    live = _take(gate, "call-b", ttl=timedelta(seconds=60))
    _take(gate, "call-c", at=T0 + timedelta(seconds=11), ttl=timedelta(seconds=60))
    with pytest.raises(LeaseUnavailable):
        _take(gate, "call-d", at=T0 + timedelta(seconds=12))
    assert [holder for _, holder in _rows(engine, ENTRY)] == ["call-b", "call-c"]
    assert live.holder == "call-b"


@pytest.mark.parametrize(
    ("at", "retry_after_s"),
    [
        pytest.param(timedelta(seconds=15), 15, id="whole-seconds"),
        pytest.param(timedelta(seconds=15, milliseconds=200), 15, id="rounded-up"),
        pytest.param(timedelta(seconds=14, milliseconds=999), 16, id="just-below-16"),
        pytest.param(timedelta(seconds=30) - timedelta(microseconds=1), 1, id="at-least-one"),
    ],
)
def test_retry_after_counts_to_the_earliest_live_expiry(
    gate: LeaseGate, at: timedelta, retry_after_s: int
) -> None:
    _take(gate, "call-late", ttl=timedelta(seconds=60))  # expires at T0 + 60 s
    _take(gate, "call-early", at=T0 + timedelta(seconds=10), ttl=timedelta(seconds=20))  # + 30 s
    with pytest.raises(LeaseUnavailable) as refused:
        _take(gate, "call-c", at=T0 + at)
    assert refused.value.retry_after_s == retry_after_s


def test_scopes_are_independent_entry_and_resource_keys(gate: LeaseGate) -> None:
    whole, eu, us = lease_scope(ENTRY), lease_scope(ENTRY, "eu"), lease_scope(ENTRY, "us")
    assert (whole, eu) == (ENTRY, "orders.by_day|eu")
    for scope in (whole, eu, us, "orders.by_month"):
        gate.acquire(scope, f"call-{scope}", max_concurrent=1, ttl=TTL, now=T0)
    with pytest.raises(LeaseUnavailable) as refused:
        gate.acquire(eu, "call-x", max_concurrent=1, ttl=TTL, now=T0)
    assert refused.value.scope == eu
    assert str(refused.value) == (
        "lease unavailable for entry 'orders.by_day' (resource 'eu'): "
        "1 of 1 runs in progress; retry in 30 s"
    )


def test_a_lowered_limit_reports_every_held_lease(gate: LeaseGate) -> None:
    for holder in ("call-a", "call-b", "call-c"):
        _take(gate, holder, limit=3)
    with pytest.raises(LeaseUnavailable) as refused:
        _take(gate, "call-d", limit=2)
    assert (refused.value.held, refused.value.max_concurrent) == (3, 2)
    assert "3 of 2 runs in progress" in str(refused.value)


def test_holding_releases_on_exit_and_on_an_exception(gate: LeaseGate, engine: sa.Engine) -> None:
    with holding(gate, ENTRY, "call-a", max_concurrent=1, ttl=TTL, now=T0) as lease:
        assert _rows(engine, ENTRY) == [(lease.lease_id, "call-a")]
    assert _rows(engine, ENTRY) == []
    with (
        pytest.raises(RuntimeError, match="run failed"),
        holding(gate, ENTRY, "call-b", max_concurrent=1, ttl=TTL, now=T0),
    ):
        raise RuntimeError("run failed")
    assert _rows(engine, ENTRY) == []


def test_holding_logs_a_lease_reclaimed_before_its_release(gate: LeaseGate) -> None:
    with capture_logs() as logs, holding(gate, ENTRY, "call-a", max_concurrent=1, ttl=TTL, now=T0):
        _take(gate, "call-b", at=T0 + TTL, limit=1)  # the run outlived its TTL
    assert [(e["event"], e["holder"], e["log_level"]) for e in logs] == [
        ("lease_reclaimed_before_release", "call-a", "warning")
    ]


def test_holding_refuses_before_the_body_runs(gate: LeaseGate) -> None:
    _take(gate, "call-a", limit=1)
    ran = False
    with (
        pytest.raises(LeaseUnavailable),
        holding(gate, ENTRY, "call-b", max_concurrent=1, ttl=TTL, now=T0),
    ):
        ran = True
    assert ran is False


def test_renew_extends_a_held_lease_and_reports_a_reclaimed_one(gate: LeaseGate) -> None:
    lease = _take(gate, "call-a", limit=1)
    renewed = gate.renew(lease, ttl=TTL, now=T0 + timedelta(seconds=20))
    assert renewed is not None
    assert renewed.expires_at == T0 + timedelta(seconds=50)
    with pytest.raises(LeaseUnavailable) as refused:  # the old expiry no longer frees it
        _take(gate, "call-b", at=T0 + timedelta(seconds=40), limit=1)
    assert refused.value.retry_after_s == 10
    _take(gate, "call-b", at=T0 + timedelta(seconds=50), limit=1)
    assert gate.renew(lease, ttl=TTL, now=T0 + timedelta(seconds=50)) is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"max_concurrent": 0}, "at least 1", id="no-slots"),
        pytest.param({"ttl": timedelta(0)}, "must be positive", id="zero-ttl"),
        pytest.param({"now": datetime(2026, 11, 23, 9, 15)}, "timezone-aware", id="naive-now"),  # noqa: DTZ001
        pytest.param({"scope": ""}, "scope must have 1 to 400", id="empty-scope"),
        pytest.param({"scope": "e" * 401}, "scope must have 1 to 400", id="long-scope"),
        pytest.param({"holder": "c" * 65}, "holder must have 1 to 64", id="long-holder"),
    ],
)
def test_unusable_arguments_are_refused_before_any_write(
    gate: LeaseGate, engine: sa.Engine, kwargs: dict[str, object], message: str
) -> None:
    arguments: dict[str, object] = {
        "scope": ENTRY,
        "holder": "call-a",
        "max_concurrent": 1,
        "ttl": TTL,
        "now": T0,
    } | kwargs
    with pytest.raises(ValueError, match=message):
        gate.acquire(**arguments)  # type: ignore[arg-type]
    assert _rows(engine, ENTRY) == []


@pytest.mark.parametrize(
    ("entry", "key"),
    [
        pytest.param("", None, id="empty-entry"),
        pytest.param("a|b", None, id="separator-in-entry"),
        pytest.param(ENTRY, "", id="empty-key"),
    ],
)
def test_lease_scope_refuses_ambiguous_parts(entry: str, key: str | None) -> None:
    with pytest.raises(ValueError, match="must be non-empty"):
        lease_scope(entry, key)


# --- several processes -----------------------------------------------------------------------

Outcome = tuple[str, str, int]  # process name, "acquired" | "unavailable", retry_after_s


def _acquire_in_child(url: str, name: str, start: Barrier, outcomes: Queue[Outcome]) -> None:
    """Child process: connect, wait for the others, then try the one shared scope once."""
    engine = sa.create_engine(url)
    gate = LeaseGate(engine)
    with engine.connect() as conn:  # the connection is open before the race starts
        conn.execute(sa.text("SELECT 1"))
    start.wait(_TIMEOUT_S)
    try:
        gate.acquire(ENTRY, name, max_concurrent=LIMIT, ttl=TTL, now=T0)
    except LeaseUnavailable as exc:
        outcomes.put((name, "unavailable", exc.retry_after_s))
    else:
        outcomes.put((name, "acquired", 0))
    engine.dispose()


def test_eight_processes_at_once_get_exactly_the_limit(
    lease_url: str, engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Spawned children unpickle _acquire_in_child by module name (tests.service.test_leases).
    monkeypatch.syspath_prepend(str(REPO_ROOT))
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(PROCESSES + 1)
    outcomes: Queue[Outcome] = context.Queue()
    names = [f"p{n}" for n in range(PROCESSES)]
    children = [
        context.Process(target=_acquire_in_child, args=(lease_url, name, start, outcomes))
        for name in names
    ]
    try:
        for child in children:
            child.start()
        start.wait(_TIMEOUT_S)  # every child is connected: all acquire from here on
        received = [outcomes.get(timeout=_TIMEOUT_S) for _ in names]
        for child in children:
            child.join(_TIMEOUT_S)
    finally:
        for child in children:
            if child.is_alive():
                child.kill()
                child.join()
        outcomes.close()
    assert [child.exitcode for child in children] == [0] * PROCESSES
    assert sorted(name for name, _, _ in received) == names
    acquired = sorted(name for name, outcome, _ in received if outcome == "acquired")
    refused = [retry for _, outcome, retry in received if outcome == "unavailable"]
    assert len(acquired) == LIMIT
    assert refused == [30] * (PROCESSES - LIMIT)
    assert sorted(holder for _, holder in _rows(engine, ENTRY)) == acquired


def _acquire_and_hang(url: str, leases: Queue[Lease]) -> None:
    """Child process: take a lease, report it, and wait to be killed without releasing it."""
    engine = sa.create_engine(url)
    leases.put(LeaseGate(engine).acquire(ENTRY, "crashed", max_concurrent=1, ttl=TTL, now=T0))
    time.sleep(_TIMEOUT_S)


def test_a_killed_holder_is_reclaimed_after_its_ttl(
    lease_url: str, gate: LeaseGate, engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(REPO_ROOT))
    context = multiprocessing.get_context("spawn")
    leases: Queue[Lease] = context.Queue()
    child = context.Process(target=_acquire_and_hang, args=(lease_url, leases))
    child.start()
    try:
        crashed = leases.get(timeout=_TIMEOUT_S)
    finally:
        child.kill()  # SIGKILL: no release, no clean-up of any kind
        child.join(_TIMEOUT_S)
        leases.close()
    assert child.exitcode == -9
    assert _rows(engine, ENTRY) == [(crashed.lease_id, "crashed")]
    with pytest.raises(LeaseUnavailable) as refused:
        _take(gate, "next", at=T0 + timedelta(seconds=10), limit=1)
    assert refused.value.retry_after_s == 20
    reclaimer = _take(gate, "next", at=T0 + TTL, limit=1)
    assert _rows(engine, ENTRY) == [(reclaimer.lease_id, "next")]
    assert gate.release(crashed) is False
    assert gate.release(reclaimer) is True
