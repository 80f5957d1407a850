"""The documented PostgreSQL deployment: the owner migrates, the service role may INSERT and SELECT.

The database owner (here the superuser) migrates the ledger and applies
:func:`ledger.migrate.service_grants`; govex then runs as ``govex_service``.
The grant is a second wall beside the append-only triggers: the service role
is refused UPDATE, DELETE and TRUNCATE by the privilege check itself (the
message is PostgreSQL's "permission denied", not the triggers'), even while
the owner has the triggers disabled, and it cannot drop or disable them.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import psycopg
import pytest
import sqlalchemy as sa

import ledger.appender as appender_module
from ledger.errors import SchemaNotCurrent
from ledger.merkle import leaf_hash, verify_inclusion
from ledger.migrate import LEDGER_SCHEMA, current_revision, service_grants
from ledger.migrations.append_only import APPEND_ONLY_MESSAGE
from ledger.store import LedgerStore
from tests.pg_harness import SERVICE_PASSWORD, SERVICE_ROLE, PostgresServer

if TYPE_CHECKING:
    from collections.abc import Iterator

MOMENT = datetime(2026, 11, 23, 9, 15, 2, tzinfo=UTC)
TABLES = ("ledger_entries", "ledger_checkpoints")
CHANGES = {  # per table: statements the service role must be refused, with their verb
    "ledger_entries": {
        "UPDATE": "UPDATE ledger_entries SET kind = 'call.started' WHERE seq = 0",
        "DELETE": "DELETE FROM ledger_entries WHERE seq = 0",
        "TRUNCATE": "TRUNCATE ledger_entries",
    },
    "ledger_checkpoints": {
        "UPDATE": "UPDATE ledger_checkpoints SET note = 'forged' WHERE size = 2",
        "DELETE": "DELETE FROM ledger_checkpoints WHERE size = 2",
        "TRUNCATE": "TRUNCATE ledger_checkpoints",
    },
}


class Deployment:
    """One migrated, granted ledger database: SQL as its owner or as the service role."""

    def __init__(self, postgres: PostgresServer, owner_url: str) -> None:
        self.postgres = postgres
        self.owner_url = owner_url
        self.dbname = str(sa.engine.make_url(owner_url).database)
        self.service_url = postgres.url(self.dbname, SERVICE_ROLE, SERVICE_PASSWORD)

    def as_owner(self, sql: str) -> None:
        self.postgres.execute(sql, self.dbname)

    def as_service(self, sql: str) -> None:
        """Run ``sql`` in its own transaction as the service role; raises psycopg's error."""
        dsn = self.postgres.dsn(self.dbname, SERVICE_ROLE, SERVICE_PASSWORD)
        with psycopg.connect(dsn) as conn:
            assert conn.execute("SELECT current_user").fetchone() == (SERVICE_ROLE,)
            conn.execute(sql.encode())

    def size(self) -> int:
        with LedgerStore.open(self.owner_url, migrate=False) as store:
            return store.verify().size


@pytest.fixture
def deployment(postgres: PostgresServer, pg_url: str) -> Deployment:
    """A ledger migrated by its owner, with two entries and a checkpoint, and the grants applied."""
    with LedgerStore.open(pg_url) as owner_store:
        for n in range(2):
            owner_store.append("call.denied", {"call_id": f"o{n}", "reason": "owner"}, MOMENT)
        owner_store.add_checkpoint(2, owner_store.root(2), "two\n", MOMENT)
    deployed = Deployment(postgres, pg_url)
    for grant in service_grants(SERVICE_ROLE, (LEDGER_SCHEMA,)):
        deployed.as_owner(grant)
    return deployed


@pytest.fixture
def triggers_disabled(deployment: Deployment) -> Iterator[Deployment]:
    """The owner has switched the append-only triggers off (committed); back on afterwards."""
    for table in TABLES:
        deployment.as_owner(f"ALTER TABLE {table} DISABLE TRIGGER USER")
    yield deployment
    for table in TABLES:
        deployment.as_owner(f"ALTER TABLE {table} ENABLE TRIGGER USER")


