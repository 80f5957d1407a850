"""Accepted calls run on a bounded pool of threads; the HTTP service waits, cancels, drains.

``POST /v1/calls`` accepts a call (every check passed, ``call.started`` durable) and
submits it here; it then waits a little for the result and answers ``201``, or answers
``202`` and the call goes on. A running call can be cancelled (``DELETE /v1/calls/{id}``)
in the process that runs it. On shutdown no new call is taken, running calls get
``shutdown_grace_s`` to finish, then are cancelled: each still ends with its
``call.finished`` (``error_running``, "cancelled: service shutting down"), so nothing is
left ``running`` by a clean stop; a crash is recovered by :mod:`service.call_reaper`.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeVar

import structlog

from service.call_reaper import reap_interrupted
from service.calls import AcceptedCall, CallResult, run_accepted
from service.cancel import CancelToken

if TYPE_CHECKING:
    from collections.abc import Callable

    from service.runtime import Runtime

OtherT = TypeVar("OtherT")

_log = structlog.get_logger("govex.calls")
REAP_EVERY_S = 30.0  # how often each worker finishes calls a dead worker left unfinished


@dataclass(frozen=True)
class RunningCall:
    """One submitted call: its future result and its cancel token."""

    call_id: str
    future: Future[CallResult]
    cancel: CancelToken = field(default_factory=CancelToken)

    def wait(self, timeout_s: float) -> CallResult | None:
        """The result once done within ``timeout_s``; None while it still runs.

        Raises what the run raised (a ledger failure after ``call.started``).
        """
        try:
            return self.future.result(timeout=timeout_s)
        except FutureTimeout:
            return None

    def done_within(self, timeout_s: float) -> bool:
        """Whether the run ended (however it ended) within ``timeout_s``."""
        try:
            self.future.exception(timeout=timeout_s)
        except FutureTimeout:
            return False
        return True


class PendingAccept(Generic[OtherT]):
    """A call to be accepted and run by a pool thread, waiting for one (:meth:`accept_then_run`).

    Exactly one of the thread (:meth:`take`) and the submitter (:meth:`withdraw`) wins.
    """

    def __init__(self) -> None:
        self.handoff: Future[RunningCall | OtherT] = Future()
        # Running from the start: a waiter that gives up cannot cancel it, and the thread
        # always hands over what it accepted (a call left unhanded would never be followed).
        self.handoff.set_running_or_notify_cancel()
        self._lock = threading.Lock()
        self._state = "waiting"

    def take(self) -> bool:
        """The thread's turn: False when the submitter withdrew the job first."""
        return self._settle("taken")

    def withdraw(self) -> bool:
        """The submitter's: True when no thread took the job (and none will)."""
        return self._settle("withdrawn")

    def _settle(self, state: str) -> bool:
        with self._lock:
            if self._state != "waiting":
                return False
            self._state = state
            return True


