"""Durable ledger appends on SQLite and PostgreSQL: appends/s, group-commit batch size, latency.

Each run opens a fresh ledger, appends one ``service.started`` entry (so the
connection and the committer thread exist before the clock starts), then
lets its callers append real call entries for a fixed time: each caller
loops over calls, appending a ``call.started`` (the whole Call Contract) and
then a ``call.finished``, one ``LedgerStore.append`` (or ``append_async``) at
a time, timing each. An append counts when it returned: it is committed and
durable. After the run the ledger is verified (``LedgerStore.verify``: the
hash chain, the stored hashes, no gap) and its size must be exactly the
entries acknowledged, whose seqs must be exactly the ledger's, each once.

Nothing is tuned for the benchmark: SQLite runs in WAL mode with
``synchronous=FULL`` as the store sets it, PostgreSQL with its defaults
(checked: ``fsync=on``, ``synchronous_commit=on``), both on files of the
normal disk.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
import time
from array import array
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from bench.entries import call_id, finished, service_started_body, started
from ledger.store import LedgerStore

if TYPE_CHECKING:
    from collections.abc import Callable

SECONDS = 4.0  # measured time of each run
CALLERS = 32
PROCESSES = 2
POSTGRES_TARGET = 15_000  # durable entries/s with 32 concurrent callers, 2-core machine
SQLITE_TARGET = 5_000


class BenchError(RuntimeError):
    """A run whose result cannot be trusted: a failed append, a ledger that does not verify."""


@dataclass(frozen=True)
class Mode:
    """How a run's callers are made: threads, asyncio tasks, or processes of threads."""

    label: str
    threads: int = 0
    tasks: int = 0
    processes: int = 0  # when set, ``threads`` threads in each process

    @property
    def callers(self) -> int:
        return max(self.threads, 1) * max(self.processes, 1) if not self.tasks else self.tasks


ONE = Mode("1 caller (a thread calling append)", threads=1)
THREADS = Mode(f"{CALLERS} threads calling append", threads=CALLERS)
TASKS = Mode(f"{CALLERS} asyncio tasks awaiting append_async", tasks=CALLERS)
PROCESS_THREADS = Mode(
    f"{PROCESSES} processes x {CALLERS // PROCESSES} threads calling append",
    threads=CALLERS // PROCESSES,
    processes=PROCESSES,
)


@dataclass(frozen=True)
class Load:
    """What the callers of one run did: acknowledged appends, time, commits, latencies, seqs."""

    appends: int
    seconds: float
    commits: int
    latencies_ns: array[int]
    seqs: array[int]