def test_the_grants_are_select_and_insert_only() -> None:
    assert service_grants(SERVICE_ROLE, (LEDGER_SCHEMA,)) == [
        f"GRANT USAGE ON SCHEMA public TO {SERVICE_ROLE}",
        f"GRANT SELECT ON govex_ledger_version TO {SERVICE_ROLE}",
        f"GRANT SELECT, INSERT ON ledger_entries TO {SERVICE_ROLE}",
        f"GRANT SELECT, INSERT ON ledger_checkpoints TO {SERVICE_ROLE}",
    ]
    with pytest.raises(ValueError, match="plain SQL identifier"):
        service_grants("govex; DROP TABLE ledger_entries", (LEDGER_SCHEMA,))


def test_the_service_role_opens_appends_and_reads_a_migrated_ledger(
    deployment: Deployment,
) -> None:
    # migrate=True at head only reads the version table, which the grant allows.
    with LedgerStore.open(deployment.service_url) as store:
        with store.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT current_user")).scalar_one() == SERVICE_ROLE
        entries = [
            store.append("call.denied", {"call_id": f"s{n}", "reason": "service"}, MOMENT)
            for n in range(3)
        ]
        assert [e.seq for e in entries] == [2, 3, 4]
        assert store.get(0).body["call_id"] == "o0"  # the owner's entries are readable
        assert store.list_entries(2, 3) == entries
        size, root = store.tree_head()
        assert size == 5
        proof = store.inclusion_proof(3, size)
        verify_inclusion(3, size, leaf_hash(store.get_leaf_input(3)), proof, root)
        stored = store.add_checkpoint(size, root, "five\n", MOMENT)  # INSERT on checkpoints
        assert store.latest_checkpoint() == stored
        assert store.verify().size == 5
    with LedgerStore.open(deployment.service_url, migrate=False) as store:
        assert current_revision(store.engine, LEDGER_SCHEMA) is not None
        assert store.size() == 5


@pytest.mark.parametrize("tries", [3, 0], ids=["optimistic-function", "lock-then-copy"])
def test_the_service_role_appends_on_each_postgresql_append_path_under_contention(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch, tries: int
) -> None:
    # tries=0 skips the one-round-trip govex_ledger_append and always takes the append lock
    # through govex_ledger_lock_head() and COPY: both paths must work with INSERT and SELECT.
    monkeypatch.setattr(appender_module, "_OPTIMISTIC_TRIES", tries)
    failures: list[BaseException] = []
    stores = [LedgerStore.open(deployment.service_url) for _ in range(2)]

    def work(store: LedgerStore, name: str) -> None:
        try:
            for n in range(20):
                store.append("call.denied", {"call_id": f"{name}-{n}", "reason": "load"}, MOMENT)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            failures.append(exc)

    try:
        workers = [
            threading.Thread(target=work, args=(store, f"s{i}-t{t}"))
            for i, store in enumerate(stores)
            for t in range(3)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    finally:
        for store in stores:
            store.close()
    assert failures == []
    assert deployment.size() == 2 + 2 * 3 * 20


def _refusals() -> list[tuple[str, str, str]]:
    return [
        (table, verb, sql) for table, changes in CHANGES.items() for verb, sql in changes.items()
    ]


def _ids() -> list[str]:
    return [f"{verb}-{table}" for table, verb, _ in _refusals()]


@pytest.mark.parametrize(("table", "verb", "sql"), _refusals(), ids=_ids())
def test_changes_by_the_service_role_are_refused_by_the_grant(
    deployment: Deployment, table: str, verb: str, sql: str
) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege) as caught:
        deployment.as_service(sql)
    assert f"permission denied for table {table}" in str(caught.value), verb
    assert APPEND_ONLY_MESSAGE not in str(caught.value)  # refused before any trigger ran
    assert deployment.size() == 2


