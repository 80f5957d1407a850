"""The pure part of a replay: the judgement of one replayed call, and locating its difference."""

from __future__ import annotations

import io

import pytest

from catalog.digest import DigestSet, digest_bytes
from service.packets.manifest import Chunk
from service.packets.tables import write_table
from service.replay_compare import (
    REPORT_COLUMNS,
    Drift,
    FirstDifference,
    Outcome,
    ReplayLine,
    ResultFacts,
    attribute,
    first_difference,
    judge,
)

A = digest_bytes(b"a")
B = digest_bytes(b"b")


def _chunk(offset: int, size: int, first_row: int | None, rows: int | None, mark: str) -> Chunk:
    return Chunk(offset=offset, bytes=size, first_row=first_row, rows=rows, blake3=mark * 64)


def _facts(
    verdict: str = "ran_clean",
    digest: DigestSet | None = A,
    chunks: tuple[Chunk, ...] | None = (),
    version: str | None = "3.45.1",
    error: str | None = None,
) -> ResultFacts:
    return ResultFacts(verdict, digest, 10, chunks, version, error)


@pytest.mark.parametrize(
    ("recorded", "replayed", "outcome", "drift"),
    [
        pytest.param(_facts(), _facts(), Outcome.ran_clean, None, id="same-digest"),
        pytest.param(_facts(), _facts(digest=B), Outcome.ran_with_drift, Drift.data, id="data"),
        pytest.param(
            _facts(),
            _facts(digest=B, version="3.46.0"),
            Outcome.ran_with_drift,
            Drift.engine,
            id="engine-version-changed",
        ),
        pytest.param(
            _facts(version=None),
            _facts(digest=B, version="3.46.0"),
            Outcome.ran_with_drift,
            Drift.data,
            id="no-recorded-version-is-not-engine-drift",
        ),
        pytest.param(
            _facts(verdict="timed_out", digest=None),
            _facts(),
            Outcome.ran_with_drift,
            Drift.outcome,
            id="recorded-without-result",
        ),
        pytest.param(
            _facts(),
            _facts(verdict="error_running", digest=None, error="no such table"),
            Outcome.error_running,
            None,
            id="replay-failed",
        ),
        pytest.param(
            _facts(),
            _facts(verdict="timed_out", digest=None),
            Outcome.timed_out,
            None,
            id="replay-timed-out",
        ),
        pytest.param(
            _facts(),
            _facts(verdict="blocked", digest=None),
            Outcome.blocked,
            None,
            id="replay-blocked",
        ),
        pytest.param(
            _facts(),
            _facts(digest=None),
            Outcome.error_running,
            None,
            id="ran-but-no-result-file",
        ),
        pytest.param(
            _facts(digest=DigestSet(sha256=A.sha256, blake3=B.blake3)),
            _facts(),
            Outcome.ran_with_drift,
            Drift.data,
            id="one-algorithm-differs",
        ),
    ],
)
def test_judge(
    recorded: ResultFacts, replayed: ResultFacts, outcome: Outcome, drift: Drift | None
) -> None:
    judged = judge(recorded, replayed)
    assert (judged.outcome, judged.drift) == (outcome, drift)
    assert judged.reason


R0 = _chunk(0, 100, 0, 10, "a")
R1 = _chunk(100, 100, 10, 10, "b")
R2 = _chunk(200, 40, 20, 4, "c")


@pytest.mark.parametrize(
    ("recorded", "replayed", "expected"),
    [
        pytest.param((R0, R1, R2), (R0, R1, R2), None, id="equal"),
        pytest.param(
            (R0, R1, R2),
            (R0, _chunk(100, 100, 10, 10, "e"), R2),
            FirstDifference(1, 100, 100, 10, 10),
            id="middle-chunk",
        ),
        pytest.param(
            (R0, R1, R2),
            (R0, R1, _chunk(200, 60, 20, 6, "d")),
            FirstDifference(2, 200, 60, 20, 6),
            id="rows-appended-to-the-last",
        ),
        pytest.param(
            (R0, R1),
            (R0, R1, R2),
            FirstDifference(2, 200, 40, 20, 4),
            id="a-chunk-more",
        ),
        pytest.param(
            (R0, R1, R2),
            (R0, R1),
            FirstDifference(2, 200, 40, 20, 4),
            id="a-chunk-less",
        ),
        pytest.param(
            (_chunk(0, 20, None, 0, "f"),),
            (_chunk(0, 120, 0, 10, "0"),),
            FirstDifference(0, 0, 120, 0, 10),
            id="was-empty",
        ),
        pytest.param(
            (_chunk(0, 50, None, None, "a"),),
            (_chunk(0, 50, None, None, "b"),),
            FirstDifference(0, 0, 50, None, None),
            id="blob-no-rows",
        ),
    ],
)
def test_first_difference(
    recorded: tuple[Chunk, ...], replayed: tuple[Chunk, ...], expected: FirstDifference | None
) -> None:
    assert first_difference(recorded, replayed) == expected


def _table(values: list[int]) -> tuple[Chunk, ...]:
    written = write_table(
        io.BytesIO(),
        path="data/result.jsonl",
        fmt="jsonl",
        columns=("id", "v"),
        rows=[(i, v) for i, v in enumerate(values)],
        max_bytes=None,
        chunk_bytes=200,
    )
    return written.record.chunks


def test_the_first_difference_of_real_tables_holds_the_changed_row() -> None:
    values = list(range(100))
    recorded = _table(values)
    changed = [*values[:63], -1, *values[64:]]
    difference = first_difference(recorded, _table(changed))
    assert difference is not None
    assert difference.first_row is not None
    assert difference.rows is not None
    assert difference.first_row <= 63 < difference.first_row + difference.rows
    assert difference.chunk > 0


def test_attribute_needs_both_versions() -> None:
    assert attribute("15.4", "16.2") is Drift.engine
    assert attribute("15.4", "15.4") is Drift.data
    assert attribute(None, "16.2") is Drift.data


def test_a_report_line_has_a_value_per_column_in_order() -> None:
    line = ReplayLine(
        call_id="01JCALL",
        started_seq=3,
        finished_seq=None,
        entry_id="items.all",
        caller="alice",
        outcome=Outcome.interrupted,
        drift=None,
        reason="no call.finished",
        recorded_verdict=None,
        recorded_entry_sha256="a" * 64,
        sealed_entry_sha256=None,
        recorded_sha256=None,
        recorded_blake3=None,
        recorded_rows=None,
        recorded_engine_version=None,
    )
    row = line.row()
    assert len(row) == len(REPORT_COLUMNS)
    assert dict(zip(REPORT_COLUMNS, row, strict=True))["outcome"] == "interrupted"
