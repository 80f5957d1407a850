"""Periodic checkpoints: a background thread signs a checkpoint every ``interval_s`` seconds.

Started and stopped by the app's lifespan, never at import. The thread calls
:meth:`~ledger.checkpointer.Checkpointer.checkpoint`, which returns the latest
stored checkpoint when the ledger has not grown, so an idle ledger gets no new
rows. A failure (storage full or unavailable, a refused signature) is logged
and the next tick tries again: checkpointing never stops the service.
On-demand checkpoints (``GET /v1/ledger/checkpoint``) use the same
checkpointer; the store keeps one checkpoint per tree size.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import structlog

from ledger.errors import CheckpointRefused, LedgerError

if TYPE_CHECKING:
    from ledger.checkpointer import Checkpointer
    from ledger.store import StoredCheckpoint

_log = structlog.get_logger("govex.checkpoints")
_STOP_TIMEOUT_S = 30.0  # how long stop() waits for a checkpoint in progress


class PeriodicCheckpoints:
    """Signs a checkpoint every ``interval_s`` seconds between :meth:`start` and :meth:`stop`.

    ``interval_s == 0`` disables it: :meth:`start` then starts nothing.
    """

    def __init__(self, checkpointer: Checkpointer, interval_s: float) -> None:
        if interval_s < 0:
            raise ValueError(f"the checkpoint interval must not be negative, got {interval_s}")
        self._checkpointer = checkpointer
        self._interval_s = interval_s
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the thread (once); the first checkpoint comes one interval after."""
        if self._interval_s == 0 or self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name="govex-checkpoints", daemon=True)
        self._thread.start()
        _log.info("checkpoints.started", interval_s=self._interval_s)

    def stop(self) -> None:
        """Stop the thread, waiting for a checkpoint in progress to finish."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stopping.set()
        thread.join(_STOP_TIMEOUT_S)
        _log.info("checkpoints.stopped")

    def run_once(self) -> StoredCheckpoint | None:
        """One checkpoint now; None (after logging why) when it failed."""
        try:
            stored = self._checkpointer.checkpoint()
        except CheckpointRefused as exc:
            # The ledger no longer extends its last checkpoint: an operator must look now.
            _log.error("checkpoint.refused", size=exc.size, detail=exc.message)
        except LedgerError as exc:  # storage full or unavailable: the next tick tries again
            _log.warning("checkpoint.failed", error=type(exc).__name__, detail=exc.message)
        except Exception as exc:  # noqa: BLE001 - logged with its traceback; the next tick tries again
            _log.error("checkpoint.failed", error=type(exc).__name__, exc_info=exc)
        else:
            _log.debug("checkpoint.signed", size=stored.size)
            return stored
        return None

    def _loop(self) -> None:
        while not self._stopping.wait(self._interval_s):
            self.run_once()
