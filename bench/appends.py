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

Callers come four ways: threads calling ``append``, asyncio tasks awaiting
``append_async``, and two processes (the deployment with several workers on
one PostgreSQL) of either. One Python process appends on one core (the GIL):
what decides its rate is the client CPU per append, and a thread pays about
twice what a task pays for the same append, in wake-ups and GIL hand-offs
(the committer releases a batch of threads one by one; a batch of tasks is
woken with one hand-off to their event loop).

Nothing is tuned for the benchmark: SQLite runs in WAL mode with
``synchronous=FULL`` as the store sets it, PostgreSQL with its defaults
(checked: ``fsync=on``, ``synchronous_commit=on``), both on files of the
normal disk.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import queue
import threading
import time
from array import array
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from bench.entries import call_id, finished, service_started_body, started
from bench.machine import mount_of
from ledger.store import LedgerStore
from tests.pg_harness import PostgresServer, PostgresUnavailableError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

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
    processes: int = 0  # when set, ``threads`` threads (or ``tasks`` tasks) in each process

    @property
    def callers(self) -> int:
        return (self.tasks or max(self.threads, 1)) * max(self.processes, 1)


ONE = Mode("1 caller (a thread calling append)", threads=1)
THREADS = Mode(f"{CALLERS} threads calling append", threads=CALLERS)
TASKS = Mode(f"{CALLERS} asyncio tasks awaiting append_async", tasks=CALLERS)
PROCESS_THREADS = Mode(
    f"{PROCESSES} processes x {CALLERS // PROCESSES} threads calling append",
    threads=CALLERS // PROCESSES,
    processes=PROCESSES,
)
PROCESS_TASKS = Mode(
    f"{PROCESSES} processes x {CALLERS // PROCESSES} asyncio tasks awaiting append_async",
    tasks=CALLERS // PROCESSES,
    processes=PROCESSES,
)


@dataclass(frozen=True)
class Load:
    """What the callers of one run did: acknowledged appends, time, commits, CPU, latencies, seqs."""

    appends: int
    seconds: float
    commits: int
    cpu_seconds: float  # CPU time of the appending process(es), every thread, during the run
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
        """The run as a row of the results table."""
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
            f"{load.cpu_seconds / load.appends * 1e6:,.0f} us "
            f"({load.cpu_seconds / load.seconds:.2f} cores) | "
            f"{self.verified_size:,} entries, chain and count OK ({self.verify_seconds:.1f} s) | "
            f"{target} |"
        )


TABLE_HEAD = (
    "| callers | durable appends/s | mean batch (appends/commit) | p50 latency | p99 latency "
    "| client CPU per append (cores busy) | verified afterwards | target (2 cores) |\n"
    "|---|---|---|---|---|---|---|---|"
)

# -- callers -----------------------------------------------------------------------------------


def _appends(prefix: str, deadline: float) -> Iterator[tuple[str, dict[str, Any]]]:
    """Private: one caller's entries, a call (started, finished) at a time until ``deadline``."""
    number = 0
    while time.monotonic() < deadline:
        call = call_id(number, prefix)
        yield "call.started", started(call, number)
        yield "call.finished", finished(call, number)
        number += 1


def _calls(
    store: LedgerStore, prefix: str, deadline: float, latencies: array[int], seqs: array[int]
) -> None:
    """Private: one caller's loop of ``append``, each timed."""
    for kind, body in _appends(prefix, deadline):
        t0 = time.perf_counter_ns()
        entry = store.append(kind, body, datetime.now(UTC))
        latencies.append(time.perf_counter_ns() - t0)
        seqs.append(entry.seq)


