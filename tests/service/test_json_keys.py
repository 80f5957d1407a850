"""Repeated JSON keys: found wherever they are, reported at the first one in document order."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.json_keys import repeated_key


@pytest.mark.parametrize(
    ("document", "path"),
    [
        pytest.param('{"a": 1, "a": 2}', ("a",), id="top-level"),
        pytest.param('{"a": {"b": 1, "b": 1}}', ("a", "b"), id="nested-same-value"),
        pytest.param('[{"x": 1}, {"y": 1, "y": 2}]', (1, "y"), id="in-an-array"),
        pytest.param('{"a": [1, {"c": 1, "c": 2}], "a": 3}', ("a", 1, "c"), id="inner-comes-first"),
        pytest.param('{"a": 1, "b": {"c": 1}, "a": 2, "b": 0}', ("a",), id="first-of-two"),
        pytest.param('{"\\u0061": 1, "a": 2}', ("a",), id="escaped-spelling"),
    ],
)
def test_the_first_repeated_key_is_named_with_its_path(document: str, path: tuple[object]) -> None:
    assert repeated_key(document) == path


@pytest.mark.parametrize(
    "document",
    [
        pytest.param('{"a": 1, "A": 2}', id="keys-differ-by-case"),
        pytest.param('{"a": {"a": {"a": 1}}}', id="same-key-at-each-depth"),
        pytest.param('[{"a": 1}, {"a": 2}]', id="same-key-in-sibling-objects"),
        pytest.param('"text"', id="not-an-object"),
        pytest.param('{"a": ', id="not-json"),
        pytest.param(b"\xff\xfe", id="not-text"),
    ],
)
def test_no_repeat_is_none(document: str | bytes) -> None:
    assert repeated_key(document) is None


def test_a_repeat_deep_inside_is_found_without_recursion() -> None:
    deep = "[" * 500 + '{"k": 1, "k": 2}' + "]" * 500
    assert repeated_key(deep) == (*([0] * 500), "k")


def test_a_document_too_deep_for_the_json_module_is_left_to_it() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(RecursionError):
        json.loads(deep)
    assert repeated_key(deep) is None


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(_JSON)
def test_a_document_python_writes_never_repeats_a_key(value: object) -> None:
    assert repeated_key(json.dumps(value)) is None
