"""FORMATS section 1 time text."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from catalog.times import TIME_PATTERN, format_time


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        pytest.param(
            datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "2026-01-02T03:04:05.000000Z", id="utc"
        ),
        pytest.param(
            datetime(2026, 1, 2, 3, 4, 5, 7, tzinfo=timezone(timedelta(hours=2))),
            "2026-01-02T01:04:05.000007Z",
            id="offset-converted-to-utc",
        ),
    ],
)
def test_time_text_is_utc_with_microseconds_and_z(moment: datetime, text: str) -> None:
    assert format_time(moment) == text
    assert re.fullmatch(TIME_PATTERN, text)


def test_a_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        format_time(datetime(2026, 1, 2))  # noqa: DTZ001 - the naive datetime is the point
