"""Named binds become PostgreSQL's numbered binds on tokens, never inside text that is not SQL."""

from __future__ import annotations

import pytest

from catalog.binds import NumberedSql, numbered_binds


@pytest.mark.parametrize(
    ("sql", "text", "names"),
    [
        pytest.param(
            "SELECT a FROM t WHERE x = :n ORDER BY a",
            "SELECT a FROM t WHERE x = $1 ORDER BY a",
            ("n",),
            id="one",
        ),
        pytest.param(
            "SELECT a FROM t WHERE x = :n AND y = :m OR z = :n ORDER BY a",
            "SELECT a FROM t WHERE x = $1 AND y = $2 OR z = $1 ORDER BY a",
            ("n", "m"),
            id="repeated-name-one-number",
        ),
        pytest.param(
            "SELECT a::int, :n::text FROM t ORDER BY 1",
            "SELECT a::int, $1::text FROM t ORDER BY 1",
            ("n",),
            id="casts-untouched",
        ),
        pytest.param(
            "SELECT ':n', \":n\", $$ :n $$, $q$ :n $q$, :n -- :n\nFROM t /* :n */ ORDER BY 1",
            "SELECT ':n', \":n\", $$ :n $$, $q$ :n $q$, $1 -- :n\nFROM t /* :n */ ORDER BY 1",
            ("n",),
            id="strings-names-dollar-quotes-comments-untouched",
        ),
        pytest.param(
            "SELECT a FROM t WHERE b LIKE 'x%' AND c = :limit ORDER BY a",
            "SELECT a FROM t WHERE b LIKE 'x%' AND c = $1 ORDER BY a",
            ("limit",),
            id="keyword-name-and-percent",
        ),
        pytest.param("SELECT 1", "SELECT 1", (), id="none"),
        pytest.param(
            "SELECT arr[1:2] FROM t ORDER BY 1", "SELECT arr[1:2] FROM t ORDER BY 1", (), id="slice"
        ),
    ],
)
def test_binds_are_numbered_on_tokens(sql: str, text: str, names: tuple[str, ...]) -> None:
    assert numbered_binds(sql) == NumberedSql(text=text, names=names)


def test_values_follow_the_numbers() -> None:
    statement = numbered_binds("SELECT :b, :a, :b")
    assert statement.text == "SELECT $1, $2, $1"
    assert statement.values({"a": 1, "b": "x", "unused": None}) == ["x", 1]
    with pytest.raises(KeyError, match="'a'"):
        statement.values({"b": 1})


def test_a_bind_it_cannot_place_for_sure_is_refused() -> None:
    # `:n` in the slice is not a bind for the parser, but `:n` after it is: no guessing.
    with pytest.raises(ValueError, match="cannot all be placed"):
        numbered_binds("SELECT arr[1:n], :n FROM t ORDER BY 1")


def test_text_that_does_not_parse_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot be parsed"):
        numbered_binds("SELECT 'unterminated")
