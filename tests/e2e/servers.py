"""Real servers on loopback for end-to-end tests: a free port, an in-process uvicorn, the
``GOVEX_*`` environment of a world for a ``govex`` subprocess."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI

from service.settings import Settings


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def running_uvicorn(app: FastAPI) -> Iterator[str]:
    """``app`` served by a real uvicorn on loopback (in a thread); yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("uvicorn stopped before it started")
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start within 20 s")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def world_env(settings: Settings) -> dict[str, str]:
    """The ``GOVEX_*`` variables that give a ``govex`` subprocess the world's settings."""
    return {
        "GOVEX_CATALOG_DIR": str(settings.catalog_dir),
        "GOVEX_SOURCES": json.dumps(settings.sources),
        "GOVEX_KEYS_FILE": str(settings.keys_file),
        "GOVEX_LEDGER_URL": settings.ledger_url,
        "GOVEX_PACKET_ROOT": str(settings.packet_root),
        "GOVEX_ORIGIN": settings.origin,
    }
