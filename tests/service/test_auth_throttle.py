"""Auth-failure throttling: per client, a sliding window, an exact Retry-After, bounded memory."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from service.auth_throttle import AuthFailureThrottle
from service.errors import TooManyAuthFailures

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _throttled(throttle: AuthFailureThrottle, client: str, seconds: float) -> TooManyAuthFailures:
    with pytest.raises(TooManyAuthFailures) as caught:
        throttle.check(client, _at(seconds))
    return caught.value


def test_the_limit_th_failure_throttles_until_the_oldest_leaves_the_window() -> None:
    throttle = AuthFailureThrottle(limit=5, window_s=60)
    for second in range(5):
        throttle.check("a", _at(second * 10))
        throttle.record_failure("a", _at(second * 10))  # at 0, 10, 20, 30, 40
    refused = _throttled(throttle, "a", 40.5)
    assert refused.retry_after_s == 20  # the failure at 0 leaves the window at 60
    assert (refused.failures, refused.window_s, refused.client) == (5, 60, "a")
    assert _throttled(throttle, "a", 59.9).retry_after_s == 1  # at least 1, rounded up
    throttle.check("a", _at(60))  # four failures left in the window: allowed again


def test_refused_attempts_do_not_extend_the_block() -> None:
    throttle = AuthFailureThrottle(limit=2, window_s=10)
    throttle.record_failure("a", _at(0))
    throttle.record_failure("a", _at(1))
    for second in range(2, 10):
        _throttled(throttle, "a", second)
    throttle.check("a", _at(10))


def test_other_clients_are_unaffected() -> None:
    throttle = AuthFailureThrottle(limit=3, window_s=60)
    for _ in range(3):
        throttle.record_failure("10.0.0.1", _at(0))
    _throttled(throttle, "10.0.0.1", 1)
    throttle.check("10.0.0.2", _at(1))
    throttle.record_failure("10.0.0.2", _at(1))
    throttle.check("10.0.0.2", _at(1))


def test_failures_spread_wider_than_the_window_never_throttle() -> None:
    throttle = AuthFailureThrottle(limit=3, window_s=60)
    for n in range(100):
        throttle.check("a", _at(n * 30))
        throttle.record_failure("a", _at(n * 30))  # two per window at most


def test_memory_is_bounded_forgetting_the_longest_idle_client() -> None:
    throttle = AuthFailureThrottle(limit=2, window_s=60, max_clients=3)
    for n, client in enumerate(["a", "b", "c"]):
        throttle.record_failure(client, _at(n))
        throttle.record_failure(client, _at(n))
    throttle.record_failure("a", _at(5))  # a is now the most recent
    throttle.record_failure("d", _at(6))  # b goes
    assert throttle.tracked_clients() == 3
    throttle.check("b", _at(7))
    _throttled(throttle, "a", 7)
    _throttled(throttle, "c", 7)
    for n in range(1000):
        throttle.record_failure(f"10.1.{n // 256}.{n % 256}", _at(8))
    assert throttle.tracked_clients() == 3


def test_a_client_whose_failures_all_expired_is_forgotten_on_check() -> None:
    throttle = AuthFailureThrottle(limit=2, window_s=60)
    throttle.record_failure("a", _at(0))
    throttle.check("a", _at(61))
    assert throttle.tracked_clients() == 0


def test_concurrent_failures_are_all_counted() -> None:
    throttle = AuthFailureThrottle(limit=4_000, window_s=60, max_clients=100)
    barrier = threading.Barrier(8)

    def fail_many(n: int) -> None:
        barrier.wait()
        for _ in range(500):
            throttle.record_failure("c", _at(0))
            throttle.record_failure(f"other-{n}", _at(0))

    threads = [threading.Thread(target=fail_many, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert _throttled(throttle, "c", 1).failures == 4_000  # 8 x 500, none lost
    assert throttle.tracked_clients() == 9


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"limit": 0}, id="limit"),
        pytest.param({"window_s": 0}, id="window"),
        pytest.param({"window_s": float("nan")}, id="nan-window"),
        pytest.param({"max_clients": 0}, id="capacity"),
    ],
)
def test_settings_that_cannot_work_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="positive"):
        AuthFailureThrottle(**kwargs)  # type: ignore[arg-type]
