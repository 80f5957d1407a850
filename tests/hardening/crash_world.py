"""Worlds for the crash tests: the e2e world plus a ledger signing key, copied per case.

A crash case starts from a world where two calls were made and acknowledged, with a
signed checkpoint between them (so every later check has earlier evidence to keep). The
SQLite world is built once and copied per case (the ledger is one file); a PostgreSQL
world gets its own database. :func:`restart` starts the real app's lifespan in this
process (build the runtime: packet recovery; then call recovery and the reaper), as a
restarted ``govex serve`` does, and stops it cleanly.
"""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from fastapi.testclient import TestClient

from ledger.checkpointer import Checkpointer
from ledger.keys import SignerKey, parse_signer_key
from ledger.store import LedgerStore
from service.app import create_app
from service.call_recovery import ORPHAN_GRACE
from service.settings import Settings
from tests.e2e.conftest import TOKENS, make_world
from tests.e2e.servers import world_env
from tests.hardening.crash_invariants import Acknowledged, acknowledged_in

if TYPE_CHECKING:
    from pathlib import Path

    from tests.hardening.crash_forks import ForkServer

AFTER_GRACE = ORPHAN_GRACE + timedelta(seconds=1)  # a restart after the orphan grace
PAST_DEADLINES = timedelta(days=1)  # later than any call's deadline (timeout + queue allowance)
ORIGIN = "govex.test/ledger/e2e"  # make_world's origin: the signing key is named after it
CALL = ["call", "items.by_tenant", "--param", "tenant=acme"]


def world_settings(root: Path, ledger_url: str | None = None) -> Settings:
    """The settings of a world laid out under ``root`` as :func:`new_world` lays it out."""
    return Settings(
        catalog_dir=root / "catalog",
        sources={"items": str(root / "items.sqlite")},
        keys_file=root / "keys.json",
        ledger_url=ledger_url or f"sqlite:///{root / 'ledger.sqlite'}",
        packet_root=root / "packets",
        origin=ORIGIN,
        ledger_key_file=root / "ledger.key",
    )


def new_world(root: Path, ledger_url: str | None = None) -> Settings:
    """A fresh world under ``root`` with a ledger signing key; nothing ledgered yet."""
    root.mkdir(parents=True, exist_ok=True)
    make_world(root, ledger_url=ledger_url)
    key = root / "ledger.key"
    key.write_text(SignerKey.generate(ORIGIN).text() + "\n")
    key.chmod(0o600)
    return world_settings(root, ledger_url)


def copy_world(template: Path, root: Path) -> Settings:
    """A copy of the SQLite world at ``template`` (no process may be using it)."""
    shutil.copytree(template, root)
    return world_settings(root)


def process_env(settings: Settings) -> dict[str, str]:
    """The environment of a govex process of this world (nothing of the test's GOVEX_*)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVEX_")}
    env.update(world_env(settings))
    env["GOVEX_LEDGER_KEY_FILE"] = str(settings.ledger_key_file)
    env["GOVEX_API_KEY"] = TOKENS["alice"]
    env["GOVEX_CHECKPOINT_INTERVAL_S"] = "0"  # checkpoints only when a case asks for one
    return env


def run_call(
    forks: ForkServer,
    settings: Settings,
    output: Path,
    crash_at: str | None = None,
    argv: list[str] = CALL,
) -> tuple[int, Acknowledged | None]:
    """``govex <argv>`` in a fresh process; its exit code and what it acknowledged (or None)."""
    code = forks.run(
        argv,
        env=process_env(settings),
        cwd=settings.packet_root.parent,
        crash_at=crash_at,
        output=output,
    )
    return code, acknowledged_in(output.read_text())


def checkpoint(settings: Settings) -> None:
    """Sign and store a checkpoint of the world's ledger (in this process)."""
    assert settings.ledger_key_file is not None
    signer = parse_signer_key(settings.ledger_key_file.read_text().strip())
    with LedgerStore.open(settings.ledger_url) as store:
        Checkpointer(store, signer, lambda: datetime.now(UTC)).checkpoint()


def prepare(forks: ForkServer, settings: Settings, scratch: Path) -> list[Acknowledged]:
    """Two acknowledged calls with a checkpoint between them; the acknowledgements."""
    acknowledged = []
    for number in (1, 2):
        code, ack = run_call(forks, settings, scratch / f"prepare-{number}.out")
        assert code == 0, (scratch / f"prepare-{number}.out.err").read_text()
        assert ack is not None
        acknowledged.append(ack)
        if number == 1:
            checkpoint(settings)
    return acknowledged


def restart(settings: Settings, *, later: timedelta = timedelta(0)) -> None:
    """Start the app's lifespan (every start-up step) ``later`` than now, then stop it."""
    settings = settings.model_copy(update={"checkpoint_interval_s": 0})

    def clock() -> datetime:
        return datetime.now(UTC) + later

    with TestClient(create_app(settings, clock=clock)) as client:
        assert client.get("/healthz").status_code == 200
