"""Slowing down repeated authentication failures, per client, in memory.

A client is whatever :mod:`service.authenticate` is given: over HTTP, the peer address
of the connection (``request.client.host``). Behind a reverse proxy that is the
proxy's address, so all clients behind it share one count: run the proxy's own limits
there, or give each client its own path to govex.

The rule: once a client has failed ``limit`` times within the last ``window_s``
seconds, every request from it is refused with :class:`TooManyAuthFailures`, whatever
its credential, until the oldest of those failures is ``window_s`` old. Refused
requests are not evaluated, so they do not count as failures, and ``retry_after_s`` is
exact. A success does not erase earlier failures: interleaving a valid key with
guesses gains nothing. Other clients are not affected.

Memory is bounded: a client keeps at most ``limit`` timestamps, and at most
``max_clients`` clients are tracked; past that, the client whose last failure is the
oldest is forgotten (stale ones first, since they failed longest ago). A flood from
more addresses than that within one window can therefore push a client out early.
One lock guards the state, which lives on the runtime (one per process, so each
worker process counts on its own); nothing is module-level.

Times are the runtime clock's (:mod:`service.clock`); a clock set back keeps failures
counted until the window has passed after them.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict, deque
from datetime import datetime

from service.errors import TooManyAuthFailures

DEFAULT_LIMIT = 5
DEFAULT_WINDOW_S = 60.0
DEFAULT_MAX_CLIENTS = 10_000


class AuthFailureThrottle:
    """Failures per client within a sliding window; thread-safe."""

    def __init__(
        self,
        *,
        limit: int = DEFAULT_LIMIT,
        window_s: float = DEFAULT_WINDOW_S,
        max_clients: int = DEFAULT_MAX_CLIENTS,
    ) -> None:
        """Raises :class:`ValueError` for a limit, window or capacity that is not positive."""
        if limit < 1 or not window_s > 0 or max_clients < 1:
            raise ValueError("limit, window_s and max_clients must be positive")
        self._limit = limit
        self._window_s = window_s
        self._max_clients = max_clients
        # Least recently failed first: eviction takes from the front.
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def window_s(self) -> float:
        return self._window_s

    def tracked_clients(self) -> int:
        """How many clients have failures on record (for tests and metrics)."""
        with self._lock:
            return len(self._failures)

    def check(self, client: str, now: datetime) -> None:
        """Raise :class:`TooManyAuthFailures` when ``client`` is throttled at ``now``."""
        t = now.timestamp()
        with self._lock:
            failures = self._failures.get(client)
            if failures is None:
                return
            self._forget_old(failures, t)
            if not failures:
                del self._failures[client]
                return
            if len(failures) < self._limit:
                return
            retry = max(1, math.ceil(failures[0] + self._window_s - t))
        raise TooManyAuthFailures(
            client=client, failures=len(failures), window_s=self._window_s, retry_after_s=retry
        )

    def record_failure(self, client: str, now: datetime) -> None:
        """Count one failed authentication of ``client`` at ``now``."""
        t = now.timestamp()
        with self._lock:
            failures = self._failures.get(client)
            if failures is None:
                self._make_room()
                failures = deque(maxlen=self._limit)
                self._failures[client] = failures
            else:
                self._failures.move_to_end(client)
            failures.append(t)

    def _forget_old(self, failures: deque[float], t: float) -> None:
        while failures and failures[0] <= t - self._window_s:
            failures.popleft()

    def _make_room(self) -> None:
        """Forget the clients that failed longest ago until one more fits; lock held."""
        while len(self._failures) >= self._max_clients:
            self._failures.popitem(last=False)
