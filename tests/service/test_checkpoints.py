"""Periodic checkpoints: signed on a schedule, failures logged and survived, stopped cleanly."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import structlog
from pydantic import ValidationError

from ledger.checkpoint import open_checkpoint
from ledger.checkpointer import Checkpointer
from ledger.errors import CheckpointRefused, LedgerStorageFull, UnverifiedNote
from ledger.keys import SignerKey
from ledger.store import LedgerStore, StoredCheckpoint
from service.checkpoints import PeriodicCheckpoints
from service.settings import Settings

ORIGIN = "govex.test/ledger/periodic"
INTERVAL = 0.02


def _now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LedgerStore]:
    with LedgerStore.open(f"sqlite:///{tmp_path / 'ledger.sqlite'}") as opened:
        yield opened


@pytest.fixture
def signer() -> SignerKey:
    return SignerKey.generate(ORIGIN)


class FlakyCheckpointer(Checkpointer):
    """Raises the queued errors first, then checkpoints; counts every attempt."""

    def __init__(
        self, store: LedgerStore, signer: SignerKey, errors: list[Exception] | None = None
    ) -> None:
        super().__init__(store, signer, _now)
        self.errors = list(errors or [])
        self.attempts = 0
        self.lock = threading.Lock()

    def checkpoint(self) -> StoredCheckpoint:
        with self.lock:
            self.attempts += 1
            if self.errors:
                raise self.errors.pop(0)
        return super().checkpoint()


def _wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(INTERVAL / 2)


def _append(store: LedgerStore, n: int = 1) -> None:
    for _ in range(n):
        store.append("call.denied", {"call_id": "01C", "reason": "test"}, _now())


def test_the_thread_signs_a_checkpoint_of_the_ledger_each_interval(
    store: LedgerStore, signer: SignerKey
) -> None:
    _append(store, 3)
    periodic = PeriodicCheckpoints(Checkpointer(store, signer, _now), INTERVAL)
    periodic.start()
    try:
        assert periodic.running
        _wait_for(lambda: store.latest_checkpoint() is not None, "the first checkpoint")
        _append(store, 2)
        _wait_for(lambda: getattr(store.latest_checkpoint(), "size", 0) == 5, "the next one")
    finally:
        periodic.stop()
    latest = store.latest_checkpoint()
    assert latest is not None
    assert open_checkpoint(latest.note, signer.verifier_key).root == store.root(5)


def test_an_idle_ledger_gets_no_new_checkpoints(store: LedgerStore, signer: SignerKey) -> None:
    _append(store)
    checkpointer = FlakyCheckpointer(store, signer)
    periodic = PeriodicCheckpoints(checkpointer, INTERVAL)
    periodic.start()
    try:
        _wait_for(lambda: checkpointer.attempts >= 5, "five ticks")
    finally:
        periodic.stop()
    assert [c.size for c in store.checkpoints()] == [1]


def test_failures_are_logged_and_the_next_tick_tries_again(
    store: LedgerStore, signer: SignerKey
) -> None:
    _append(store)
    errors: list[Exception] = [
        LedgerStorageFull("ledger storage is full (disk full)", operation="checkpoint"),
        RuntimeError("unexpected"),
        CheckpointRefused("the ledger does not extend the checkpoint", size=1),
    ]
    checkpointer = FlakyCheckpointer(store, signer, errors)
    periodic = PeriodicCheckpoints(checkpointer, INTERVAL)
    with structlog.testing.capture_logs() as logs:
        periodic.start()
        try:
            _wait_for(lambda: store.latest_checkpoint() is not None, "a checkpoint after errors")
            assert periodic.running
        finally:
            periodic.stop()
    events = [(e["event"], e["log_level"]) for e in logs if e["event"].startswith("checkpoint.")]
    assert events[:3] == [
        ("checkpoint.failed", "warning"),
        ("checkpoint.failed", "error"),
        ("checkpoint.refused", "error"),
    ]
    full = next(e for e in logs if e.get("error") == "LedgerStorageFull")
    assert "storage is full" in full["detail"]


def test_run_once_returns_none_on_failure_and_never_raises(
    store: LedgerStore, signer: SignerKey
) -> None:
    checkpointer = FlakyCheckpointer(store, signer, [RuntimeError("boom")])
    periodic = PeriodicCheckpoints(checkpointer, 1.0)
    assert periodic.run_once() is None
    stored = periodic.run_once()
    assert stored is not None
    assert stored.size == 0


def test_stop_ends_the_thread_and_no_tick_follows(store: LedgerStore, signer: SignerKey) -> None:
    checkpointer = FlakyCheckpointer(store, signer)
    periodic = PeriodicCheckpoints(checkpointer, INTERVAL)
    periodic.start()
    _wait_for(lambda: checkpointer.attempts >= 1, "one tick")
    periodic.stop()
    assert not periodic.running
    attempts = checkpointer.attempts
    time.sleep(INTERVAL * 5)
    assert checkpointer.attempts == attempts
    periodic.stop()  # idempotent


def test_interval_zero_starts_nothing(store: LedgerStore, signer: SignerKey) -> None:
    checkpointer = FlakyCheckpointer(store, signer)
    periodic = PeriodicCheckpoints(checkpointer, 0)
    periodic.start()
    assert not periodic.running
    time.sleep(INTERVAL * 3)
    assert checkpointer.attempts == 0
    periodic.stop()


def test_a_negative_interval_is_refused(store: LedgerStore, signer: SignerKey) -> None:
    with pytest.raises(ValueError, match="negative"):
        PeriodicCheckpoints(Checkpointer(store, signer, _now), -1)


def _settings(**values: Any) -> Settings:
    return Settings(catalog_dir=Path("c"), keys_file=Path("k"), **values)


def test_settings_default_to_a_minute_and_refuse_a_negative_or_infinite_interval() -> None:
    assert _settings().checkpoint_interval_s == 60
    assert _settings().ledger_key_file is None
    assert _settings(checkpoint_interval_s=0).checkpoint_interval_s == 0
    for bad in (-1, float("inf"), float("nan")):
        with pytest.raises(ValidationError, match="checkpoint_interval_s"):
            _settings(checkpoint_interval_s=bad)


def test_a_rotated_signer_extends_the_tree_the_old_key_signed(store: LedgerStore) -> None:
    """docs/deployment.md: a new key (same origin) signs on from the last old checkpoint."""
    old_key, new_key = SignerKey.generate(ORIGIN), SignerKey.generate(ORIGIN)
    _append(store, 3)
    before = Checkpointer(store, old_key, _now).checkpoint()
    _append(store, 2)
    after = Checkpointer(store, new_key, _now).checkpoint()
    assert (before.size, after.size) == (3, 5)
    old_view = open_checkpoint(before.note, old_key.verifier_key)
    new_view = open_checkpoint(after.note, new_key.verifier_key)
    assert (old_view.size, new_view.size) == (3, 5)
    with pytest.raises(UnverifiedNote):  # each verifier key opens only its own checkpoints
        open_checkpoint(after.note, old_key.verifier_key)
