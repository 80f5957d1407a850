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
calling thread waits on a lock of its own that is released exactly once, the
cheapest hand-off CPython has; the coroutines of one event loop are settled
together, with one wake-up of their loop per batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from dataclasses import dataclass
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
    released: threading.Lock | None = None  # a thread waits on it (held until released)
    future: asyncio.Future[ResultT] | None = None  # a coroutine waits (``released`` is None)
    ends_group: bool = True  # False inside a submit_many group: the batch takes the rest too


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
        released = _held_lock()
        slot: _Slot[ItemT, ResultT] = _Slot(item, released=released)
        self._enqueue(slot)
        released.acquire()
        if slot.error is not None:
            raise slot.error
        return slot.result  # type: ignore[return-value]  # ResultT may itself admit None

    def submit_many(self, items: Sequence[ItemT]) -> list[ResultT]:
        """:meth:`submit` for several items, queued together and in order, in one commit.

        A batch never splits them (it may then hold more than ``max_batch`` items). Waits
        for all, then raises the first refusal, if any.
        """
        last = len(items) - 1
        slots: list[_Slot[ItemT, ResultT]] = [
            _Slot(item, released=_held_lock(), ends_group=index == last)
            for index, item in enumerate(items)
        ]
        self._enqueue(*slots)
        for slot in slots:
            slot.released.acquire()  # type: ignore[union-attr]  # a thread's slot has its lock
        for slot in slots:
            if slot.error is not None:
                raise slot.error
        return [slot.result for slot in slots]  # type: ignore[misc]  # ResultT may admit None

    async def submit_async(self, item: ItemT) -> ResultT:
        """:meth:`submit` for a coroutine: the event loop keeps running while the batch commits."""
        future: asyncio.Future[ResultT] = asyncio.get_running_loop().create_future()
        self._enqueue(_Slot(item, released=None, future=future))
        return await future

    def _enqueue(self, *slots: _Slot[ItemT, ResultT]) -> None:
        """Private: queue ``slots`` (in order) and wake the committer, starting it on first use."""
        with self._work:
            if self._closed:
                raise CommitterClosed("the ledger store is closed")
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="govex-ledger-commit", daemon=True
                )
                self._thread.start()
            self._queue.extend(slots)
            self._in_flight += len(slots)
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
                size = min(self._max_batch, len(self._queue))
                while not self._queue[size - 1].ends_group:  # a group is queued whole
                    size += 1
                batch = self._queue[:size]
                del self._queue[:size]
                self._peak = max(len(batch), self._peak * 7 // 8)  # forget old concurrency
            self._commit_batch(batch)

    def _commit_batch(self, batch: list[_Slot[ItemT, ResultT]]) -> None:
        """Private: commit ``batch`` (no lock held) and release each of its callers."""
        self._settle_outcomes(batch)
        with self._work:
            self.batches += 1
            self._in_flight -= len(batch)
        _release(batch)

    def _settle_outcomes(self, batch: list[_Slot[ItemT, ResultT]]) -> None:
        """Private: run ``commit`` on ``batch`` and record each slot's result or error."""
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


def _release(batch: list[_Slot[ItemT, ResultT]]) -> None:
    """Private: wake each caller of a committed ``batch``: threads directly, coroutines by loop."""
    waiting: dict[asyncio.AbstractEventLoop, list[_Slot[ItemT, ResultT]]] = {}
    for slot in batch:
        if slot.released is not None:
            slot.released.release()
        elif slot.future is not None:
            waiting.setdefault(slot.future.get_loop(), []).append(slot)
    # One wake-up per event loop for the whole batch: each call_soon_threadsafe writes to
    # the loop's self-pipe and wakes it, which cost more than the rest of the hand-off.
    for loop, slots in waiting.items():
        # A caller that gave up may have closed its loop: nobody is left to tell.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_settle, slots)


def _settle(slots: list[_Slot[ItemT, ResultT]]) -> None:
    """Private, on the event loop: settle each slot's future unless its caller gave up on it."""
    for slot in slots:
        future = slot.future
        if future is None or future.cancelled():
            continue
        if slot.error is not None:
            future.set_exception(slot.error)
        else:
            future.set_result(slot.result)  # type: ignore[arg-type]  # ResultT may admit None
