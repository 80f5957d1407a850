"""Concurrent HTTP clients making calls on a real server, and what it acknowledged to them.

Each client is a thread with its own ``httpx.Client`` posting ``POST /v1/calls`` in a
loop until told to stop or until the server is gone. A ``201`` with a packet is an
acknowledged call; a ``202`` an accepted one (its ``call.started`` must be durable). A
failed request (the server was killed under it) acknowledged nothing.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import httpx

from tests.e2e.conftest import TOKENS
from tests.hardening.crash_invariants import Acknowledged

_BODY = {"entry": "items.by_tenant", "params": {"tenant": "acme"}}


@dataclass
class Load:
    """``clients`` threads calling ``base_url``; :meth:`stop` joins them."""

    base_url: str
    clients: int = 3
    acknowledged: list[Acknowledged] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)  # call ids answered 202
    failed: int = 0  # requests that got no answer (the server died under them)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        for number in range(self.clients):
            thread = threading.Thread(target=self._client, name=f"crash-load-{number}")
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def _client(self) -> None:
        headers = {"Authorization": f"Bearer {TOKENS['alice']}"}
        with httpx.Client(base_url=self.base_url, headers=headers, timeout=30) as client:
            while not self._stop.is_set():
                try:
                    response = client.post("/v1/calls", json=_BODY)
                except httpx.HTTPError:
                    with self._lock:
                        self.failed += 1
                    return  # the server is gone
                body = response.json()
                with self._lock:
                    if response.status_code == httpx.codes.CREATED and body.get("packet_id"):
                        self.acknowledged.append(Acknowledged.of(body))
                    elif response.status_code == httpx.codes.ACCEPTED:
                        self.accepted.append(body["call_id"])
