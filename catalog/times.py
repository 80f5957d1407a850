"""Time text of FORMATS section 1: RFC 3339 UTC with microseconds and ``Z``."""

from __future__ import annotations

from datetime import UTC, datetime

TIME_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def format_time(moment: datetime) -> str:
    """Format ``moment`` as FORMATS time text, e.g. ``2026-11-23T09:15:02.123456Z``.

    Raises ``ValueError`` for a naive datetime: its zone would be a guess.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("a naive datetime has no zone; pass an aware one")
    return moment.astimezone(UTC).strftime(TIME_FORMAT)
