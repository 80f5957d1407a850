"""Unit tests of :mod:`ledger.group_commit`, with a fake commit callable instead of a database.

A :class:`GatedCommit` blocks inside a commit until the test opens its gate,
so a test can queue submissions while a commit is in flight and then see
exactly which batches the committer formed.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest

from ledger.group_commit import CommitterClosed, GroupCommitter

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

_WAIT_S = 10.0  # generous: only a broken committer ever waits this long


class GatedCommit:
    """A commit callable: records each batch, blocks on the gate, answers ``r:<item>`` per item.

    ``outcome(item)`` may return an exception for that item alone; ``fail(batch)``
    may return an exception to raise for the whole batch.
    """

    def __init__(
        self,
        *,
        outcome: Callable[[str], str | BaseException] = lambda item: f"r:{item}",
        fail: Callable[[list[str]], BaseException | None] = lambda _batch: None,
    ) -> None:
        self.gate = threading.Event()
        self.entered = threading.Event()  # a commit is in flight (set once)
        self.batches: list[list[str]] = []
        self.threads: list[str] = []
        self._outcome = outcome
        self._fail = fail

    def __call__(self, items: Sequence[str]) -> list[str | BaseException]:
        batch = list(items)
        self.batches.append(batch)
        self.threads.append(threading.current_thread().name)
        self.entered.set()
        assert self.gate.wait(_WAIT_S), "the test never opened the gate"
        failure = self._fail(batch)
        if failure is not None:
            raise failure
        return [self._outcome(item) for item in batch]


class Caller:
    """A thread that submits one item and keeps what came back (a result or an exception)."""

    def __init__(self, committer: GroupCommitter[str, Any], item: str) -> None:
        self.item = item
        self.result: Any = None
        self.error: BaseException | None = None
        self._committer = committer
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.result = self._committer.submit(self.item)
        except BaseException as exc:  # noqa: BLE001 - inspected by the test
            self.error = exc

    def join(self, timeout: float = _WAIT_S) -> None:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"submit({self.item!r}) never returned"


def _wait_queued(committer: GroupCommitter[Any, Any], count: int) -> None:
    """Wait until ``count`` submissions sit in the queue (none taken by the committer yet)."""
    deadline = time.monotonic() + _WAIT_S
    while len(committer._queue) < count:
        assert time.monotonic() < deadline, f"{len(committer._queue)} queued, expected {count}"
        time.sleep(0.001)


async def _until(condition: Callable[[], bool]) -> None:
    """Let the event loop run until ``condition`` (state of other threads) holds."""
    deadline = time.monotonic() + _WAIT_S
    while not condition():  # the state lives on other threads, not in an awaitable
        assert time.monotonic() < deadline, "condition never held"
        await asyncio.sleep(0.001)


def _blocked_first_batch(committer: GroupCommitter[str, Any], commit: GatedCommit) -> Caller:
    """Submit ``first`` and wait until its commit is in flight (blocked on the gate)."""
    first = Caller(committer, "first")
    assert commit.entered.wait(_WAIT_S)
    return first


def test_a_lone_submission_is_committed_on_the_committer_thread() -> None:
    commit = GatedCommit()
    commit.gate.set()
    committer: GroupCommitter[str, str] = GroupCommitter(commit)
    assert committer.submit("a") == "r:a"
    assert commit.batches == [["a"]]
    assert commit.threads == ["govex-ledger-commit"]
    assert committer.batches == 1
    committer.close()


def test_submissions_queued_while_a_commit_runs_form_the_next_batch() -> None:
    commit = GatedCommit()
    committer: GroupCommitter[str, str] = GroupCommitter(commit)
    first = _blocked_first_batch(committer, commit)
    # The commit is blocked: submitting must not wait for it (no lock held across a commit).
    callers = [Caller(committer, f"i{n}") for n in range(10)]
    _wait_queued(committer, 10)
    commit.gate.set()
    for caller in [first, *callers]:
        caller.join()
        assert (caller.result, caller.error) == (f"r:{caller.item}", None)
    assert commit.batches[0] == ["first"]
    assert sorted(commit.batches[1]) == sorted(c.item for c in callers)
    assert len(commit.batches) == 2
    assert committer.batches == 2
    committer.close()


def test_a_batch_never_holds_more_than_max_batch_items_and_keeps_queue_order() -> None:
    commit = GatedCommit()
    committer: GroupCommitter[str, str] = GroupCommitter(commit, max_batch=3)
    first = _blocked_first_batch(committer, commit)
    callers: list[Caller] = []
    for n in range(7):  # one at a time, so the queue order is known
        callers.append(Caller(committer, f"i{n}"))
        _wait_queued(committer, n + 1)
    commit.gate.set()
    for caller in [first, *callers]:
        caller.join()
        assert caller.result == f"r:{caller.item}"
    assert commit.batches == [["first"], ["i0", "i1", "i2"], ["i3", "i4", "i5"], ["i6"]]
    committer.close()


def test_a_submit_many_group_is_never_split_across_batches() -> None:
    commit = GatedCommit()
    committer: GroupCommitter[str, str] = GroupCommitter(commit, max_batch=2)
    first = _blocked_first_batch(committer, commit)
    lone = Caller(committer, "a")
    _wait_queued(committer, 1)
    results: list[list[str]] = []
    group = threading.Thread(
        target=lambda: results.append(committer.submit_many(["g1", "g2", "g3"]))
    )
    group.start()
    _wait_queued(committer, 4)
    tail = Caller(committer, "z")
    _wait_queued(committer, 5)
    commit.gate.set()
    group.join(_WAIT_S)
    for caller in (first, lone, tail):
        caller.join()
    assert results == [["r:g1", "r:g2", "r:g3"]]
    # max_batch 2 would cut after g1: the batch takes the group whole instead.
    assert commit.batches == [["first"], ["a", "g1", "g2", "g3"], ["z"]]
    committer.close()


def test_an_exception_for_one_item_fails_that_caller_only() -> None:
    refusals = {f"i{n}": ValueError(f"refused i{n}") for n in (1, 4)}
    commit = GatedCommit(outcome=lambda item: refusals.get(item) or f"r:{item}")
    committer: GroupCommitter[str, str] = GroupCommitter(commit)
    first = _blocked_first_batch(committer, commit)
    callers = [Caller(committer, f"i{n}") for n in range(6)]
    _wait_queued(committer, 6)
    commit.gate.set()
    first.join()
    for caller in callers:
        caller.join()
        if caller.item in refusals:
            assert caller.error is refusals[caller.item]
            assert caller.result is None
        else:
            assert (caller.result, caller.error) == (f"r:{caller.item}", None)
    assert len(commit.batches) == 2  # the refused items were in the committed batch
    committer.close()


def test_a_failing_commit_fails_every_caller_of_its_batch_and_the_next_batch_commits() -> None:
    failure = OSError("disk on fire")
    commit = GatedCommit(fail=lambda batch: failure if "boom" in batch else None)
    committer: GroupCommitter[str, str] = GroupCommitter(commit)
    first = _blocked_first_batch(committer, commit)
    callers = [Caller(committer, item) for item in ("a", "boom", "b", "c")]
    _wait_queued(committer, 4)
    commit.gate.set()
    first.join()
    assert first.result == "r:first"
    for caller in callers:
        caller.join()
        assert caller.error is failure, caller.item
        assert caller.result is None
    assert committer.submit("after") == "r:after"  # the committer thread survived
    assert commit.batches[-1] == ["after"]
    committer.close()


def test_a_commit_giving_the_wrong_number_of_results_fails_the_whole_batch() -> None:
    def short_commit(items: Sequence[str]) -> list[str]:
        return [f"r:{item}" for item in items][:-1]

    committer: GroupCommitter[str, str] = GroupCommitter(short_commit)
    with pytest.raises(RuntimeError, match="commit returned 0 results for 1 items"):
        committer.submit("a")
    committer.close()


def test_close_commits_everything_queued_then_stops_the_committer() -> None:
    commit = GatedCommit()
    committer: GroupCommitter[str, str] = GroupCommitter(commit, max_batch=2)
    first = _blocked_first_batch(committer, commit)
    callers = [Caller(committer, f"i{n}") for n in range(5)]
    _wait_queued(committer, 5)
    closing = threading.Thread(target=committer.close, daemon=True)
    closing.start()
    closing.join(0.2)
    assert closing.is_alive()  # close waits for the queued work, which waits for the gate
    with pytest.raises(CommitterClosed):
        committer.submit("late")
    commit.gate.set()
    closing.join(_WAIT_S)
    assert not closing.is_alive()
    for caller in [first, *callers]:  # every queued submission was committed, none dropped
        caller.join()
        assert (caller.result, caller.error) == (f"r:{caller.item}", None)
    assert sum(len(batch) for batch in commit.batches) == 6
    assert committer._thread is not None
    assert not committer._thread.is_alive()


def test_close_before_any_submission_returns_and_later_submissions_are_refused() -> None:
    committer: GroupCommitter[str, str] = GroupCommitter(GatedCommit())
    committer.close()
    assert committer._thread is None  # no committer thread was ever started
    with pytest.raises(CommitterClosed, match="closed"):
        committer.submit("a")


def test_max_batch_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="max_batch must be at least 1"):
        GroupCommitter(GatedCommit(), max_batch=0)


def test_submit_async_resolves_each_coroutine_while_the_loop_keeps_running() -> None:
    commit = GatedCommit()
    committer: GroupCommitter[str, str] = GroupCommitter(commit)

    async def scenario() -> list[str]:
        tasks = [asyncio.create_task(committer.submit_async(f"i{n}")) for n in range(20)]
        # Every coroutine queued its item; the committer took some and blocks in the commit.
        # (the loop keeps running while a commit is in flight)
        await _until(
            lambda: commit.entered.is_set() and len(commit.batches[0]) + len(committer._queue) == 20
        )
        assert not any(task.done() for task in tasks)
        commit.gate.set()
        return await asyncio.gather(*tasks)

    results = asyncio.run(scenario())
    assert results == [f"r:i{n}" for n in range(20)]
    assert commit.threads == ["govex-ledger-commit"] * len(commit.batches)
    assert len(commit.batches) <= 2  # whatever the committer took first, then all the rest
    committer.close()


def test_submit_async_raises_the_item_error_and_the_batch_failure() -> None:
    refused = ValueError("refused bad")
    failure = OSError("disk on fire")
    commit = GatedCommit(
        outcome=lambda item: refused if item == "bad" else f"r:{item}",
        fail=lambda batch: failure if "boom" in batch else None,
    )
    commit.gate.set()
    committer: GroupCommitter[str, str] = GroupCommitter(commit)

    async def scenario() -> None:
        assert await committer.submit_async("good") == "r:good"
        with pytest.raises(ValueError, match="refused bad") as caught:
            await committer.submit_async("bad")
        assert caught.value is refused
        with pytest.raises(OSError, match="disk on fire"):
            await committer.submit_async("boom")

    asyncio.run(scenario())
    committer.close()


def test_a_cancelled_async_submission_leaves_the_loop_and_its_batch_mates_alone() -> None:
    commit = GatedCommit()
    committer: GroupCommitter[str, str] = GroupCommitter(commit)
    loop_errors: list[dict[str, Any]] = []

    async def scenario() -> str:
        asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: loop_errors.append(ctx))
        first = asyncio.create_task(committer.submit_async("first"))
        await _until(commit.entered.is_set)
        gone = asyncio.create_task(committer.submit_async("gone"))
        kept = asyncio.create_task(committer.submit_async("kept"))
        await _until(lambda: len(committer._queue) == 2)
        gone.cancel()
        commit.gate.set()
        assert await first == "r:first"
        with pytest.raises(asyncio.CancelledError):
            await gone
        result = await kept
        await asyncio.sleep(0.05)  # let any stray callback of the cancelled future run
        return result

    assert asyncio.run(scenario()) == "r:kept"
    assert commit.batches == [["first"], ["gone", "kept"]]  # committed all the same
    assert loop_errors == []
    committer.close()


def test_an_async_caller_whose_loop_closed_does_not_stop_the_committer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    thread_errors: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: thread_errors.append(args.exc_value))
    commit = GatedCommit()
    committer: GroupCommitter[str, str] = GroupCommitter(commit)
    first = _blocked_first_batch(committer, commit)

    async def give_up() -> None:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(committer.submit_async("abandoned"), 0.01)

    asyncio.run(give_up())  # the loop is closed; its submission is still queued
    mate = Caller(committer, "mate")
    _wait_queued(committer, 2)
    commit.gate.set()
    first.join()
    mate.join(1.0)
    assert thread_errors == []
    assert mate.result == "r:mate"
    assert committer.submit("later") == "r:later"
    committer.close()


def test_a_batch_of_coroutines_wakes_their_event_loop_once() -> None:
    commit = GatedCommit()
    committer: GroupCommitter[str, str] = GroupCommitter(commit)
    wake_ups: list[int] = []

    async def scenario() -> list[str]:
        loop = asyncio.get_running_loop()
        call_soon_threadsafe = loop.call_soon_threadsafe

        def counted(*args: Any, **kwargs: Any) -> Any:
            wake_ups.append(len(commit.batches))
            return call_soon_threadsafe(*args, **kwargs)

        loop.call_soon_threadsafe = counted  # type: ignore[method-assign,assignment]
        first = asyncio.create_task(committer.submit_async("first"))
        await _until(commit.entered.is_set)
        rest = [asyncio.create_task(committer.submit_async(f"i{n}")) for n in range(12)]
        await _until(lambda: len(committer._queue) == 12)
        commit.gate.set()
        return [await first, *await asyncio.gather(*rest)]

    results = asyncio.run(scenario())
    assert results == ["r:first", *(f"r:i{n}" for n in range(12))]
    assert [len(batch) for batch in commit.batches] == [1, 12]
    assert wake_ups == [1, 2]  # one hand-off per committed batch, not one per coroutine
    committer.close()


def test_submit_many_queues_its_items_together_in_order_and_returns_each_result() -> None:
    commit = GatedCommit()
    committer: GroupCommitter[str, str] = GroupCommitter(commit)
    first = _blocked_first_batch(committer, commit)
    results: list[list[str]] = []
    many = threading.Thread(target=lambda: results.append(committer.submit_many(["a", "b", "c"])))
    many.start()
    _wait_queued(committer, 3)
    commit.gate.set()
    first.join()
    many.join(_WAIT_S)
    assert results == [["r:a", "r:b", "r:c"]]
    assert commit.batches == [["first"], ["a", "b", "c"]]  # one commit for the three
    committer.close()


def test_submit_many_raises_the_first_refusal_after_every_item_settled() -> None:
    refused = ValueError("refused b")
    commit = GatedCommit(outcome=lambda item: refused if item == "b" else f"r:{item}")
    commit.gate.set()
    committer: GroupCommitter[str, str] = GroupCommitter(commit)
    with pytest.raises(ValueError, match="refused b"):
        committer.submit_many(["a", "b", "c"])
    assert commit.batches == [["a", "b", "c"]]
    assert committer.submit("d") == "r:d"  # nothing left waiting or in flight
    committer.close()
