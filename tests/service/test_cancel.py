"""CancelToken.guard: rows stop within a bounded number once the token is cancelled."""

from __future__ import annotations

import pytest

from service.cancel import GUARD_EVERY, CallCancelled, CancelToken


def test_guard_passes_every_item_through_when_not_cancelled() -> None:
    token = CancelToken()
    assert list(token.guard(range(GUARD_EVERY * 3 + 5))) == list(range(GUARD_EVERY * 3 + 5))
    assert list(token.guard([])) == []


def test_guard_refuses_before_the_first_item_once_cancelled() -> None:
    token = CancelToken()
    token.cancel("by alice")
    rows = token.guard(range(10))
    with pytest.raises(CallCancelled, match="by alice"):
        next(rows)


def test_guard_stops_within_a_batch_of_the_cancel() -> None:
    token = CancelToken()
    seen: list[int] = []

    def read_all() -> None:
        for item in token.guard(range(GUARD_EVERY * 10)):
            seen.append(item)
            if item == 5:
                token.cancel("shutdown")

    with pytest.raises(CallCancelled, match="shutdown"):
        read_all()
    assert 5 < len(seen) <= GUARD_EVERY
