"""Time as a dependency: the core asks a Clock, never the system directly."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """The wall clock in UTC; the only place the core's time comes from in production."""
    return datetime.now(UTC)
