"""packet.json's claim: the checked-in JSON Schema and the verifier's model judge it alike.

A verifier written from ``schemas/packet.schema.json`` alone must accept every claim
govex writes and refuse what govex's own verifier refuses, with one stated exception
(``min_rows <= max_rows``, which JSON Schema cannot compare).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from pydantic import ValidationError

from catalog.model import Claim as CatalogClaim
from catalog.model import RowBound
from service.claims import RunFacts, judge_claim
from service.packets.manifest import Claim
from service.run_sql import BOUNDARY_SQLITE
from service.verdicts import Verdict

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[3] / "schemas" / "packet.schema.json").read_text()
)
CLAIM_SCHEMA = Draft202012Validator(
    {"$defs": SCHEMA["$defs"], "$ref": "#/$defs/Claim"},
    format_checker=Draft202012Validator.FORMAT_CHECKER,
)
BOUND = {"min_rows": None, "max_rows": 5}


def _model_accepts(claim: dict[str, Any]) -> bool:
    try:
        Claim.model_validate_json(json.dumps(claim), strict=True)
    except ValidationError:
        return False
    return True


def _judged() -> list[dict[str, Any]]:
    """A claim of each shape judged by each kind of run: what govex writes."""
    claims = [
        CatalogClaim(expect="empty", surface="exhaustive"),
        CatalogClaim(expect="empty", surface="scoped"),
        CatalogClaim(expect=RowBound(max_rows=5), surface="exhaustive"),
        CatalogClaim(expect=RowBound(min_rows=2), surface="exhaustive"),
        CatalogClaim(expect=RowBound(min_rows=2, max_rows=5), surface="scoped"),
    ]
    runs = [
        RunFacts(Verdict.ran_clean, rows, complete, "sqlite", BOUNDARY_SQLITE)
        for rows in (0, 1, 3, 9)
        for complete in (True, False)
    ] + [
        RunFacts(Verdict.timed_out, None, complete=False, engine="sqlite", controls=()),
        RunFacts(Verdict.error_running, None, complete=False, engine="postgresql", controls=()),
        RunFacts(Verdict.ran_clean, 0, complete=True, engine="postgresql", controls=()),
    ]
    return [judge_claim(c, r).model_dump(mode="json") for c in claims for r in runs]


def test_every_claim_govex_writes_is_valid_against_the_schema() -> None:
    judged = _judged()
    assert {(c["verdict"], c["reason"]) for c in judged} >= {
        ("ABSENT", None),
        ("EVIDENCE_PRESENT", None),
        ("NOT_EVIDENCED", "bound_exceeded"),
        ("NOT_EVIDENCED", "bound_not_met"),
        ("NOT_EVIDENCED", "scoped_surface"),
        ("NOT_EVIDENCED", "truncated"),
        ("NOT_EVIDENCED", "timed_out"),
        ("NOT_EVIDENCED", "error"),
        ("NOT_EVIDENCED", "row_security"),
    }
    for claim in judged:
        assert list(CLAIM_SCHEMA.iter_errors(claim)) == [], claim
        assert _model_accepts(claim), claim


def _claim(**changes: Any) -> dict[str, Any]:
    claim: dict[str, Any] = {
        "expect": "empty",
        "surface": "exhaustive",
        "verdict": "ABSENT",
        "reason": None,
    }
    claim.update(changes)
    return {key: value for key, value in claim.items() if value != "<left out>"}


REFUSED = [
    pytest.param(_claim(reason="truncated"), id="reason-with-absent"),
    pytest.param(_claim(verdict="NOT_EVIDENCED"), id="not-evidenced-without-reason"),
    pytest.param(_claim(reason="<left out>"), id="reason-key-left-out"),
    pytest.param(_claim(verdict="NOT_EVIDENCED", reason="slow"), id="unknown-reason"),
    pytest.param(_claim(verdict="PRESENT"), id="unknown-verdict"),
    pytest.param(_claim(surface="partial"), id="unknown-surface"),
    pytest.param(_claim(expect="absent"), id="expect-absent-never-shipped"),
    pytest.param(_claim(expect=BOUND, verdict="EVIDENCE_PRESENT"), id="evidence-with-a-bound"),
    pytest.param(
        _claim(verdict="NOT_EVIDENCED", reason="bound_not_met"), id="bound-reason-with-empty"
    ),
    pytest.param(_claim(expect={"max_rows": 5}), id="bound-key-left-out"),
    pytest.param(_claim(expect={"min_rows": None, "max_rows": None}), id="bound-of-nothing"),
    pytest.param(_claim(expect={"min_rows": 0, "max_rows": 5}), id="bound-of-zero"),
    pytest.param(_claim(expect={"min_rows": 1, "max_rows": "5"}), id="bound-as-text"),
    pytest.param(_claim(expect={**BOUND, "rows": 1}), id="bound-extra-key"),
    pytest.param(_claim(note="x"), id="claim-extra-key"),
]


@pytest.mark.parametrize("claim", REFUSED)
def test_the_schema_and_the_verifier_refuse_the_same_claims(claim: dict[str, Any]) -> None:
    assert list(CLAIM_SCHEMA.iter_errors(claim)) != []
    assert not _model_accepts(claim)


def test_the_one_rule_only_the_verifier_states_is_min_rows_at_most_max_rows() -> None:
    claim = _claim(expect={"min_rows": 6, "max_rows": 5})
    assert list(CLAIM_SCHEMA.iter_errors(claim)) == []  # JSON Schema compares no two values
    assert not _model_accepts(claim)
