"""How a run judges its claim: every verdict and every reason, each rule in its order."""

from __future__ import annotations

from typing import get_args

import pytest

from catalog.model import Claim, RowBound
from service.claims import REASONS, RunFacts, is_snapshot, judge_claim
from service.packets.manifest import ClaimReason
from service.run_postgres import BOUNDARY_POSTGRES, BOUNDARY_POSTGRES_EXHAUSTIVE
from service.run_sql import BOUNDARY_SQLITE
from service.verdicts import Verdict

EMPTY = Claim(expect="empty", surface="exhaustive")
EMPTY_SCOPED = Claim(expect="empty", surface="scoped")
AT_MOST_5 = Claim(expect=RowBound(max_rows=5), surface="exhaustive")
AT_LEAST_2 = Claim(expect=RowBound(min_rows=2), surface="exhaustive")
TWO_TO_5 = Claim(expect=RowBound(min_rows=2, max_rows=5), surface="exhaustive")
TWO_TO_5_SCOPED = Claim(expect=RowBound(min_rows=2, max_rows=5), surface="scoped")


def sqlite(
    rows: int | None, *, complete: bool = True, verdict: Verdict = Verdict.ran_clean
) -> RunFacts:
    return RunFacts(
        verdict=verdict, rows=rows, complete=complete, engine="sqlite", controls=BOUNDARY_SQLITE
    )


def postgres(
    rows: int | None,
    *,
    controls: tuple[str, ...] = BOUNDARY_POSTGRES_EXHAUSTIVE,
    verdict: Verdict = Verdict.ran_clean,
    row_security: bool = False,
) -> RunFacts:
    return RunFacts(
        verdict=verdict,
        rows=rows,
        complete=True,
        engine="postgresql",
        controls=controls,
        row_security=row_security,
    )


CASES = [
    # ABSENT: a proving run, nothing the claim rules out
    pytest.param(EMPTY, sqlite(0), "ABSENT", None, id="empty-sqlite-absent"),
    pytest.param(EMPTY, postgres(0), "ABSENT", None, id="empty-postgres-absent"),
    pytest.param(AT_MOST_5, sqlite(5), "ABSENT", None, id="max-bound-at-its-limit"),
    pytest.param(AT_MOST_5, sqlite(0), "ABSENT", None, id="max-bound-zero-rows"),
    pytest.param(AT_LEAST_2, sqlite(2), "ABSENT", None, id="min-bound-at-its-limit"),
    pytest.param(TWO_TO_5, postgres(3), "ABSENT", None, id="both-bounds-inside"),
    # EVIDENCE_PRESENT: rows in hand, whatever else
    pytest.param(EMPTY, sqlite(1), "EVIDENCE_PRESENT", None, id="empty-with-a-row"),
    pytest.param(EMPTY_SCOPED, sqlite(3), "EVIDENCE_PRESENT", None, id="scoped-rows-are-evidence"),
    pytest.param(
        EMPTY, sqlite(10, complete=False), "EVIDENCE_PRESENT", None, id="truncated-rows-evidence"
    ),
    pytest.param(
        EMPTY, postgres(4, controls=BOUNDARY_POSTGRES), "EVIDENCE_PRESENT", None,
        id="rows-without-snapshot-are-evidence",
    ),
    # NOT_EVIDENCED, each reason
    pytest.param(
        EMPTY, sqlite(None, verdict=Verdict.timed_out), "NOT_EVIDENCED", "timed_out",
        id="timed-out",
    ),
    pytest.param(
        EMPTY, postgres(None, verdict=Verdict.error_running, row_security=True),
        "NOT_EVIDENCED", "row_security", id="row-security-refused",
    ),
    pytest.param(
        EMPTY, sqlite(None, verdict=Verdict.error_running), "NOT_EVIDENCED", "error",
        id="error-running",
    ),
    pytest.param(EMPTY, sqlite(None), "NOT_EVIDENCED", "error", id="clean-but-no-packet-issued"),
    pytest.param(AT_MOST_5, sqlite(6), "NOT_EVIDENCED", "bound_exceeded", id="bound-exceeded"),
    pytest.param(
        TWO_TO_5_SCOPED, sqlite(9), "NOT_EVIDENCED", "bound_exceeded",
        id="bound-exceeded-seen-on-a-scoped-surface",
    ),
    pytest.param(
        AT_MOST_5, sqlite(6, complete=False), "NOT_EVIDENCED", "bound_exceeded",
        id="bound-exceeded-seen-before-the-cut",
    ),
    pytest.param(EMPTY_SCOPED, sqlite(0), "NOT_EVIDENCED", "scoped_surface", id="scoped-silence"),
    pytest.param(
        TWO_TO_5_SCOPED, sqlite(3), "NOT_EVIDENCED", "scoped_surface", id="scoped-bound"
    ),
    pytest.param(EMPTY, sqlite(0, complete=False), "NOT_EVIDENCED", "truncated", id="byte-cut"),
    pytest.param(
        AT_LEAST_2, sqlite(3, complete=False), "NOT_EVIDENCED", "truncated", id="min-bound-cut"
    ),
    pytest.param(
        EMPTY, postgres(0, controls=(*BOUNDARY_POSTGRES, "serializable_deferrable")),
        "NOT_EVIDENCED", "row_security", id="postgres-without-row-security-off",
    ),
    pytest.param(
        EMPTY, postgres(0, controls=(*BOUNDARY_POSTGRES, "row_security_off")),
        "NOT_EVIDENCED", "no_snapshot", id="postgres-not-serializable",
    ),
    pytest.param(
        EMPTY,
        RunFacts(
            verdict=Verdict.ran_clean, rows=0, complete=True, engine="sqlite",
            controls=tuple(c for c in BOUNDARY_SQLITE if c != "read_transaction"),
        ),
        "NOT_EVIDENCED", "no_snapshot", id="sqlite-without-one-transaction",
    ),
    pytest.param(AT_LEAST_2, sqlite(1), "NOT_EVIDENCED", "bound_not_met", id="bound-not-met"),
    pytest.param(TWO_TO_5, postgres(0), "NOT_EVIDENCED", "bound_not_met", id="bound-zero-rows"),
]  # fmt: skip