@dataclass(frozen=True)
class Run:
    """One measured run and its verification."""

    mode: Mode
    load: Load
    verified_size: int
    verify_seconds: float
    target: int | None

    @property
    def rate(self) -> float:
        return self.load.appends / self.load.seconds

    def row(self) -> str:
        """This run as a row of the results table."""
        load = self.load
        latencies = sorted(load.latencies_ns)
        p50 = latencies[len(latencies) // 2] / 1e6
        p99 = latencies[min(int(len(latencies) * 0.99), len(latencies) - 1)] / 1e6
        if self.target is None:
            target = "-"
        else:
            verdict = "**met**" if self.rate >= self.target else "**NOT met**"
            target = f">= {self.target:,}/s: {verdict}"
        return (
            f"| {self.mode.label} | {self.rate:,.0f} | {load.appends / max(load.commits, 1):.1f} "
            f"({load.commits:,} commits) | {p50:.2f} ms | {p99:.2f} ms | "
            f"{self.verified_size:,} entries, chain and count OK ({self.verify_seconds:.1f} s) | "
            f"{target} |"
        )


TABLE_HEAD = (
    "| callers | durable appends/s | mean batch (appends/commit) | p50 latency | p99 latency "
    "| verified afterwards | target (2 cores) |\n|---|---|---|---|---|---|---|"
)

# -- callers -----------------------------------------------------------------------------------


def _calls(
    store: LedgerStore, prefix: str, deadline: float, latencies: array[int], seqs: array[int]
) -> None:
    """Private: one caller's loop, a call (started, finished) at a time until ``deadline``."""
    number = 0
    while time.monotonic() < deadline:
        call = call_id(number, prefix)
        for kind, body in (
            ("call.started", started(call, number)),
            ("call.finished", finished(call, number)),
        ):
            t0 = time.perf_counter_ns()
            entry = store.append(kind, body, datetime.now(UTC))
            latencies.append(time.perf_counter_ns() - t0)
            seqs.append(entry.seq)
        number += 1


async def _async_calls(
    store: LedgerStore, prefix: str, deadline: float, latencies: array[int], seqs: array[int]
) -> None:
    """Private: :func:`_calls` as a coroutine awaiting ``append_async``."""
    number = 0
    while time.monotonic() < deadline:
        call = call_id(number, prefix)
        for kind, body in (
            ("call.started", started(call, number)),
            ("call.finished", finished(call, number)),
        ):
            t0 = time.perf_counter_ns()
            entry = await store.append_async(kind, body, datetime.now(UTC))
            latencies.append(time.perf_counter_ns() - t0)
            seqs.append(entry.seq)
        number += 1


def _merge(parts: list[array[int]]) -> array[int]:
    merged: array[int] = array("q")
    for part in parts:
        merged.extend(part)
    return merged


def _run_threads(
    store: LedgerStore, threads: int, seconds: float, tag: str
) -> tuple[float, float, array[int], array[int]]:
    """Private: ``threads`` callers for ``seconds``; ``(start, end, latencies, seqs)``."""
    started_at: list[float] = []
    barrier = threading.Barrier(threads, action=lambda: started_at.append(time.monotonic()))
    latencies = [array("q") for _ in range(threads)]
    seqs = [array("q") for _ in range(threads)]
    errors: list[BaseException] = []

    def caller(index: int) -> None:
        try:
            barrier.wait()
            _calls(store, f"01{tag}{index:02d}", started_at[0] + seconds, latencies[index], seqs[index])
        except BaseException as exc:  # noqa: BLE001 - reported after the run
            errors.append(exc)

    workers = [threading.Thread(target=caller, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    end = time.monotonic()
    if errors:
        raise BenchError(f"{len(errors)} caller(s) failed, first: {errors[0]!r}") from errors[0]
    return started_at[0], end, _merge(latencies), _merge(seqs)


def _run_tasks(
    store: LedgerStore, tasks: int, seconds: float
) -> tuple[float, float, array[int], array[int]]:
    """Private: ``tasks`` coroutines on one event loop for ``seconds``."""
    latencies = [array("q") for _ in range(tasks)]
    seqs = [array("q") for _ in range(tasks)]

    async def main() -> tuple[float, float]:
        start = time.monotonic()
        await asyncio.gather(
            *(
                _async_calls(store, f"01A{i:02d}", start + seconds, latencies[i], seqs[i])
                for i in range(tasks)
            )
        )
        return start, time.monotonic()

    start, end = asyncio.run(main())
    return start, end, _merge(latencies), _merge(seqs)


def _process_main(
    url: str,
    index: int,
    threads: int,
    seconds: float,
    barrier: Any,  # noqa: ANN401 - a multiprocessing Barrier
    results: Any,  # noqa: ANN401 - a multiprocessing Queue
) -> None:
    """A spawned process: its own store on ``url``, ``threads`` callers, results to the parent."""
    store = LedgerStore.open(url, migrate=False)
    try:
        store.size()  # connected before the clock starts
        barrier.wait()
        commits = store.group_commits
        start, end, latencies, seqs = _run_threads(store, threads, seconds, f"P{index}T")
        results.put((start, end, store.group_commits - commits, latencies.tobytes(), seqs.tobytes()))
    except BaseException as exc:
        results.put(repr(exc))
        raise
    finally:
        store.close()


def _run_processes(
    url: str, processes: int, threads: int, seconds: float
) -> tuple[float, float, int, array[int], array[int]]:
    """Private: ``processes`` spawned processes of ``threads`` callers each, on one database."""
    context = multiprocessing.get_context("spawn")  # no fork of a process holding threads
    barrier = context.Barrier(processes)
    results = context.Queue()
    workers = [
        context.Process(target=_process_main, args=(url, i, threads, seconds, barrier, results))
        for i in range(processes)
    ]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=seconds + 300) for _ in workers]
    for worker in workers:
        worker.join()
    failed = [o for o in outcomes if isinstance(o, str)]
    if failed:
        raise BenchError(f"a process failed: {failed[0]}")
    latencies: array[int] = array("q")
    seqs: array[int] = array("q")
    for _, _, _, lat, seq in outcomes:
        latencies.frombytes(lat)
        seqs.frombytes(seq)
    start = min(o[0] for o in outcomes)
    end = max(o[1] for o in outcomes)
    return start, end, sum(o[2] for o in outcomes), latencies, seqs


# -- one run -----------------------------------------------------------------------------------


def measure(url: str, mode: Mode, target: int | None, seconds: float = SECONDS) -> Run:
    """One run of ``mode`` on a fresh ledger at ``url``, verified afterwards."""
    store = LedgerStore.open(url)
    try:
        store.append("service.started", service_started_body(), datetime.now(UTC))
        base = store.size()
        if mode.processes:
            start, end, commits, latencies, seqs = _run_processes(
                url, mode.processes, mode.threads, seconds
            )
        else:
            before = store.group_commits
            if mode.tasks:
                start, end, latencies, seqs = _run_tasks(store, mode.tasks, seconds)
            else:
                start, end, latencies, seqs = _run_threads(store, mode.threads, seconds, "T")
            commits = store.group_commits - before
        load = Load(len(seqs), end - start, commits, latencies, seqs)
        size, verify_seconds = _verify(store, load, base)
    finally:
        store.close()
    return Run(mode, load, size, verify_seconds, target)


def _verify(store: LedgerStore, load: Load, base: int) -> tuple[int, float]:
    """Private: the ledger verifies and holds exactly the acknowledged appends after ``base``."""
    t0 = time.perf_counter()
    report = store.verify()
    seconds = time.perf_counter() - t0
    size = store.size()
    if report.size != size or size != base + load.appends:
        raise BenchError(
            f"ledger has {size} entries (verified {report.size}), "
            f"expected {base} + {load.appends} acknowledged"
        )
    if sorted(load.seqs) != list(range(base, size)):
        raise BenchError("the acknowledged seqs are not exactly the ledger's entries")
    return size, seconds


# -- settings ----------------------------------------------------------------------------------


def sqlite_settings(url: str) -> dict[str, str]:
    """The durability settings a store's SQLite connections run with (checked)."""
    store = LedgerStore.open(url)
    try:
        with store.engine.connect() as conn:
            journal = str(conn.exec_driver_sql("PRAGMA journal_mode").scalar_one())
            synchronous = int(conn.exec_driver_sql("PRAGMA synchronous").scalar_one())
    finally:
        store.close()
    if journal != "wal" or synchronous != 2:  # noqa: PLR2004 - 2 is FULL
        raise BenchError(f"SQLite runs with journal_mode={journal}, synchronous={synchronous}")
    return {"journal_mode": journal, "synchronous": "FULL (2)"}


POSTGRES_SETTINGS = (
    "server_version",
    "fsync",
    "synchronous_commit",
    "wal_sync_method",
    "full_page_writes",
    "commit_delay",
    "shared_buffers",
)


def postgres_settings(url: str) -> dict[str, str]:
    """The server's version and durability settings; refuses a server that does not fsync."""
    store = LedgerStore.open(url)
    try:
        with store.engine.connect() as conn:
            values = {
                name: str(conn.exec_driver_sql(f"SHOW {name}").scalar_one())
                for name in POSTGRES_SETTINGS
            }
    finally:
        store.close()
    if values["fsync"] != "on" or values["synchronous_commit"] != "on":
        raise BenchError(f"PostgreSQL commits are not durable here: {values}")
    return values


def table(runs: list[Run]) -> str:
    return TABLE_HEAD + "\n" + "\n".join(run.row() for run in runs) + "\n"


def run_all(
    urls: Callable[[str], str], modes: list[Mode], target: int, seconds: float = SECONDS
) -> list[Run]:
    """Each of ``modes`` on its own fresh database ``urls(name)``; targets for 32 callers."""
    runs: list[Run] = []
    for index, mode in enumerate(modes):
        run = measure(
            urls(f"appends_{index}"), mode, target if mode.callers >= CALLERS else None, seconds
        )
        print(f"  {run.row()}", flush=True)
        runs.append(run)
    return runs
