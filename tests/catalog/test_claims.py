"""A claim's shape in catalog.toml: "empty" or a row-count bound, refused with one clear message."""

from __future__ import annotations

import pytest

from catalog.errors import CatalogErrors, CatalogLoadError
from catalog.load import parse_catalog
from catalog.model import Claim, QueryEntry, ResolvedCatalog, RowBound
from catalog.seal import entry_digest

HEADER = '[catalog]\nname = "c"\nversion = "1"\n\n[sources.demo]\nengine = "sqlite"\n\n'


def _toml(claim: str, *, max_rows: int = 1000) -> str:
    return HEADER + (
        f'[[query]]\nid = "q"\ntitle = "Q"\nsource = "demo"\nsql = "q.sql"\n'
        f"max_rows = {max_rows}\nclaim = {claim}\n"
    )


def _load(claim: str) -> ResolvedCatalog:
    return parse_catalog(_toml(claim), lambda _path: b"SELECT 1 AS x ORDER BY 1\n")


def _problems(claim: str) -> list[tuple[str | None, str]]:
    with pytest.raises((CatalogLoadError, CatalogErrors)) as caught:
        _load(claim)
    errors = caught.value.errors if isinstance(caught.value, CatalogErrors) else [caught.value]
    return [(e.key, e.detail) for e in errors if isinstance(e, CatalogLoadError)]


@pytest.mark.parametrize(
    ("claim", "expect"),
    [
        pytest.param('{ expect = "empty", surface = "exhaustive" }', "empty", id="empty"),
        pytest.param(
            '{ expect = { max_rows = 10 }, surface = "exhaustive" }',
            RowBound(max_rows=10),
            id="at-most",
        ),
        pytest.param(
            '{ expect = { min_rows = 1 }, surface = "scoped" }', RowBound(min_rows=1), id="at-least"
        ),
        pytest.param(
            '{ expect = { min_rows = 2, max_rows = 2 }, surface = "exhaustive" }',
            RowBound(min_rows=2, max_rows=2),
            id="exactly",
        ),
    ],
)
def test_claim_shapes_load(claim: str, expect: object) -> None:
    entry = _load(claim).entry("q")
    assert isinstance(entry, QueryEntry)
    assert entry.claim is not None
    assert entry.claim.expect == expect


@pytest.mark.parametrize(
    ("claim", "key", "detail"),
    [
        pytest.param(
            '{ expect = "absent", surface = "exhaustive" }',
            "claim.expect",
            'expect is "empty" or a row-count bound such as { max_rows = 10 }',
            id="old-absent",
        ),
        pytest.param(
            '{ expect = 3, surface = "exhaustive" }',
            "claim.expect",
            'expect is "empty" or a row-count bound such as { max_rows = 10 }',
            id="a-number",
        ),
        pytest.param(
            '{ expect = {}, surface = "exhaustive" }',
            "claim.expect",
            "a row bound names min_rows, max_rows or both",
            id="no-bound",
        ),
        pytest.param(
            '{ expect = { max_rows = 0 }, surface = "exhaustive" }',
            "claim.expect",
            'max_rows = 0 is the claim expect = "empty": write that instead',
            id="max-zero",
        ),
        pytest.param(
            '{ expect = { min_rows = 0 }, surface = "exhaustive" }',
            "claim.expect",
            "min_rows = 0 claims nothing: leave it out",
            id="min-zero",
        ),
        pytest.param(
            '{ expect = { max_rows = -3 }, surface = "exhaustive" }',
            "claim.expect",
            "max_rows must be a positive row count, not -3",
            id="negative",
        ),
        pytest.param(
            '{ expect = { min_rows = 5, max_rows = 2 }, surface = "exhaustive" }',
            "claim.expect",
            "min_rows (5) is above max_rows (2)",
            id="inverted",
        ),
        pytest.param(
            '{ expect = { rows = 2 }, surface = "exhaustive" }',
            "claim.expect",
            "rows: unknown key (a bound takes min_rows and max_rows)",
            id="unknown-key",
        ),
        pytest.param(
            '{ expect = { max_rows = "2" }, surface = "exhaustive" }',
            "claim.expect",
            "max_rows: Input should be a valid integer",
            id="string-count",
        ),
        pytest.param(
            '{ expect = { max_rows = 1000 }, surface = "exhaustive" }',
            "claim.expect.max_rows",
            "must be below the entry's max_rows (1000): a result cut at that limit proves no count",
            id="bound-at-the-row-limit",
        ),
        pytest.param(
            '{ expect = { min_rows = 1001 }, surface = "exhaustive" }',
            "claim.expect.min_rows",
            "must be at most the entry's max_rows (1000)",
            id="min-above-the-row-limit",
        ),
        pytest.param(
            '{ expect = "empty", surface = "everything" }',
            "claim.surface",
            "Input should be 'exhaustive' or 'scoped'",
            id="surface",
        ),
    ],
)
def test_bad_claims_are_refused_with_the_key_named(claim: str, key: str, detail: str) -> None:
    problems = _problems(claim)
    assert len(problems) == 1, problems
    found_key, found_detail = problems[0]
    assert found_key == key
    assert found_detail.startswith(detail), found_detail


def test_the_claim_is_in_the_entry_digest() -> None:
    at_most_10 = _load('{ expect = { max_rows = 10 }, surface = "exhaustive" }')
    at_most_11 = _load('{ expect = { max_rows = 11 }, surface = "exhaustive" }')
    empty = _load('{ expect = "empty", surface = "exhaustive" }')
    digests = {entry_digest(c.entry("q")) for c in (at_most_10, at_most_11, empty)}
    assert len(digests) == 3
    dumped = at_most_10.entry("q").model_dump(mode="json")["claim"]
    assert dumped == {"expect": {"min_rows": None, "max_rows": 10}, "surface": "exhaustive"}


def test_a_query_entry_refuses_a_bound_its_row_limit_cannot_prove() -> None:
    with pytest.raises(ValueError, match=r"claim\.expect\.max_rows must be below"):
        QueryEntry(
            id="q", title="Q", source="s", engine="sqlite", sql_file="q.sql", sql="SELECT 1",
            max_rows=10, claim=Claim(expect=RowBound(max_rows=10), surface="exhaustive"),
        )  # fmt: skip
