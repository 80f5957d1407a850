from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from ledger.canonical import jcs
from ledger.errors import CanonicalizationError

if TYPE_CHECKING:
    from pathlib import Path


def test_every_jcs_vector_gives_its_exact_bytes(vectors_dir: Path) -> None:
    testdata = vectors_dir / "jcs" / "testdata"
    names = sorted(path.name for path in (testdata / "input").glob("*.json"))
    assert names, "no JCS vectors found"
    failures = []
    for name in names:
        document = json.loads((testdata / "input" / name).read_bytes())
        expected = (testdata / "output" / name).read_bytes()
        expected_hex = bytes.fromhex((testdata / "outhex" / name).with_suffix(".txt").read_text())
        assert expected == expected_hex, f"vector {name}: output and outhex disagree"
        actual = jcs(document, where=name)
        if actual != expected:
            failures.append(f"{name}: got {actual!r}, want {expected!r}")
    assert failures == []


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ({"body": {"x": float("nan")}}, "nan"),
        ({"body": {"x": 2**60}}, "safe integer"),
        ({"body": {1: "non-string key"}}, "keys must be strings"),
        ({"body": {"x": "\ud800"}}, "non-UTF-8"),
        ({"body": {"x": object()}}, ""),
    ],
)
def test_values_jcs_cannot_encode_are_refused_naming_the_place(value: Any, reason: str) -> None:
    with pytest.raises(CanonicalizationError) as caught:
        jcs(value, where="/body/x")
    assert caught.value.where == "/body/x"
    assert "/body/x" in str(caught.value)
    assert reason in str(caught.value)


def test_output_is_sorted_compact_utf8() -> None:
    assert (
        jcs({"b": 1, "a": "é", "c": [1.0, True, None]})
        == '{"a":"é","b":1,"c":[1,true,null]}'.encode()
    )
