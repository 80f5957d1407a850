"""Calls per hour by verdict, as a stacked bar chart drawn on the server (SVG, no script).

Pure: :func:`calls_per_hour` takes call records and a time, and returns the geometry
that ``templates/_chart.html`` draws, plus the same counts as a table (the chart's text
alternative). A call counts in the hour it was created (UTC), under its verdict, or
``in progress`` while it has none, or ``no verdict`` when it ended without one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from ledger.entry import parse_ts
from service.verdicts import Verdict

if TYPE_CHECKING:
    from collections.abc import Iterable

    from service.call_index import CallRecord

IN_PROGRESS = "in_progress"
NO_VERDICT = "no_verdict"
CATEGORIES = (*(v.value for v in Verdict), IN_PROGRESS, NO_VERDICT)
WIDTH, HEIGHT = 720, 260
_LEFT, _RIGHT, _TOP, _BOTTOM = 48, 12, 14, 40
_LABEL_EVERY = 3  # hours between x-axis labels


@dataclass(frozen=True)
class Segment:
    category: str
    count: int
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Bar:
    label: str  # "2026-07-01 14:00 UTC"
    short: str  # "14:00", or "" where no label is drawn
    x_label: float
    total: int
    counts: tuple[int, ...]  # by CATEGORIES
    segments: tuple[Segment, ...]


@dataclass(frozen=True)
class Tick:
    value: int
    y: float


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    hours: int
    total: int
    bars: tuple[Bar, ...]
    ticks: tuple[Tick, ...]
    categories: tuple[str, ...]
    used: tuple[str, ...]  # categories with at least one call (the legend)
    plot_left: int
    plot_right: int
    baseline: float
    truncated: bool  # more calls than were read


def category(record: CallRecord) -> str:
    """The bar segment a call counts in."""
    if record.verdict:
        return record.verdict
    return NO_VERDICT if record.done else IN_PROGRESS


def calls_per_hour(
    records: Iterable[CallRecord], *, now: datetime, hours: int, truncated: bool = False
) -> Chart:
    """The chart of the ``hours`` hours up to ``now`` (the current hour last)."""
    end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    start = end - timedelta(hours=hours)
    counts = [[0] * len(CATEGORIES) for _ in range(hours)]
    for record in records:
        created = parse_ts(record.created_at)
        if not start <= created < end:
            continue
        slot = int((created - start).total_seconds() // 3600)
        counts[slot][CATEGORIES.index(category(record))] += 1
    top = _nice_ceiling(max((sum(c) for c in counts), default=0))
    plot_width = WIDTH - _LEFT - _RIGHT
    plot_height = HEIGHT - _TOP - _BOTTOM
    baseline = float(_TOP + plot_height)
    step = plot_width / hours
    bars = []
    for i, row in enumerate(counts):
        hour = start + timedelta(hours=i)
        x = _LEFT + i * step + step * 0.15
        y = baseline
        segments = []
        for name, n in zip(CATEGORIES, row, strict=True):
            if n == 0:
                continue
            height = plot_height * n / top
            y -= height
            segments.append(
                Segment(name, n, round(x, 2), round(y, 2), round(step * 0.7, 2), round(height, 2))
            )
        bars.append(
            Bar(
                label=hour.strftime("%Y-%m-%d %H:00 UTC"),
                short=hour.strftime("%H:00") if (hours - 1 - i) % _LABEL_EVERY == 0 else "",
                x_label=round(_LEFT + i * step + step / 2, 2),
                total=sum(row),
                counts=tuple(row),
                segments=tuple(segments),
            )
        )
    ticks = tuple(
        Tick(value, round(baseline - plot_height * value / top, 2))
        for value in sorted({0, top // 2, top})
    )
    used = tuple(c for j, c in enumerate(CATEGORIES) if any(row[j] for row in counts))
    return Chart(
        width=WIDTH,
        height=HEIGHT,
        hours=hours,
        total=sum(sum(row) for row in counts),
        bars=tuple(bars),
        ticks=ticks,
        categories=CATEGORIES,
        used=used,
        plot_left=_LEFT,
        plot_right=WIDTH - _RIGHT,
        baseline=baseline,
        truncated=truncated,
    )


def _nice_ceiling(value: int) -> int:
    """The smallest of 2, 4, 10, 20, 40, 100, ... at least ``value``: even, so its half is whole."""
    if value <= 2:  # noqa: PLR2004 - the smallest scale
        return 2
    power = int(10 ** math.floor(math.log10(value)))
    for factor in (1, 2, 4, 10):
        if value <= factor * power and (factor * power) % 2 == 0:
            return factor * power
    return 10 * power  # pragma: no cover - 10 * power is always at least value
