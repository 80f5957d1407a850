"""Eight processes, each with several threads, append to one PostgreSQL ledger at once.

The order of entries is decided inside PostgreSQL (the append lock), so the
result must be one gap-free chain holding every acknowledged append exactly
at the seq its process was told. Each child opens its own store (the first
ones race to migrate the empty database), waits at a barrier so that all of
them append at the same time, and reports its acknowledged ``(seq, call_id)``
pairs after its last append returned.

The children come from a ``forkserver`` that imported the ledger once, so
eight interpreters do not each spend a second on imports; each is still its
own process with its own store, connections and committer.
"""

from __future__ import annotations

import itertools
import multiprocessing
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

from ledger.store import LedgerStore

if TYPE_CHECKING:
    from multiprocessing.queues import Queue
    from multiprocessing.synchronize import Barrier

REPO_ROOT = Path(__file__).resolve().parents[2]
PROCESSES, THREADS, PER_THREAD = 8, 4, 100
_TIMEOUT_S = 120.0

Report = tuple[str, list[tuple[int, str]], int]  # process name, acks (seq, call_id), commits


def _append_in_child(url: str, name: str, start: Barrier, reports: Queue[Report]) -> None:
    """Child process: open a store, wait for the others, append from ``THREADS`` threads."""
    acks: list[tuple[int, str]] = []  # list.append is atomic: the threads share it

    def work(thread: int) -> None:
        for n in range(PER_THREAD):
            call_id = f"{name}-t{thread}-{n}"
            entry = store.append(
                "call.denied", {"call_id": call_id, "reason": "load"}, datetime.now(UTC)
            )
            acks.append((entry.seq, call_id))  # only after append returned: acknowledged

    with LedgerStore.open(url) as store:
        start.wait(_TIMEOUT_S)
        workers = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        commits = store.group_commits
    reports.put((name, acks, commits))


def test_eight_processes_with_threads_make_one_gap_free_chain_holding_every_ack(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The forkserver imports the ledger once; the children unpickle _append_in_child by module
    # name (tests.ledger.test_multiprocess), so the repository root must be on their path.
    monkeypatch.syspath_prepend(str(REPO_ROOT))
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["ledger.store"])
    start = context.Barrier(PROCESSES + 1)
    reports: Queue[Report] = context.Queue()
    names = [f"p{n}" for n in range(PROCESSES)]
    children = [
        context.Process(target=_append_in_child, args=(pg_url, name, start, reports))
        for name in names
    ]
    try:
        for child in children:
            child.start()
        start.wait(_TIMEOUT_S)  # every child has opened its store: all append from here on
        received = [reports.get(timeout=_TIMEOUT_S) for _ in names]
        for child in children:
            child.join(_TIMEOUT_S)
    finally:
        for child in children:
            if child.is_alive():
                child.kill()
                child.join()
        reports.close()
    assert [child.exitcode for child in children] == [0] * PROCESSES
    total = PROCESSES * THREADS * PER_THREAD
    acked = {seq: call_id for _, acks, _ in received for seq, call_id in acks}
    assert sorted(name for name, _, _ in received) == names
    assert sum(len(acks) for _, acks, _ in received) == total
    assert len(acked) == total  # no seq was acknowledged to two appends
    with LedgerStore.open(pg_url) as store:
        report = store.verify()  # one chain: every seq from 0 present, every prev links
        stored = {entry.seq: str(entry.body["call_id"]) for entry in store.list_entries(0, total)}
        with store.engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT count(*) FROM ledger_entries")).scalar_one()
    assert (report.size, rows) == (total, total)  # no gap, nothing beyond the acknowledged
    assert stored == acked  # every acknowledged append is at the seq its process was told
    assert set(acked.values()) == {
        f"{name}-t{t}-{n}" for name in names for t in range(THREADS) for n in range(PER_THREAD)
    }
    # The processes really appended at once: their entries interleave in the chain.
    owners = [stored[seq].split("-", 1)[0] for seq in range(total)]
    switches = sum(a != b for a, b in itertools.pairwise(owners))
    assert switches > PROCESSES, f"only {switches} switches between processes"
