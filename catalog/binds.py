"""Named binds (``:name``) rewritten as PostgreSQL's numbered binds (``$1``), token by token.

A catalog query names its binds ``:name`` (checked by :mod:`catalog.sqlcheck`). The
PostgreSQL runner sends the statement through the extended protocol, whose binds are
``$n``, with the values apart from the text. The rewrite works on the dialect's
tokens, so ``:name`` inside a string, a quoted name, a comment or a dollar-quoted
body stays as it is, and a ``::type`` cast is another token. It then checks that it
rewrote exactly the binds the parser sees: a ``:name`` it cannot place for sure (an
array slice ``a[x:limit]`` that also names a parameter) is refused, never guessed.
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokenizer_core import TokenType

if TYPE_CHECKING:
    from collections.abc import Mapping

    from catalog.model import JsonScalar


@dataclass(frozen=True)
class NumberedSql:
    """The statement with ``$n`` binds; ``names[i]`` is the parameter bound to ``$(i + 1)``."""

    text: str
    names: tuple[str, ...]

    def values(self, inputs: Mapping[str, JsonScalar]) -> list[JsonScalar]:
        """The bound values in ``$n`` order; ``KeyError`` names a parameter with no value."""
        return [inputs[name] for name in self.names]


@lru_cache(maxsize=256)
def numbered_binds(sql: str) -> NumberedSql:
    """Rewrite every ``:name`` bind of PostgreSQL ``sql`` as ``$n`` (one number per name).

    Raises ``ValueError`` when the text cannot be tokenized or parsed, or when the
    ``:name`` tokens found differ from the binds the parser sees. ``sql`` has passed
    :func:`catalog.sqlcheck.check_sql`, so neither happens to a sealed entry.
    """
    dialect = Dialect.get_or_raise("postgres")
    try:
        tokens = dialect.tokenizer().tokenize(sql)
        trees = dialect.parser().parse(tokens, sql)
    except (TokenError, ParseError) as exc:
        raise ValueError("the statement cannot be parsed to number its binds") from exc
    seen = Counter(
        node.this
        for tree in trees
        if tree is not None
        for node in tree.find_all(exp.Placeholder)
        if isinstance(node.this, str)
    )
    numbers: dict[str, int] = {}
    pieces: list[str] = []
    done = 0
    found: Counter[str] = Counter()
    for colon, after in itertools.pairwise(tokens):
        name = after.text
        if (
            colon.token_type != TokenType.COLON
            or after.start != colon.end + 1
            or after.token_type == TokenType.IDENTIFIER  # :"quoted" is not a bind
            or name not in seen
        ):
            continue
        number = numbers.setdefault(name, len(numbers) + 1)
        pieces += [sql[done : colon.start], f"${number}"]
        done = after.end + 1
        found[name] += 1
    if found != seen:
        raise ValueError(
            "the statement's :name binds cannot all be placed for sure; write them apart "
            "from slices and casts"
        )
    pieces.append(sql[done:])
    return NumberedSql(text="".join(pieces), names=tuple(numbers))