@pytest.mark.parametrize(("claim", "facts", "verdict", "reason"), CASES)
def test_each_verdict_and_reason(
    claim: Claim, facts: RunFacts, verdict: str, reason: str | None
) -> None:
    judged = judge_claim(claim, facts)
    assert (judged.verdict, judged.reason) == (verdict, reason)
    recorded = judged.model_dump(mode="json")
    assert (recorded["expect"], recorded["surface"]) == (
        claim.model_dump(mode="json")["expect"],
        claim.surface,
    )  # a bound is recorded with both keys, as the catalog's resolved entry holds it


def test_every_reason_is_reachable() -> None:
    reasons = {case.values[3] for case in CASES} - {None}
    assert reasons == {
        "scoped_surface", "truncated", "timed_out", "row_security", "error", "no_snapshot",
        "bound_exceeded", "bound_not_met",
    }  # fmt: skip


def test_the_rules_emit_exactly_the_reasons_packet_json_allows() -> None:
    assert set(get_args(ClaimReason)) == REASONS


@pytest.mark.parametrize(
    ("engine", "controls", "expected"),
    [
        pytest.param("sqlite", BOUNDARY_SQLITE, True, id="sqlite-read-transaction"),
        pytest.param("postgresql", BOUNDARY_POSTGRES_EXHAUSTIVE, True, id="pg-serializable"),
        pytest.param("postgresql", BOUNDARY_POSTGRES, False, id="pg-read-committed"),
        pytest.param("command", ("no_shell",), False, id="command"),
        pytest.param("postgresql", ("serializable_deferrable",), False, id="pg-not-read-only"),
    ],
)
def test_what_counts_as_a_snapshot(
    engine: str, controls: tuple[str, ...], *, expected: bool
) -> None:
    assert is_snapshot(engine, controls) is expected
