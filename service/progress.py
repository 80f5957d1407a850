"""Who hears a running call's progress (rows, bytes written): request scope (STYLE G10).

The table writer reports ``(rows, bytes)`` about twice a second
(:data:`service.packets.tables.PROGRESS_INTERVAL_S`); :mod:`service.calls` writes it to
the call index, where ``GET /v1/calls/{id}`` reads it, and tells the listener of the
current context, if any: ``govex call`` sets one to draw its progress line. The
listener lives in a contextvar so the core's signatures stay as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

Listener = Callable[[int, int], None]
"""Told ``(rows, bytes)`` written so far; it must not raise."""

_listener_var: ContextVar[Listener | None] = ContextVar("govex_progress", default=None)


@contextmanager
def reporting_to(listener: Listener) -> Iterator[None]:
    """Calls run inside the block tell ``listener`` their progress."""
    token = _listener_var.set(listener)
    try:
        yield
    finally:
        _listener_var.reset(token)


def current_listener() -> Listener | None:
    """The listener of the current context (``None``: nobody is listening)."""
    return _listener_var.get()
