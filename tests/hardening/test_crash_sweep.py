"""A crash at every step of the append, packet and checkpoint protocols, then a restart.

Each case starts from a world with two acknowledged calls and a checkpoint, runs one more
``govex call`` (or ``govex ledger checkpoint``) in a fresh process armed to SIGKILL itself
at one crash point (:mod:`ledger.faults`), checks that it died there and told nobody, then
restarts the service (the app's real start-up: packet recovery, call recovery, the reaper)
and checks every invariant of :mod:`tests.hardening.crash_invariants`, plus how far the
crashed call got in the ledger, whether its packet is visible and what was quarantined.
Calls the crash left open are then finished by a restart past their deadline, exactly once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ledger.checkpoint import open_checkpoint
from ledger.checkpointer import Checkpointer
from ledger.faults import CRASH_POINTS, parse_crash_at
from ledger.keys import parse_signer_key
from ledger.store import LedgerStore
from service.call_reaper import reap_interrupted
from service.runtime import build_runtime
from tests.hardening.crash_forks import REPO, ForkServer, shared_fork_server
from tests.hardening.crash_invariants import Acknowledged, Checked, check_after_restart
from tests.hardening.crash_world import (
    AFTER_GRACE,
    CALL,
    PAST_DEADLINES,
    copy_world,
    new_world,
    prepare,
    process_env,
    restart,
    run_call,
    world_settings,
)

if TYPE_CHECKING:
    from service.settings import Settings

SLOW = ["call", "items.slow"]  # times out: finished without a packet

# The append transactions of one `govex call`, in order (the nth reach of a ledger.append.*
# point is in the nth): call.finished and packet.issued are submitted together and share one
# commit. A test checks this against a traced run, so a change in batching shows here.
BATCHES = (("service.started",), ("call.started",), ("call.finished", "packet.issued"))


@dataclass(frozen=True)
class Expect:
    """Where a crash leaves the crashed call: how far the ledger got, what is quarantined."""

    stage: str  # none | started | finished | issued (see LedgerView.stage)
    quarantined: int = 0


def _append(point: str, nth: int) -> str:
    return f"ledger.append.{point}:{nth}"


def _stage(durable: int) -> str:
    """How far the ledger got with a call once its first ``durable`` batches committed."""
    kinds = {kind for batch in BATCHES[:durable] for kind in batch}
    for kind, stage in (("packet.issued", "issued"), ("call.finished", "finished")):
        if kind in kinds:
            return stage
    return "started" if "call.started" in kinds else "none"


EXPECT: dict[str, Expect] = {
    **{
        _append(point, nth): Expect(_stage(nth if point == "commit" else nth - 1))
        for point in ("begin", "insert", "commit")
        for nth in range(1, len(BATCHES) + 1)
    },  # commit:2 leaves call.started without an index row: adopted at restart
    "call.accepted": Expect("started"),
    "packet.bag.written": Expect("started"),
    "packet.zip.entry": Expect("started", quarantined=1),  # a partial zip
    "packet.zip.written": Expect("started"),
    "packet.zip.synced": Expect("started"),
    "packet.staged": Expect("started"),
    "call.indexed": Expect("issued"),  # the staged zip is published at restart
    "packet.renamed": Expect("issued"),
    "packet.published": Expect("issued"),
    "call.respond": Expect("issued"),
}
CHECKPOINT_CASES = {"checkpoint.insert": 0, "checkpoint.commit": 1}  # checkpoints it adds


def _sweep() -> list[str]:
    """Every crash case the declared points give: each append of a call, each other point."""
    cases = []
    for point in CRASH_POINTS:
        if point.startswith("ledger.append."):
            cases += [f"{point}:{nth}" for nth in range(1, len(BATCHES) + 1)]
        elif not point.startswith(("checkpoint.", "retention.")):  # their own sweeps
            cases.append(point)
    return cases


@pytest.fixture(scope="module")
def forks() -> ForkServer:
    return shared_fork_server()


@pytest.fixture(scope="module")
def template(
    forks: ForkServer, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, list[Acknowledged]]:
    """A SQLite world with two acknowledged calls and a checkpoint, to copy per case."""
    base = tmp_path_factory.mktemp("crash-template")
    settings = new_world(base / "world")
    return base / "world", prepare(forks, settings, base)


def _crashed_call(checked: Checked, acknowledged: list[Acknowledged]) -> str | None:
    known = {ack.call_id for ack in acknowledged}
    fresh = [call_id for call_id in checked.view.started if call_id not in known]
    assert len(fresh) <= 1, fresh
    return fresh[0] if fresh else None


def test_every_crash_point_has_a_case_with_an_expectation() -> None:
    assert sorted(EXPECT) == sorted(_sweep())
    assert {p for p in CRASH_POINTS if p.startswith("checkpoint.")} == set(CHECKPOINT_CASES)


def test_a_normal_call_and_checkpoint_reach_every_other_declared_crash_point(
    forks: ForkServer, tmp_path: Path
) -> None:
    settings = new_world(tmp_path / "world")
    trace = tmp_path / "trace"
    code = forks.run(
        ["call", "items.by_tenant", "--param", "tenant=acme"],
        env=process_env(settings),
        cwd=tmp_path,
        trace=trace,
        output=tmp_path / "call.out",
    )
    assert code == 0, (tmp_path / "call.out.err").read_text()
    code = forks.run(
        ["ledger", "checkpoint"],
        env=process_env(settings),
        cwd=tmp_path,
        trace=trace,
        output=tmp_path / "checkpoint.out",
    )
    assert code == 0, (tmp_path / "checkpoint.out.err").read_text()
    reached = trace.read_text().split()
    assert set(reached) == {p for p in CRASH_POINTS if not p.startswith("retention.")}
    in_call = reached[: reached.index("call.respond") + 1]
    finishing = in_call[in_call.index("packet.staged") : in_call.index("call.indexed")]
    assert in_call.count("ledger.append.commit") == len(BATCHES)
    assert finishing.count("ledger.append.commit") == len(BATCHES) - 2  # one batch, as declared


def test_every_crash_point_in_the_source_is_declared_and_documented() -> None:
    called = set()
    for package in ("ledger", "service"):
        for path in (REPO / package).rglob("*.py"):
            called |= set(re.findall(r'crash_point\("([^"]+)"\)', path.read_text()))
    assert called == set(CRASH_POINTS)
    section = (REPO / "docs" / "security.md").read_text().split("## Crashes at every step")[1]
    section = section.split("\n## ")[0]
    assert [p for p in CRASH_POINTS if f"`{p}`" not in section] == []


@pytest.mark.parametrize("case", _sweep())
def test_a_crash_at_each_step_leaves_a_ledger_and_packet_root_that_recover(
    case: str, forks: ForkServer, template: tuple[Path, list[Acknowledged]], tmp_path: Path
) -> None:
    source, acknowledged = template
    settings = copy_world(source, tmp_path / "world")
    code, ack = run_call(forks, settings, tmp_path / "crash.out", crash_at=case)
    assert code == -9, (tmp_path / "crash.out.err").read_text()  # it died at the point
    assert ack is None  # and acknowledged nothing
    _check_recovers(settings, acknowledged, EXPECT[case])


def _check_recovers(settings: Settings, acknowledged: list[Acknowledged], expect: Expect) -> None:
    """Restart, check every invariant and where the crashed call stands; close open calls."""
    restart(settings, later=AFTER_GRACE)
    # A call that is not left open must already be finished exactly once.
    checked = check_after_restart(settings, acknowledged, closed=expect.stage != "started")
    assert list(checked.problems) == []
    crashed = _crashed_call(checked, acknowledged)
    stage = "none" if crashed is None else checked.view.stage(crashed)
    assert stage == expect.stage
    packets = {issued.body["packet_id"] for issued in checked.view.issued.get(crashed or "", [])}
    visible = {p.name.removesuffix(".zip") for p in settings.packet_root.glob("*.zip")}
    assert packets <= visible  # issued: published at restart
    assert len(visible) == len(acknowledged) + (stage == "issued")
    assert len(checked.quarantined(settings.packet_root)) == expect.quarantined
    if stage == "started":  # open until its deadline: a restart past it finishes it, once
        restart(settings, later=PAST_DEADLINES)
        closed = check_after_restart(settings, acknowledged, closed=True)
        assert list(closed.problems) == []


@pytest.mark.parametrize("case", sorted(CHECKPOINT_CASES))
def test_a_crash_while_checkpointing_leaves_checkpoints_that_verify_and_extend(
    case: str, forks: ForkServer, template: tuple[Path, list[Acknowledged]], tmp_path: Path
) -> None:
    source, acknowledged = template
    settings = copy_world(source, tmp_path / "world")
    with LedgerStore.open(settings.ledger_url) as store:
        before = len(store.checkpoints())
    code = forks.run(
        ["ledger", "checkpoint"],
        env=process_env(settings),
        cwd=tmp_path,
        crash_at=case,
        output=tmp_path / "checkpoint.out",
    )
    assert code == -9, (tmp_path / "checkpoint.out.err").read_text()
    assert (tmp_path / "checkpoint.out").read_text() == ""  # no note printed
    with LedgerStore.open(settings.ledger_url) as store:
        assert len(store.checkpoints()) == before + CHECKPOINT_CASES[case]
    restart(settings)
    checked = check_after_restart(settings, acknowledged, closed=True)  # stored roots verify
    assert list(checked.problems) == []
    assert settings.ledger_key_file is not None
    signer = parse_signer_key(settings.ledger_key_file.read_text().strip())
    with LedgerStore.open(settings.ledger_url) as store:
        stored = Checkpointer(store, signer, lambda: datetime.now(UTC)).checkpoint()
        assert stored.size == store.size()  # the next checkpoint extends the stored ones
    assert open_checkpoint(stored.note, signer.verifier_key).size == stored.size


FINISH = _append("commit", len(BATCHES))  # the commit that makes call.finished durable


@pytest.mark.parametrize(
    ("case", "argv", "expect"),
    [
        # Its 200 ms deadline has passed when the service restarts: the reaper finishes it.
        pytest.param(_append("begin", len(BATCHES)), SLOW, Expect("finished"), id="begin"),
        pytest.param(FINISH, SLOW, Expect("finished"), id="commit"),
    ],
)
def test_a_crash_as_a_call_without_a_packet_finishes_recovers(
    case: str,
    argv: list[str],
    expect: Expect,
    forks: ForkServer,
    template: tuple[Path, list[Acknowledged]],
    tmp_path: Path,
) -> None:
    source, acknowledged = template
    settings = copy_world(source, tmp_path / "world")
    code, ack = run_call(forks, settings, tmp_path / "crash.out", crash_at=case, argv=argv)
    assert code == -9, (tmp_path / "crash.out.err").read_text()
    assert ack is None
    _check_recovers(settings, acknowledged, expect)


@pytest.mark.parametrize(("argv", "stage"), [(CALL, "issued"), (SLOW, "finished")])
def test_another_workers_reaper_settles_a_call_the_ledger_finished_instead_of_finishing_it_again(
    argv: list[str],
    stage: str,
    forks: ForkServer,
    template: tuple[Path, list[Acknowledged]],
    tmp_path: Path,
) -> None:
    source, acknowledged = template
    settings = copy_world(source, tmp_path / "world")
    code, _ = run_call(forks, settings, tmp_path / "crash.out", crash_at=FINISH, argv=argv)
    assert code == -9, (tmp_path / "crash.out.err").read_text()
    runtime = build_runtime(
        settings, clock=lambda: datetime.now(UTC) + PAST_DEADLINES, record_start=False
    )
    try:
        assert reap_interrupted(runtime) == []  # nothing is finished as interrupted
    finally:
        runtime.close()
    checked = check_after_restart(settings, acknowledged, closed=True)
    assert list(checked.problems) == []
    crashed = _crashed_call(checked, acknowledged)
    assert crashed is not None
    assert checked.view.stage(crashed) == stage


PG_CASES = [_append(point, nth) for nth in (2, len(BATCHES)) for point in ("begin", "commit")]


@pytest.mark.parametrize("case", PG_CASES)
def test_a_crash_at_each_append_step_on_postgresql_recovers(
    case: str, forks: ForkServer, pg_url: str, tmp_path: Path
) -> None:
    settings = new_world(tmp_path / "world", ledger_url=pg_url)
    acknowledged = prepare(forks, settings, tmp_path)
    code, ack = run_call(forks, settings, tmp_path / "crash.out", crash_at=case)
    assert code == -9, (tmp_path / "crash.out.err").read_text()
    assert ack is None
    _check_recovers(world_settings(tmp_path / "world", pg_url), acknowledged, EXPECT[case])


# PostgreSQL appends in one autocommit statement: no "inserted, not committed" state the
# process could die in. ledger.append.insert is reached only in the lock-first COPY path.
PG_SOAK_CASES = [c for c in _sweep() if c not in PG_CASES and "append.insert" not in c]


@pytest.mark.soak
@pytest.mark.parametrize("case", PG_SOAK_CASES)
def test_soak_a_crash_at_every_other_step_on_postgresql_recovers(
    case: str, forks: ForkServer, pg_url: str, tmp_path: Path
) -> None:
    test_a_crash_at_each_append_step_on_postgresql_recovers(case, forks, pg_url, tmp_path)


def test_a_staged_zip_that_does_not_verify_against_its_issued_hash_is_quarantined(
    forks: ForkServer, template: tuple[Path, list[Acknowledged]], tmp_path: Path
) -> None:
    source, acknowledged = template
    settings = copy_world(source, tmp_path / "world")
    code, _ = run_call(forks, settings, tmp_path / "crash.out", crash_at="call.indexed")
    assert code == -9, (tmp_path / "crash.out.err").read_text()
    (staged,) = (settings.packet_root / ".staging").glob("*.zip")
    data = bytearray(staged.read_bytes())
    data[len(data) // 2] ^= 0xFF  # damaged while staged: not what the ledger issued
    staged.write_bytes(bytes(data))
    restart(settings, later=AFTER_GRACE)
    checked = check_after_restart(settings, acknowledged)
    packet_id = staged.name.removesuffix(".zip")
    assert list(checked.problems) == [
        f"issued: packet {packet_id} is issued in the ledger but not in the packet root"
    ]
    assert checked.quarantined(settings.packet_root) == [staged.name]
    assert not (settings.packet_root / staged.name).exists()


@pytest.mark.parametrize(
    ("spec", "detail"),
    [
        ("packet.zipp.written", "not a declared crash point"),
        ("call.respond:0", "must be at least 1"),
    ],
)
def test_arming_an_undeclared_point_or_a_zero_count_is_refused(spec: str, detail: str) -> None:
    with pytest.raises(ValueError, match=detail):
        parse_crash_at(spec)
