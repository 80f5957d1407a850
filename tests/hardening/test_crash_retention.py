"""A crash at every step of a retention sweep (``govex packets prune``), then a restart.

The world holds a packet issued three days ago and one issued now. Each case runs
``govex packets prune`` with a one-day retention in a fresh process armed to SIGKILL
itself at one step of removing the old packet (:mod:`ledger.faults`: the append of
``packet.removed``, then ``retention.*``), restarts the service with retention off and
checks every invariant of :mod:`tests.hardening.crash_invariants`: the old packet is gone
(with its ``410`` record) exactly when the ledger holds its removal, the new one is there
and verifies, and no temporary record is left behind.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from ledger.faults import CRASH_POINTS
from ledger.store import LedgerStore
from service.retention import REMOVED_DIR, removed_seq
from tests.e2e.conftest import calls_days_ago
from tests.hardening.crash_forks import ForkServer, shared_fork_server
from tests.hardening.crash_invariants import Acknowledged, check_after_restart
from tests.hardening.crash_world import copy_world, new_world, process_env, restart

if TYPE_CHECKING:
    from pathlib import Path

    from service.settings import Settings

PRUNE = ["packets", "prune"]
RETENTION_POINTS = [p for p in CRASH_POINTS if p.startswith("retention.")]
# Each case, and whether packet.removed is durable when it fires. The prune appends one
# batch (packet.removed: `govex packets prune` does not ledger service.started).
CASES = {
    "ledger.append.begin:1": False,
    "ledger.append.insert:1": False,
    "ledger.append.commit:1": True,
    **dict.fromkeys(RETENTION_POINTS, True),
}


@pytest.fixture(scope="module")
def forks() -> ForkServer:
    return shared_fork_server()


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Acknowledged, Acknowledged]:
    """A world with an old packet (three days) and a new one, to copy per case."""
    base = tmp_path_factory.mktemp("retention-template")
    settings = new_world(base / "world")
    old = Acknowledged.of(calls_days_ago(settings, 1, 3)[0])
    new = Acknowledged.of(calls_days_ago(settings, 1, 0)[0])
    return base / "world", old, new


def _prune(forks: ForkServer, settings: Settings, scratch: Path, **armed: Path | str) -> int:
    env = process_env(settings) | {"GOVEX_PACKET_RETENTION_DAYS": "1"}
    return forks.run(PRUNE, env=env, cwd=scratch, output=scratch / "prune.out", **armed)  # type: ignore[arg-type]


def _removals(settings: Settings) -> list[int]:
    with LedgerStore.open(settings.ledger_url) as store:
        entries = store.list_entries(0, store.size())
    return [entry.seq for entry in entries if entry.kind == "packet.removed"]


def test_every_retention_crash_point_has_a_case() -> None:
    assert RETENTION_POINTS  # the sweep below is not empty
    assert set(RETENTION_POINTS) <= set(CASES)


def test_a_normal_prune_reaches_every_retention_crash_point_once(
    forks: ForkServer, template: tuple[Path, Acknowledged, Acknowledged], tmp_path: Path
) -> None:
    source, old, new = template
    settings = copy_world(source, tmp_path / "world")
    trace = tmp_path / "trace"
    assert _prune(forks, settings, tmp_path, trace=trace) == 0
    reached = [p for p in trace.read_text().split() if p.startswith("retention.")]
    assert reached == RETENTION_POINTS  # in protocol order, one packet removed
    assert (settings.packet_root / f"{new.packet_id}.zip").is_file()
    assert not (settings.packet_root / f"{old.packet_id}.zip").exists()


@pytest.mark.parametrize("case", CASES)
def test_a_crash_while_pruning_leaves_a_ledger_and_packet_root_that_recover(
    case: str,
    forks: ForkServer,
    template: tuple[Path, Acknowledged, Acknowledged],
    tmp_path: Path,
) -> None:
    source, old, new = template
    settings = copy_world(source, tmp_path / "world")
    code = _prune(forks, settings, tmp_path, crash_at=case)
    assert code == -9, (tmp_path / "prune.out.err").read_text()  # it died at the point
    assert (tmp_path / "prune.out").read_text() == ""  # and reported nothing
    removals = _removals(settings)
    assert len(removals) == (1 if CASES[case] else 0)

    restart(settings)  # retention off now: a removal the ledger holds is finished anyway
    checked = check_after_restart(settings, [new], closed=True)
    assert list(checked.problems) == []
    old_zip = settings.packet_root / f"{old.packet_id}.zip"
    assert old_zip.exists() is not CASES[case]
    assert removed_seq(settings.packet_root, old.packet_id) == (removals[0] if removals else None)
    folder = settings.packet_root / REMOVED_DIR
    left = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    assert left == ([f"{old.packet_id}.json"] if CASES[case] else [])  # no temporary record
    assert _removals(settings) == removals  # finished, not ledgered again
