"""Group commit: concurrent submissions in one process share one durable transaction.

Callers queue their items and block; one committer thread takes everything
queued (up to ``max_batch``), commits it with one transaction (one fsync),
and releases each caller with its own result. Items queued while a commit is
in flight form the next batch. Left at that, callers split into two cohorts
that alternate (one commits while the other queues), so when fewer items
wait than callers were recently in flight, the committer first waits a
moment (``_GATHER_S``) for the callers it just released: under load a batch
then holds about as many items as there are callers. A lone caller never
waits.

The queue lock is held only to queue or take items, never while committing:
no caller waits on a lock across an fsync, only for its own result. Each
caller waits on a lock of its own that is released exactly once, the
cheapest hand-off CPython has.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

_GATHER_S = 0.0003  # at most this long a batch waits for the callers of the one before
ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")


def _held_lock() -> threading.Lock:
    lock = threading.Lock()
    lock.acquire()
    return lock


@dataclass(eq=False)
class _Slot(Generic[ItemT, ResultT]):
    """Private: one submission and, once its batch committed, its outcome."""

    item: ItemT
    result: ResultT | None = None
    error: BaseException | None = None
    released: threading.Lock = field(default_factory=_held_lock)
    on_done: Callable[[_Slot[ItemT, ResultT]], None] | None = None  # instead of ``released``


class CommitterClosed(RuntimeError):
    """``submit`` after ``close``: the store was closed."""


class GroupCommitter(Generic[ItemT, ResultT]):
    """Batches concurrent :meth:`submit` calls into calls of ``commit(items) -> results``.

    ``commit`` runs on the committer thread (started on first use) and must
    return one outcome per item, in order: a result, or the exception that
    refused that item alone; when ``commit`` raises, every item of the batch
    fails with that exception (nothing of a failed batch is acknowledged).
    Thread-safe; one instance per store.
    """

    def __init__(
        self,
        commit: Callable[[Sequence[ItemT]], Sequence[ResultT | BaseException]],
        *,
        max_batch: int = 1000,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        self._commit = commit
        self._max_batch = max_batch
        self._work = threading.Condition(threading.Lock())
        self._queue: list[_Slot[ItemT, ResultT]] = []
        self._idle = False  # the committer waits for work
        self._closed = False
        self._thread: threading.Thread | None = None
        self._in_flight = 0  # submitted and not yet released
        self._peak = 0  # recent highest in-flight count: how many callers to expect
        self.batches = 0  # commits made: batch sizes show in benchmarks as items / batches

    def submit(self, item: ItemT) -> ResultT:
        """Queue ``item``, wait until a commit holding it returns, and give back its result."""
        slot: _Slot[ItemT, ResultT] = _Slot(item)
        self._enqueue(slot)
        slot.released.acquire()
        if slot.error is not None:
            raise slot.error
        return slot.result  # type: ignore[return-value]  # ResultT may itself admit None

    async def submit_async(self, item: ItemT) -> ResultT:
        """:meth:`submit` for a coroutine: the event loop keeps running while the batch commits."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[ResultT] = loop.create_future()

        def settle(done: _Slot[ItemT, ResultT]) -> None:  # on the committer thread
            # A caller that gave up may have closed its loop: nobody is left to tell.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_resolve, future, done.result, done.error)

        self._enqueue(_Slot(item, on_done=settle))
        return await future

    def _enqueue(self, slot: _Slot[ItemT, ResultT]) -> None:
        """Private: queue ``slot`` and wake the committer, starting it on first use."""
        with self._work:
            if self._closed:
                raise CommitterClosed("the ledger store is closed")
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="govex-ledger-commit", daemon=True
                )
                self._thread.start()
            self._queue.append(slot)
            self._in_flight += 1
            self._peak = max(self._peak, self._in_flight)
            if self._idle:
                self._work.notify()

    def close(self) -> None:
        """Commit what is queued, then stop the committer thread."""
        with self._work:
            self._closed = True
            self._work.notify()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _run(self) -> None:
        """Private: the committer thread's loop."""
        while True:
            with self._work:
                while not self._queue and not self._closed:
                    self._idle = True
                    self._work.wait()
                    self._idle = False
                if not self._queue:  # closed and drained
                    return
                gather = len(self._queue) < self._peak * 3 // 4 and not self._closed
            if gather:
                # The callers of the last batch are still coming back: wait a moment so they
                # share this commit instead of the next one (callers alternate otherwise).
                time.sleep(_GATHER_S)
            with self._work:
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                self._peak = max(len(batch), self._peak * 7 // 8)  # forget old concurrency
            self._commit_batch(batch)

    def _commit_batch(self, batch: list[_Slot[ItemT, ResultT]]) -> None:
        """Private: commit ``batch`` (no lock held) and release each of its callers."""
        try:
            results = self._commit([slot.item for slot in batch])
            if len(results) != len(batch):
                raise RuntimeError(  # noqa: TRY301 - a broken commit callable is a bug, fail all
                    f"commit returned {len(results)} results for {len(batch)} items"
                )
        except BaseException as exc:  # noqa: BLE001 - every waiter gets the failure, none is lost
            for slot in batch:
                slot.error = exc
        else:
            for slot, outcome in zip(batch, results, strict=True):
                if isinstance(outcome, BaseException):
                    slot.error = outcome
                else:
                    slot.result = outcome
        with self._work:
            self.batches += 1
            self._in_flight -= len(batch)
        for slot in batch:
            if slot.on_done is None:
                slot.released.release()
            else:
                slot.on_done(slot)


def _resolve(
    future: asyncio.Future[ResultT], result: ResultT | None, error: BaseException | None
) -> None:
    """Private, on the event loop: settle ``future`` unless its caller gave up on it."""
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)  # type: ignore[arg-type]
