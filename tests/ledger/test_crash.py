"""Crash test: a process appending in a loop is killed with SIGKILL at random moments, many times.

After every kill the ledger must verify, and every append the child had
acknowledged (``append`` returned, then the child wrote ``ack <seq> <call_id>
<leaf hash>``) must be stored at that seq with those exact bytes. Appends that
were committed but not yet acknowledged may be there too (on PostgreSQL a
COMMIT the child sent just before it died still lands: the test waits for the
dead child's sessions to end before it looks); nothing else may.

Starting a fresh interpreter costs about a second (the imports), so a small
"zygote" process imports the ledger once and forks each appending child
from there: the child opens its own store (no connection is inherited) and
appends from one thread, or from several at once so that group commits are in
flight when the kill lands. The zygote only forks and reaps; the test kills
the child itself. A child's lines reach the shared pipe with single
``os.write`` calls (atomic below PIPE_BUF), and the zygote reports the reaped
child only after it is dead, so all of a child's lines come before that.
"""

from __future__ import annotations

import os
import random
import re
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest
import sqlalchemy as sa

from ledger.entry import entry_from_leaf_input
from ledger.merkle import leaf_hash
from ledger.store import LedgerStore

REPO_ROOT = Path(__file__).resolve().parents[2]
SEED = 20261123  # fixed: a failure names its seed and round, so a run can be repeated
_LINE_TIMEOUT_S = 30.0
_ACK = re.compile(r"ack (\d+) (\S+) ([0-9a-f]{64})")

ZYGOTE = r"""
import os, sys, threading
from datetime import UTC, datetime
from ledger.entry import leaf_input
from ledger.merkle import leaf_hash
from ledger.store import LedgerStore

def say(text):
    os.write(1, (text + "\n").encode())  # one write: whole lines only, even when killed

def child(url, run, threads):
    store = LedgerStore.open(url)
    say(f"ready {os.getpid()}")
    def work(worker):
        n = 0
        while True:
            call_id = f"r{run}-w{worker}-{n}"
            entry = store.append(
                "call.denied", {"call_id": call_id, "reason": "crash test"}, datetime.now(UTC)
            )
            say(f"ack {entry.seq} {call_id} {leaf_hash(leaf_input(entry)).hex()}")
            n += 1
    for worker in range(1, threads):
        threading.Thread(target=work, args=(worker,), daemon=True).start()
    work(0)

url = sys.argv[1]
while line := sys.stdin.readline():
    command, *args = line.split()
    if command == "spawn":
        pid = os.fork()
        if pid == 0:
            try:
                child(url, int(args[0]), int(args[1]))
            finally:
                os._exit(70)
        say(f"spawned {pid}")
    elif command == "reap":
        _, status = os.waitpid(int(args[0]), 0)
        say(f"reaped {args[0]} {status}")
"""


@dataclass
class Ack:
    """An append the child acknowledged: where it says it is and the hash of its bytes."""

    seq: int
    call_id: str
    digest: str


@dataclass
class Round:
    """What the test saw of one child, from spawn to reap."""

    pid: int = 0
    ready: bool = False
    acks: list[Ack] = field(default_factory=list)
    status: int | None = None


