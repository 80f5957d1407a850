"""The in-process queue for SQLite's write lock (:func:`ledger.sql_session.sqlite_write_gate`)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

from ledger.sql_session import WRITE_OPTION, prepare_engine, sqlite_write_gate

if TYPE_CHECKING:
    from pathlib import Path


def _engine(path: Path) -> sa.Engine:
    engine = sa.create_engine(f"sqlite:///{path}")
    prepare_engine(engine)
    with engine.execution_options(**{WRITE_OPTION: True}).begin() as conn:
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS t (n INTEGER PRIMARY KEY)")
    return engine


def test_two_names_of_one_file_share_one_gate(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    direct = sqlite_write_gate(str(tmp_path / "db.sqlite"))
    roundabout = sqlite_write_gate(str(tmp_path / "sub" / ".." / "db.sqlite"))
    assert direct is roundabout
    assert sqlite_write_gate(str(tmp_path / "other.sqlite")) is not direct


def test_a_write_transaction_holds_the_gate_until_its_connection_is_returned(
    tmp_path: Path,
) -> None:
    engine = _engine(tmp_path / "db.sqlite")
    gate = sqlite_write_gate(str(tmp_path / "db.sqlite"))
    writer = engine.execution_options(**{WRITE_OPTION: True})
    with writer.begin() as conn:
        conn.exec_driver_sql("INSERT INTO t VALUES (1)")
        assert not gate._lock.acquire(blocking=False)  # held by this transaction
    assert gate._lock.acquire(blocking=False)  # given back with the connection
    gate.leave()
    with engine.connect() as reader:  # reads never take it
        assert gate._lock.acquire(blocking=False)
        gate.leave()
        assert reader.exec_driver_sql("SELECT count(*) FROM t").scalar_one() == 1
    engine.dispose()


def test_a_failed_write_transaction_gives_the_gate_back(tmp_path: Path) -> None:
    engine = _engine(tmp_path / "db.sqlite")
    gate = sqlite_write_gate(str(tmp_path / "db.sqlite"))
    writer = engine.execution_options(**{WRITE_OPTION: True})
    with writer.begin() as conn:
        conn.exec_driver_sql("INSERT INTO t VALUES (1)")
    with pytest.raises(sa.exc.IntegrityError), writer.begin() as conn:
        conn.exec_driver_sql("INSERT INTO t VALUES (1)")
    assert gate._lock.acquire(timeout=1)
    gate.leave()
    engine.dispose()


def test_concurrent_writers_of_one_process_all_commit(tmp_path: Path) -> None:
    engine = _engine(tmp_path / "db.sqlite")
    writer = engine.execution_options(**{WRITE_OPTION: True})
    errors: list[BaseException] = []

    def write(start: int) -> None:
        try:
            for n in range(start, start + 25):
                with writer.begin() as conn:
                    conn.exec_driver_sql("INSERT INTO t VALUES (?)", (n,))
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(k * 100,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar_one() == 200
    engine.dispose()
