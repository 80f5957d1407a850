"""The calls-per-hour chart (service.console.chart): counts by hour and verdict; its geometry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ledger.entry import format_ts
from service.call_index import CallRecord
from service.console.chart import CATEGORIES, HEIGHT, IN_PROGRESS, NO_VERDICT, calls_per_hour

NOW = datetime(2026, 7, 1, 14, 30, tzinfo=UTC)


def _call(minutes_ago: int, verdict: str | None, state: str = "completed") -> CallRecord:
    created = format_ts(NOW - timedelta(minutes=minutes_ago))
    return CallRecord(
        call_id=f"c{minutes_ago}",
        entry_id="a.b",
        principal="p",
        mode="run",
        state=state,
        verdict=verdict,
        started_seq=1,
        finished_seq=None,
        packet_id=None,
        packet_seq=None,
        manifest_sha256=None,
        manifest_blake3=None,
        rows=None,
        bytes=None,
        created_at=created,
        finished_at=None,
    )


def test_calls_count_in_their_hour_under_their_verdict() -> None:
    calls = [
        _call(5, "ran_clean"),
        _call(10, "ran_clean"),
        _call(20, "blocked"),
        _call(65, "timed_out"),
        _call(1, None, state="running"),
        _call(2, None, state="failed"),
        _call(60 * 30, "ran_clean"),  # outside the 24 hours: not counted
    ]
    chart = calls_per_hour(calls, now=NOW, hours=24)
    assert len(chart.bars) == 24
    last, before = chart.bars[-1], chart.bars[-2]
    assert last.label == "2026-07-01 14:00 UTC"
    assert dict(zip(CATEGORIES, last.counts, strict=True)) == {
        **dict.fromkeys(CATEGORIES, 0),
        "ran_clean": 2,
        "blocked": 1,
        IN_PROGRESS: 1,
        NO_VERDICT: 1,
    }
    assert before.counts[CATEGORIES.index("timed_out")] == 1
    assert chart.total == 6
    assert set(chart.used) == {"ran_clean", "blocked", "timed_out", IN_PROGRESS, NO_VERDICT}


def test_a_bars_segments_stack_from_the_baseline_to_its_total() -> None:
    chart = calls_per_hour(
        [_call(1, "ran_clean"), _call(2, "ran_clean"), _call(3, "blocked")], now=NOW, hours=6
    )
    bar = chart.bars[-1]
    assert [s.category for s in bar.segments] == ["ran_clean", "blocked"]
    bottom = bar.segments[0].y + bar.segments[0].height
    assert bottom == pytest.approx(chart.baseline)
    assert bar.segments[1].y + bar.segments[1].height == pytest.approx(bar.segments[0].y)
    top_tick = max(chart.ticks, key=lambda t: t.value)
    assert top_tick.value >= bar.total
    assert all(0 <= s.y <= HEIGHT for s in bar.segments)


@pytest.mark.parametrize(
    ("count", "scale"),
    [
        pytest.param(0, 2, id="empty"),
        pytest.param(3, 4, id="three"),
        pytest.param(7, 10, id="seven"),
        pytest.param(11, 20, id="eleven"),
        pytest.param(101, 200, id="a-hundred-and-one"),
    ],
)
def test_the_scale_is_a_round_even_number_above_the_tallest_bar(count: int, scale: int) -> None:
    chart = calls_per_hour([_call(1, "ran_clean") for _ in range(count)], now=NOW, hours=2)
    assert max(t.value for t in chart.ticks) == scale
    assert [t.value for t in chart.ticks] == sorted({0, scale // 2, scale})