class Zygote:
    """The forking process: ``spawn`` a child, ``kill`` it, ``reap`` it and collect its lines."""

    def __init__(self, url: str) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-c", ZYGOTE, url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=REPO_ROOT,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        )
        assert self._process.stdin is not None
        assert self._process.stdout is not None
        self._stdin: IO[bytes] = self._process.stdin
        self._stdout = self._process.stdout.fileno()
        self._buffer = b""
        self._child: int | None = None

    def _send(self, command: str) -> None:
        self._stdin.write(f"{command}\n".encode())
        self._stdin.flush()

    def _lines(self, until: float) -> list[str]:
        """Complete lines read before the monotonic time ``until`` (at least one wait)."""
        timeout = max(until - time.monotonic(), 0.0)
        readable, _, _ = select.select([self._stdout], [], [], timeout)
        if readable:
            chunk = os.read(self._stdout, 65536)
            assert chunk, f"the zygote exited ({self._process.poll()})"
            self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        return [line.decode() for line in lines]

    def _take(self, line: str, current: Round) -> None:
        command, _, rest = line.partition(" ")
        if command == "ack":
            match = _ACK.fullmatch(line)
            assert match is not None, f"malformed line {line!r}"
            current.acks.append(Ack(int(match[1]), match[2], match[3]))
        elif command in {"spawned", "ready"}:
            current.pid = int(rest)
            current.ready = current.ready or command == "ready"
        elif command == "reaped":
            current.status = int(rest.split()[1])
        else:
            pytest.fail(f"unexpected line from the crash child: {line!r}")

    def run(self, run: int, threads: int, *, kill_after: float, before_ready: bool) -> Round:
        """Spawn child ``run``, SIGKILL it ``kill_after`` s after it is ready (or spawned)."""
        current = Round()
        self._send(f"spawn {run} {threads}")
        deadline = time.monotonic() + _LINE_TIMEOUT_S
        while not (current.ready or (before_ready and current.pid)):
            assert time.monotonic() < deadline, "the crash child never became ready"
            for line in self._lines(deadline):
                self._take(line, current)
        self._child = current.pid
        kill_at = time.monotonic() + kill_after
        while time.monotonic() < kill_at:  # keep the pipe drained while the child appends
            for line in self._lines(kill_at):
                self._take(line, current)
        os.kill(current.pid, signal.SIGKILL)
        self._send(f"reap {current.pid}")
        deadline = time.monotonic() + _LINE_TIMEOUT_S
        while current.status is None:
            assert time.monotonic() < deadline, "the zygote never reaped the crash child"
            for line in self._lines(deadline):
                self._take(line, current)
        self._child = None
        return current

    def close(self) -> None:
        if self._child is not None:  # a failed round left its child running
            os.kill(self._child, signal.SIGKILL)
        self._stdin.close()  # the zygote's loop ends at end of input
        try:
            self._process.wait(timeout=_LINE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        assert self._process.stdout is not None
        self._process.stdout.close()


def _wait_for_orphaned_sessions(store: LedgerStore, place: str) -> None:
    """On PostgreSQL, wait until the killed child's sessions have ended.

    The server finishes what a client sent before it died: a COMMIT already on
    the wire still commits (an append that was never acknowledged, which is
    allowed), so the ledger is only still once those backends are gone.
    """
    if store.engine.dialect.name != "postgresql":
        return
    others = sa.text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    deadline = time.monotonic() + _LINE_TIMEOUT_S
    with store.engine.connect() as conn:
        while conn.execute(others).scalar_one():
            assert time.monotonic() < deadline, f"{place}: the killed child's sessions linger"
            conn.rollback()  # a fresh snapshot of pg_stat_activity
            time.sleep(0.005)


def _crash_many_times(url: str, *, threads: int, kills: int, seed: int) -> None:
    """Kill an appending child ``kills`` times; after each, verify and find every ack."""
    rng = random.Random(seed)  # noqa: S311 - when to kill, not a secret
    acked: dict[int, Ack] = {}
    prefix: tuple[int, bytes] = (0, b"")
    rounds_with_acks = 0
    zygote = Zygote(url)
    try:
        for run in range(kills):
            # Sometimes while it opens the store; the first child migrates the empty database.
            before_ready = run == 0 or rng.random() < 0.2
            kill_after = rng.uniform(0.0, 0.05 if before_ready else 0.25)
            place = (
                f"seed {seed}, round {run}, {threads} thread(s), killed {kill_after:.3f} s after "
                f"{'spawn' if before_ready else 'ready'}"
            )
            seen = zygote.run(run, threads, kill_after=kill_after, before_ready=before_ready)
            assert os.WIFSIGNALED(seen.status or 0), f"{place}: child ended with {seen.status}"
            assert os.WTERMSIG(seen.status or 0) == signal.SIGKILL, place
            rounds_with_acks += bool(seen.acks)
            for ack in seen.acks:
                assert ack.seq not in acked, f"{place}: seq {ack.seq} acknowledged twice"
                acked[ack.seq] = ack
            with LedgerStore.open(url) as store:
                _wait_for_orphaned_sessions(store, place)
                report = store.verify()  # raises LedgerVerifyError at the first bad row
                stored = list(store.iter_leaf_inputs())
                assert report.size == len(stored), place
                old_size, old_root = prefix
                if old_size:  # nothing acknowledged or verified before was rewritten
                    assert store.root(old_size) == old_root, f"{place}: prefix {old_size} changed"
                prefix = (report.size, store.root(report.size))
            for ack in acked.values():
                assert ack.seq < len(stored), f"{place}: acknowledged seq {ack.seq} is missing"
                assert leaf_hash(stored[ack.seq]).hex() == ack.digest, (
                    f"{place}: seq {ack.seq} holds other bytes than acknowledged"
                )
            for ack in seen.acks:
                assert entry_from_leaf_input(stored[ack.seq]).body["call_id"] == ack.call_id
    finally:
        zygote.close()
    call_ids = [str(entry_from_leaf_input(data).body["call_id"]) for data in stored]
    assert len(set(call_ids)) == len(call_ids), f"seed {seed}: an append was stored twice"
    # The kills landed while appends were being made, not only before or after them.
    assert rounds_with_acks >= kills // 2, f"seed {seed}: only {rounds_with_acks} rounds appended"
    assert len(stored) >= len(acked) > 0


@pytest.mark.parametrize("threads", [1, 8], ids=["one-thread", "eight-threads"])
def test_killed_appenders_lose_no_acknowledged_append(ledger_url: str, threads: int) -> None:
    _crash_many_times(ledger_url, threads=threads, kills=25, seed=SEED + threads)