async def _async_calls(
    store: LedgerStore, prefix: str, deadline: float, latencies: array[int], seqs: array[int]
) -> None:
    """Private: :func:`_calls` as a coroutine awaiting ``append_async``."""
    for kind, body in _appends(prefix, deadline):
        t0 = time.perf_counter_ns()
        entry = await store.append_async(kind, body, datetime.now(UTC))
        latencies.append(time.perf_counter_ns() - t0)
        seqs.append(entry.seq)


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
            _calls(
                store, f"01{tag}{index:02d}", started_at[0] + seconds, latencies[index], seqs[index]
            )
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
    store: LedgerStore, tasks: int, seconds: float, tag: str = "A"
) -> tuple[float, float, array[int], array[int]]:
    """Private: ``tasks`` coroutines on one event loop for ``seconds``."""
    latencies = [array("q") for _ in range(tasks)]
    seqs = [array("q") for _ in range(tasks)]

    async def main() -> tuple[float, float]:
        start = time.monotonic()
        await asyncio.gather(
            *(
                _async_calls(store, f"01{tag}{i:02d}", start + seconds, latencies[i], seqs[i])
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
    tasks: int,
    seconds: float,
    barrier: Any,  # noqa: ANN401 - a multiprocessing Barrier
    results: Any,  # noqa: ANN401 - a multiprocessing Queue
) -> None:
    """A spawned process: its own store on ``url``, its callers, results to the parent."""
    store = LedgerStore.open(url, migrate=False)
    try:
        store.size()  # connected before the clock starts
        barrier.wait()
        commits, cpu = store.group_commits, time.process_time()
        if tasks:
            start, end, latencies, seqs = _run_tasks(store, tasks, seconds, f"P{index}A")
        else:
            start, end, latencies, seqs = _run_threads(store, threads, seconds, f"P{index}T")
        cpu = time.process_time() - cpu
        commits = store.group_commits - commits
        results.put((start, end, commits, cpu, latencies.tobytes(), seqs.tobytes()))
    except BaseException as exc:
        results.put(repr(exc))
        raise
    finally:
        store.close()


def _run_processes(
    url: str, processes: int, threads: int, tasks: int, seconds: float
) -> tuple[float, float, int, float, array[int], array[int]]:
    """Private: ``processes`` spawned processes of ``threads`` (or ``tasks``) callers each."""
    context = multiprocessing.get_context("spawn")  # no fork of a process holding threads
    barrier = context.Barrier(processes)
    results = context.Queue()
    workers = [
        context.Process(
            target=_process_main, args=(url, i, threads, tasks, seconds, barrier, results)
        )
        for i in range(processes)
    ]
    for worker in workers:
        worker.start()
    outcomes: list[Any] = []
    deadline = time.monotonic() + seconds + 300
    while len(outcomes) < processes:
        try:
            outcomes.append(results.get(timeout=1.0))
        except queue.Empty:
            dead = [w.exitcode for w in workers if w.exitcode not in (None, 0)]
            if dead or time.monotonic() > deadline:
                for worker in workers:
                    worker.terminate()
                raise BenchError(f"append processes failed or hung (exit codes {dead})") from None
    for worker in workers:
        worker.join()
    failed = [o for o in outcomes if isinstance(o, str)]
    if failed:
        raise BenchError(f"a process failed: {failed[0]}")
    latencies: array[int] = array("q")
    seqs: array[int] = array("q")
    for *_, lat, seq in outcomes:
        latencies.frombytes(lat)
        seqs.frombytes(seq)
    start = min(o[0] for o in outcomes)
    end = max(o[1] for o in outcomes)
    return start, end, sum(o[2] for o in outcomes), sum(o[3] for o in outcomes), latencies, seqs


# -- one run -----------------------------------------------------------------------------------


def measure(url: str, mode: Mode, target: int | None, seconds: float = SECONDS) -> Run:
    """One run of ``mode`` on a fresh ledger at ``url``, verified afterwards."""
    store = LedgerStore.open(url)
    try:
        store.append("service.started", service_started_body(), datetime.now(UTC))
        base = store.size()
        if mode.processes:
            start, end, commits, cpu, latencies, seqs = _run_processes(
                url, mode.processes, mode.threads, mode.tasks, seconds
            )
        else:
            before, cpu = store.group_commits, time.process_time()
            if mode.tasks:
                start, end, latencies, seqs = _run_tasks(store, mode.tasks, seconds)
            else:
                start, end, latencies, seqs = _run_threads(store, mode.threads, seconds, "T")
            commits, cpu = store.group_commits - before, time.process_time() - cpu
        load = Load(len(seqs), end - start, commits, cpu, latencies, seqs)
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


def verdict(backend: str, runs: list[Run]) -> str:
    """One line: the 32-caller figures of ``backend`` against their target, met or not."""
    targeted = [run for run in runs if run.target is not None]
    if not targeted:
        return f"{backend}: no run with {CALLERS} callers"
    target = targeted[0].target or 0
    figures = "; ".join(f"{run.rate:,.0f}/s ({run.mode.label})" for run in targeted)
    met = [run for run in targeted if run.rate >= target]
    if len(met) == len(targeted):
        outcome = "met by every variant"
    elif met:
        outcome = f"met by {len(met)} of {len(targeted)} variants only"
    else:
        outcome = "NOT met"
    return (
        f"durable appends with {CALLERS} concurrent callers on {backend}: {figures}; "
        f"target >= {target:,}/s: **{outcome}**"
    )


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


# -- the sections of docs/benchmarks.md --------------------------------------------------------


def sqlite_section(work: Path, seconds: float = SECONDS) -> tuple[str, str]:
    """SQLite files under ``work``: ``(markdown, verdict line)``."""
    device, fstype, point = mount_of(work)
    settings = sqlite_settings(f"sqlite:///{work / 'settings.sqlite'}")
    print("SQLite appends", flush=True)
    runs = run_all(
        lambda name: f"sqlite:///{work / (name + '.sqlite')}",
        [ONE, THREADS, TASKS],
        SQLITE_TARGET,
        seconds,
    )
    text = (
        f"### SQLite\n\nA database file on {device} ({fstype}, {point}); "
        + ", ".join(f"{k}={v}" for k, v in settings.items())
        + ".\n\n"
        + table(runs)
    )
    return text, verdict("SQLite", runs)


def postgres_section(seconds: float = SECONDS) -> tuple[str, str, str]:
    """A throwaway PostgreSQL 15 server: ``(markdown, verdict line, server version)``."""
    try:
        server = PostgresServer.start_new()
    except PostgresUnavailableError as exc:
        note = f"skipped: {exc}"
        return f"### PostgreSQL\n\n{note}\n", f"PostgreSQL: {note}", "not available"
    try:
        device, fstype, point = mount_of(server.data)
        settings = postgres_settings(server.create_database("settings"))
        print("PostgreSQL appends", flush=True)
        runs = run_all(
            server.create_database,
            [ONE, THREADS, TASKS, PROCESS_THREADS, PROCESS_TASKS],
            POSTGRES_TARGET,
            seconds,
        )
    finally:
        server.stop()
    version = settings.pop("server_version")
    text = (
        f"### PostgreSQL\n\nPostgreSQL {version}, data directory on {device} ({fstype}, "
        f"{point}), over a Unix socket; settings as checked: "
        + ", ".join(f"{k}={v}" for k, v in settings.items())
        + " (defaults, untuned).\n\n"
        + table(runs)
    )
    return text, verdict("PostgreSQL", runs), version
