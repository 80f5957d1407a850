"""Cancelling a running call: a token the runners watch, and what they raise when it fires.

``DELETE /v1/calls/{id}`` and a graceful shutdown cancel a call's token. Runners stop at
the next point they can: the rows of a query are read through :meth:`CancelToken.guard`,
and whatever can be interrupted right away (a command's process group, a database
connection) registers an interrupt with :meth:`CancelToken.on_cancel`.
"""

from __future__ import annotations

import threading
from itertools import chain, compress, repeat
from typing import TYPE_CHECKING, TypeVar

import structlog

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

_log = structlog.get_logger("govex.calls")
T = TypeVar("T")
GUARD_EVERY = 1000
"""Items :meth:`CancelToken.guard` passes on between two looks at the token."""


class CallCancelled(Exception):
    """The call's token was cancelled; ``reason`` says by whom or why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CancelToken:
    """Set once; every interrupt registered before or after runs exactly once."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._interrupts: list[Callable[[], object]] = []
        self.reason = ""

    def is_cancelled(self) -> bool:
        return self._event.is_set()

    def cancel(self, reason: str) -> bool:
        """Cancel (first reason kept) and run the interrupts; False when already cancelled."""
        with self._lock:
            if self._event.is_set():
                return False
            self.reason = reason
            self._event.set()
            interrupts, self._interrupts = self._interrupts, []
        for interrupt in interrupts:
            _run(interrupt)
        return True

    def on_cancel(self, interrupt: Callable[[], object]) -> Callable[[], None]:
        """Run ``interrupt`` on cancel (now, if already cancelled); returns an unregister."""
        with self._lock:
            if not self._event.is_set():
                self._interrupts.append(interrupt)

                def unregister() -> None:
                    with self._lock:
                        if interrupt in self._interrupts:
                            self._interrupts.remove(interrupt)

                return unregister
        _run(interrupt)
        return lambda: None

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise CallCancelled(self.reason)

    def guard(self, items: Iterable[T]) -> Iterator[T]:
        """``items``, raising :class:`CallCancelled` once cancelled.

        The token is looked at before the first item and then every :data:`GUARD_EVERY`
        items (the item read at that moment is dropped). The items flow through C
        iterators (``compress`` with a run of true selectors per look): a Python frame
        per row would slow an export of millions.
        """

        def allowed(count: int) -> Iterator[int]:
            if self._event.is_set():
                raise CallCancelled(self.reason)
            return repeat(1, count)

        return compress(items, chain.from_iterable(map(allowed, repeat(GUARD_EVERY))))

    def wait(self, timeout: float | None) -> bool:
        return self._event.wait(timeout)


def _run(interrupt: Callable[[], object]) -> None:
    try:
        interrupt()
    except Exception as exc:  # noqa: BLE001 - an interrupt that fails leaves the guard to stop it
        _log.warning("call.interrupt_failed", error=type(exc).__name__)
