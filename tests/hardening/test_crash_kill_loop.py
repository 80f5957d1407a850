"""kill -9 of a running ``govex serve`` under load, at a random moment, then restart; repeated.

Each iteration starts a real ``govex serve`` (uvicorn on 127.0.0.1, a process of its own,
periodic checkpoints every half second) on the same world, checks every invariant of
:mod:`tests.hardening.crash_invariants` after its start-up recovery (for every call
acknowledged so far, in any iteration), puts three concurrent HTTP clients on it, and
SIGKILLs it by its pid after a random delay (seeded: the seed is in the test id). After
the last iteration a restart past every deadline must leave every call finished once.
``make test`` runs a few iterations; ``make soak`` many more, and on PostgreSQL too.
"""

from __future__ import annotations

import os
import random
import signal
import time
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.e2e.servers import free_port
from tests.hardening.crash_forks import ForkServer, shared_fork_server
from tests.hardening.crash_invariants import Acknowledged, check_after_restart
from tests.hardening.crash_load import Load
from tests.hardening.crash_world import PAST_DEADLINES, new_world, process_env, restart

if TYPE_CHECKING:
    from pathlib import Path

    from service.settings import Settings

READY_TIMEOUT_S = 60.0
# What start-up recovery logs when it acts (service.packets.recovery, service.call_recovery).
_RECOVERY_EVENTS = ("packets.recovered", "packet.quarantined", "calls.recovered")


@pytest.fixture(scope="module")
def forks() -> ForkServer:
    return shared_fork_server()


def _serve(forks: ForkServer, settings: Settings, output: Path) -> tuple[int, str]:
    """Start ``govex serve`` on a free loopback port; its pid and base URL once ready."""
    port = free_port()
    env = process_env(settings) | {"GOVEX_CHECKPOINT_INTERVAL_S": "0.5"}
    argv = ["serve", "--host", "127.0.0.1", "--port", str(port)]
    pid = forks.spawn(argv, env=env, cwd=output.parent, output=output)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=5).status_code == httpx.codes.OK:
                return pid, base
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    forks.wait(pid)
    pytest.fail(f"govex serve not ready in {READY_TIMEOUT_S} s: {output}.err")


def kill_loop(
    forks: ForkServer, tmp_path: Path, *, iterations: int, seed: int, ledger_url: str | None = None
) -> dict[str, int]:
    """Run the loop; the figures reached (iterations, acknowledged calls, checked calls...)."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible schedule, not a secret
    settings = new_world(tmp_path / "world", ledger_url)
    acknowledged: list[Acknowledged] = []
    accepted: list[str] = []
    killed_under_load = 0
    for iteration in range(iterations):
        pid, base = _serve(forks, settings, tmp_path / f"serve-{iteration}.out")
        checked = check_after_restart(settings, acknowledged)
        assert list(checked.problems) == [], f"iteration {iteration} (seed {seed})"
        assert set(accepted) <= set(checked.view.started)  # a 202 means call.started is durable
        load = Load(base)
        load.start()
        time.sleep(rng.uniform(0.3, 1.5))
        os.kill(pid, signal.SIGKILL)
        assert forks.wait(pid) == -signal.SIGKILL
        load.stop()
        acknowledged += load.acknowledged
        accepted += load.accepted
        killed_under_load += load.failed > 0
    restart(settings, later=PAST_DEADLINES)
    closed = check_after_restart(settings, acknowledged, closed=True)
    assert list(closed.problems) == [], f"after the last restart (seed {seed})"
    assert len(acknowledged) >= iterations  # the clients got calls through in each run
    logs = "".join(p.read_text() for p in tmp_path.glob("serve-*.out*"))
    return {
        "iterations": iterations,
        **{event: logs.count(event) for event in _RECOVERY_EVENTS},
        "killed_under_load": killed_under_load,
        "acknowledged": len(acknowledged),
        "calls": closed.calls,
        "entries": closed.entries,
        "packets": closed.packets,
    }


SEED = 9


def test_kill_9_of_the_server_under_load_loses_no_acknowledged_call(
    forks: ForkServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    figures = kill_loop(forks, tmp_path, iterations=5, seed=SEED)
    with capsys.disabled():
        print(f"\nkill loop (SQLite, seed {SEED}): {figures}")  # noqa: T201 - docs/security.md


@pytest.mark.soak
@pytest.mark.parametrize("seed", [101, 202])
def test_soak_kill_9_of_the_server_under_load_on_sqlite(
    forks: ForkServer, tmp_path: Path, seed: int, capsys: pytest.CaptureFixture[str]
) -> None:
    figures = kill_loop(forks, tmp_path, iterations=25, seed=seed)
    with capsys.disabled():
        print(f"\nkill loop (SQLite, seed {seed}): {figures}")  # noqa: T201


@pytest.mark.soak
def test_soak_kill_9_of_the_server_under_load_on_postgresql(
    forks: ForkServer, tmp_path: Path, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    figures = kill_loop(forks, tmp_path, iterations=20, seed=303, ledger_url=pg_url)
    with capsys.disabled():
        print(f"\nkill loop (PostgreSQL, seed 303): {figures}")  # noqa: T201
