"""Verdicts and their CLI exit codes (FORMATS section 6)."""

from __future__ import annotations

from enum import StrEnum


class Verdict(StrEnum):
    ran_clean = "ran_clean"
    ran_with_drift = "ran_with_drift"
    error_running = "error_running"
    timed_out = "timed_out"
    blocked = "blocked"

    @property
    def exit_code(self) -> int:
        return _EXIT_CODES[self]


_EXIT_CODES = {
    Verdict.ran_clean: 0,
    Verdict.ran_with_drift: 1,
    Verdict.error_running: 2,
    Verdict.timed_out: 3,
    Verdict.blocked: 4,
}