class CallExecutor:
    """A pool of ``workers`` threads for accepted calls, and the calls it is running."""

    def __init__(self, runtime: Runtime, workers: int, *, cancel_poll_s: float = 0.5) -> None:
        self._runtime = runtime
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="govex-call")
        self._running: dict[str, RunningCall] = {}
        self._lock = threading.Lock()
        self._closing = False
        self._stop = threading.Event()
        # A cancel may be asked of another worker: this one looks for its calls in the index.
        self._watcher = threading.Thread(
            target=self._watch_cancels, args=(cancel_poll_s,), name="govex-cancels", daemon=True
        )
        self._watcher.start()

    def _watch_cancels(self, poll_s: float) -> None:
        rounds = 0
        while not self._stop.wait(poll_s):
            rounds += 1
            if rounds * poll_s >= REAP_EVERY_S:
                rounds = 0
                self._reap()
            with self._lock:
                ids = list(self._running)
            try:
                asked = self._runtime.calls.cancel_requested(ids)
            except Exception as exc:  # noqa: BLE001 - a read that fails is retried next round
                _log.warning("call.cancel_poll_failed", error=type(exc).__name__)
                continue
            for call_id in asked:
                self.cancel(call_id, "cancel requested (DELETE /v1/calls/{id})")

    def submit(self, accepted: AcceptedCall) -> RunningCall:
        """Run ``accepted`` on the pool (cancelled at once while shutting down).

        A call cancelled before it starts still ends in the ledger (``error_running``) and
        releases its lease.
        """
        token = CancelToken()
        with self._lock:
            if self._closing:
                token.cancel("service shutting down")
            future = self._pool.submit(self._run, accepted, token)
            running = RunningCall(accepted.call_id, future, token)
            self._running[accepted.call_id] = running
        return running

    def accept_then_run(self, accept: Callable[[], AcceptedCall | OtherT]) -> PendingAccept[OtherT]:
        """Accept a call and run it on one pool thread: no hand-off between the two.

        The job waits in the pool's queue like any other; until a thread takes it, the
        submitter may :meth:`PendingAccept.withdraw` it (then it never runs ``accept``).
        The handoff future resolves once ``accept()`` returned: to the :class:`RunningCall`
        of the call it accepted (registered, cancellable, running on), to whatever else it
        returned, or to what it raised. ``accept`` should mark its call as run at once.
        """
        pending: PendingAccept[OtherT] = PendingAccept()
        self._pool.submit(self._accept_then_run, accept, pending)
        return pending

    def _accept_then_run(
        self, accept: Callable[[], AcceptedCall | OtherT], pending: PendingAccept[OtherT]
    ) -> None:
        if not pending.take():
            return  # withdrawn while it waited for this thread: accepted elsewhere
        handoff = pending.handoff
        try:
            accepted = accept()
        except BaseException as exc:  # noqa: BLE001 - the submitter gets the refusal
            handoff.set_exception(exc)
            return
        if not isinstance(accepted, AcceptedCall):
            handoff.set_result(accepted)
            return
        token = CancelToken()
        result: Future[CallResult] = Future()
        result.set_running_or_notify_cancel()
        running = RunningCall(accepted.call_id, result, token)
        with self._lock:
            if self._closing:
                token.cancel("service shutting down")
            self._running[accepted.call_id] = running
        handoff.set_result(running)
        try:
            result.set_result(self._run(accepted, token))
        except BaseException as exc:  # noqa: BLE001 - raised to whoever waits on the result
            result.set_exception(exc)

    def _run(self, accepted: AcceptedCall, token: CancelToken) -> CallResult:
        try:
            return run_accepted(self._runtime, accepted, token)
        finally:
            with self._lock:
                self._running.pop(accepted.call_id, None)

    def _reap(self) -> None:
        try:
            reap_interrupted(self._runtime)
        except Exception as exc:  # noqa: BLE001 - retried next period
            _log.warning("call.reap_failed", error=type(exc).__name__)

    def get(self, call_id: str) -> RunningCall | None:
        with self._lock:
            return self._running.get(call_id)

    def cancel(self, call_id: str, reason: str) -> bool:
        """Cancel a call this process runs; False when it runs here no more (or never did)."""
        running = self.get(call_id)
        return running is not None and running.cancel.cancel(reason)

    @property
    def running(self) -> int:
        with self._lock:
            return len(self._running)

    def shutdown(self, grace_s: float) -> None:
        """Take no new call; let running ones finish for ``grace_s``; cancel the rest; wait."""
        with self._lock:
            self._closing = True
            calls = list(self._running.values())
        deadline = time.monotonic() + grace_s
        for call in calls:
            if not call.done_within(max(0.0, deadline - time.monotonic())):
                _log.warning("call.cancelled_at_shutdown", call_id=call.call_id)
                call.cancel.cancel("service shutting down")
        self._pool.shutdown(wait=True)
        self._stop.set()
        self._watcher.join()