@pytest.mark.parametrize(("table", "verb", "sql"), _refusals(), ids=_ids())
def test_the_grant_holds_while_the_owner_has_the_triggers_disabled(
    triggers_disabled: Deployment, table: str, verb: str, sql: str
) -> None:
    # The triggers really are off: the owner's own change goes through (and is rolled back).
    owner = sa.create_engine(triggers_disabled.owner_url)
    try:
        with owner.connect() as conn:
            changed = conn.execute(sa.text(sql)).rowcount
            count = f"SELECT count(*) FROM {table}"  # noqa: S608 - a table name of ours
            left = conn.execute(sa.text(count)).scalar_one()
            assert (left == 0) if verb == "TRUNCATE" else (changed == 1), verb
            conn.rollback()
    finally:
        owner.dispose()
    with pytest.raises(psycopg.errors.InsufficientPrivilege) as caught:
        triggers_disabled.as_service(sql)
    assert f"permission denied for table {table}" in str(caught.value), verb
    assert triggers_disabled.size() == 2


@pytest.mark.parametrize(
    "sql",
    [
        pytest.param("DROP TRIGGER ledger_entries_no_change ON ledger_entries", id="drop-trigger"),
        pytest.param(
            "DROP TRIGGER ledger_checkpoints_no_truncate ON ledger_checkpoints",
            id="drop-truncate-trigger",
        ),
        pytest.param("ALTER TABLE ledger_entries DISABLE TRIGGER USER", id="disable-triggers"),
        pytest.param(
            "ALTER TABLE ledger_checkpoints DISABLE TRIGGER ledger_checkpoints_no_change",
            id="disable-one-trigger",
        ),
        pytest.param("ALTER TABLE ledger_entries ADD COLUMN forged text", id="add-column"),
        pytest.param("ALTER TABLE ledger_entries RENAME TO old_entries", id="rename-table"),
        pytest.param("DROP TABLE ledger_checkpoints", id="drop-table"),
        pytest.param(
            "CREATE OR REPLACE FUNCTION govex_refuse_change() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN RETURN OLD; END $$",
            id="replace-trigger-function",
        ),
    ],
)
def test_the_service_role_cannot_drop_or_disable_the_append_only_guard(
    deployment: Deployment, sql: str
) -> None:
    # Refused for not owning the object, or (replacing the function) for lacking CREATE.
    refused = "must be owner of|permission denied for schema public"
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match=refused):
        deployment.as_service(sql)
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match=APPEND_ONLY_MESSAGE):
        deployment.as_owner("DELETE FROM ledger_entries")  # the guard is still in place


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE govex_ledger_version SET version_num = 'l0001'",
        "DELETE FROM govex_ledger_version",
        "INSERT INTO govex_ledger_version VALUES ('l9999')",
    ],
    ids=["update", "delete", "insert"],
)
def test_the_service_role_cannot_change_the_schema_revision(
    deployment: Deployment, sql: str
) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
        deployment.as_service(sql)


def test_an_unmigrated_database_opened_by_the_service_role_is_not_current(
    postgres: PostgresServer, pg_url: str
) -> None:
    service_url = Deployment(postgres, pg_url).service_url
    with pytest.raises(SchemaNotCurrent, match="run `govex db upgrade` as the database owner"):
        LedgerStore.open(service_url, migrate=False)


def test_an_unmigrated_database_cannot_be_migrated_by_the_service_role(
    postgres: PostgresServer, pg_url: str
) -> None:
    deployment = Deployment(postgres, pg_url)
    with pytest.raises(SchemaNotCurrent) as caught:
        LedgerStore.open(deployment.service_url)
    assert "run `govex db upgrade` as the database owner" in str(caught.value)
    assert "permission denied for schema public" in str(caught.value)
    assert caught.value.schema == "ledger"
    owner = sa.create_engine(pg_url)
    try:
        with owner.connect() as conn:
            assert sa.inspect(conn).get_table_names() == []  # the attempt left nothing behind
    finally:
        owner.dispose()
