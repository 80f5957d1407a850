"""The progress of ``govex call`` on stderr, while a large export runs (stdout stays JSON).

On a terminal one line is redrawn in place (rows, megabytes, megabytes a second) and
cleared when the call ends; elsewhere (a log, a CI job) a plain line is written at most
every :data:`PLAIN_EVERY_S` seconds, so short calls print nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

PLAIN_EVERY_S = 10.0
_CLEAR = "\r\x1b[K"


class ProgressLine:
    """A :data:`service.progress.Listener` that draws on ``stream``."""

    def __init__(
        self,
        stream: TextIO,
        *,
        interactive: bool,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream
        self._interactive = interactive
        self._clock = clock
        self._started = clock()
        self._last_plain = self._started
        self._drawn = False

    def __call__(self, rows: int, size: int) -> None:
        now = self._clock()
        seconds = max(now - self._started, 1e-9)
        text = f"{rows:,} rows, {size / 1e6:,.1f} MB ({size / 1e6 / seconds:,.1f} MB/s)"
        if self._interactive:
            self._stream.write(f"{_CLEAR}running: {text}")
            self._drawn = True
        elif now - self._last_plain >= PLAIN_EVERY_S:
            self._stream.write(f"running: {text}\n")
            self._last_plain = now
        else:
            return
        self._stream.flush()

    def close(self) -> None:
        """Clear the redrawn line, so what follows starts on a clean line."""
        if self._drawn:
            self._stream.write(_CLEAR)
            self._stream.flush()
            self._drawn = False
