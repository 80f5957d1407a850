"""Static read-only check of a query's SQL, as decisions (STYLE G7).

:func:`check_sql` classifies one SQL text into :class:`ReadOnly` or
:class:`Rejected`, never raising for bad SQL. It is one layer of several (the
runners add read-only connections and authorizers); it errs on the side of
refusing. Rule ids are stable and tested:

``parse_error``           sqlglot cannot tokenize or parse the text
``single_statement``      not exactly one statement
``statement_kind``        not SELECT / WITH ... SELECT / VALUES (includes unknown statements);
                          a text starting with another statement's verb (INSERT, CREATE,
                          CLUSTER, ...) is named so before it is parsed or split
``data_modifying_cte``    a WITH item that inserts, updates, deletes or merges
``select_into``           SELECT ... INTO creates a table
``locking_clause``        FOR UPDATE / NO KEY UPDATE / SHARE / KEY SHARE
``side_effect_function``  a function with side effects (sequences, locks, files, ...; the
                          table and each reason are in :mod:`catalog.side_effects`)
``positional_parameter``  a bind other than ``:name`` (``?``, ``$1``, ``%s``, ``@x``)
``undeclared_parameter``  ``:name`` that the entry does not declare
``unused_parameter``      a declared parameter the SQL never uses
``order_not_determined``  no top-level ORDER BY and not a single-row result

Lines are 1-based lines of the offending token in ``sql``, computed from
character offsets (sqlglot's own line counter drifts after ``$`` tokens).
Line 1 is used only where no token exists (an unused parameter).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokenizer_core import Token, TokenType

from catalog.side_effects import side_effect, side_effect_table, unescape_pg_unicode

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Sequence

RULES: tuple[str, ...] = (
    "parse_error",
    "single_statement",
    "statement_kind",
    "data_modifying_cte",
    "select_into",
    "locking_clause",
    "side_effect_function",
    "positional_parameter",
    "undeclared_parameter",
    "unused_parameter",
    "order_not_determined",
)

# Catalog engine name -> sqlglot dialect name.
_DIALECTS = {"sqlite": "sqlite", "postgresql": "postgres"}

# Statements that are never a query, by their first word: PostgreSQL's and SQLite's verbs.
_NOT_QUERY_VERBS = frozenset(
    {
        "ABORT", "ALTER", "ANALYSE", "ANALYZE", "ATTACH", "BEGIN", "CALL", "CHECKPOINT",
        "CLOSE", "CLUSTER", "COMMENT", "COMMIT", "COPY", "CREATE", "DEALLOCATE", "DECLARE",
        "DELETE", "DETACH", "DISCARD", "DO", "DROP", "END", "EXECUTE", "EXPLAIN", "FETCH",
        "GRANT", "IMPORT", "INSERT", "LISTEN", "LOAD", "LOCK", "MERGE", "MOVE", "NOTIFY",
        "PRAGMA", "PREPARE", "REASSIGN", "REFRESH", "REINDEX", "RELEASE", "REPLACE", "RESET",
        "REVOKE", "ROLLBACK", "SAVEPOINT", "SECURITY", "SET", "SHOW", "START", "TRUNCATE",
        "UNLISTEN", "UPDATE", "UPSERT", "VACUUM",
    }
)  # fmt: skip

_QUERY_ROOTS = (exp.Select, exp.SetOperation, exp.Values)
_DML = (exp.Insert, exp.Update, exp.Delete, exp.Merge)
_DML_TOKENS = frozenset({TokenType.INSERT, TokenType.UPDATE, TokenType.DELETE, TokenType.MERGE})
_LOCK_WORDS = frozenset({"UPDATE", "SHARE", "NO", "KEY"})


@dataclass(frozen=True)
class ReadOnly:
    """Accepted: one read-only, ordered statement using the named binds ``placeholders``."""

    placeholders: tuple[str, ...]


@dataclass(frozen=True)
class Rejected:
    """Refused by ``rule`` (one of :data:`RULES`) at 1-based ``line``, with a human ``detail``."""

    rule: str
    line: int
    detail: str


@dataclass(frozen=True)
class _Parsed:
    sql: str
    tokens: Sequence[Token]
    tree: exp.Expr

    def line_at(self, offset: int) -> int:
        return self.sql.count("\n", 0, max(offset, 0)) + 1

    def first_token_line(self, types: Collection[TokenType], default: int = 0) -> int:
        for token in self.tokens:
            if token.token_type in types:
                return self.line_at(token.start)
        return self.line_at(default)


def check_sql(sql: str, engine: str, declared_params: Collection[str]) -> ReadOnly | Rejected:
    """Classify ``sql`` for ``engine`` ("sqlite" or "postgresql").

    Returns :class:`ReadOnly` only when every rule passes and the row order is
    determined; otherwise the first :class:`Rejected` in rule order. Raises
    ``ValueError`` only for an unknown engine (a programming error: the
    catalog model allows only the two).
    """
    if engine not in _DIALECTS:
        raise ValueError(f"unknown engine {engine!r}; expected one of {sorted(_DIALECTS)}")
    parsed = _parse(sql, Dialect.get_or_raise(_DIALECTS[engine]))
    if isinstance(parsed, Rejected):
        return parsed
    for rule in (_kind, _modifying, _into, _locks, _functions):
        if (rejected := rule(parsed)) is not None:
            return rejected
    binds = _binds(parsed, declared_params)
    if isinstance(binds, Rejected):
        return binds
    if _order_determined(parsed.tree):
        return ReadOnly(placeholders=binds)
    return Rejected(
        "order_not_determined",
        parsed.line_at(parsed.tokens[0].start),
        "row order is not determined: add a top-level ORDER BY (replay compares result "
        "digests); only an aggregate without GROUP BY or a one-row VALUES may omit it",
    )


def _parse(sql: str, dialect: Dialect) -> _Parsed | Rejected:
    tokenizer = dialect.tokenizer()
    try:
        tokens = tokenizer.tokenize(sql)
    except TokenError:
        done = tokenizer.tokens
        offset = done[-1].end + 1 if done else 0
        while offset < len(sql) and sql[offset].isspace():
            offset += 1
        line = sql.count("\n", 0, offset) + 1
        return Rejected(
            "parse_error", line, "cannot tokenize SQL: unterminated string, comment or quoted name?"
        )
    statements = _split(tokens)
    if statements and (verb := statements[0][0].text.upper()) in _NOT_QUERY_VERBS:
        # Named before parsing: sqlglot cannot parse every such statement (CLUSTER ... USING,
        # NOTIFY c, 'x'), and a trigger body's ';' would otherwise read as a second statement.
        return Rejected(
            "statement_kind", sql.count("\n", 0, statements[0][0].start) + 1, _kind_detail(verb)
        )
    if len(statements) != 1:
        line = sql.count("\n", 0, statements[1][0].start) + 1 if statements else 1
        return Rejected(
            "single_statement", line, f"found {len(statements)} statements; exactly one allowed"
        )
    try:
        trees = dialect.parser(error_message_context=len(sql) + 1).parse(tokens, sql)
    except ParseError as exc:
        return _parse_error(sql, exc)
    tree = next(t for t in trees if t is not None)
    return _Parsed(sql=sql, tokens=statements[0], tree=tree)


def _split(tokens: Iterable[Token]) -> list[list[Token]]:
    statements: list[list[Token]] = [[]]
    for token in tokens:
        if token.token_type == TokenType.SEMICOLON:
            statements.append([])
        else:
            statements[-1].append(token)
    return [s for s in statements if s]


def _parse_error(sql: str, exc: ParseError) -> Rejected:
    # The parser was given a context as long as the SQL, so start_context is
    # the whole text before the offending token.
    first = exc.errors[0] if exc.errors else {}
    context, near = first.get("start_context"), first.get("highlight")
    line = sql.count("\n", 0, len(context)) + 1 if isinstance(context, str) else 1
    description = first.get("description") or str(exc).splitlines()[0]
    where = f" near {near!r}" if near else ""
    return Rejected("parse_error", line, f"cannot parse SQL{where}: {description}")


def _unwrap(tree: exp.Expr) -> exp.Expr:
    while isinstance(tree, exp.Subquery):
        tree = tree.this
    return tree


def _start(node: exp.Expr) -> int | None:
    """Smallest character offset sqlglot recorded for ``node`` or a descendant."""
    starts = [n.meta["start"] for n in node.walk() if "start" in n.meta]
    return min(starts) if starts else None


def _kind(p: _Parsed) -> Rejected | None:
    if isinstance(_unwrap(p.tree), _QUERY_ROOTS):
        return None
    root = _unwrap(p.tree)
    word = p.tokens[0].text.upper()
    if word == "WITH" and not isinstance(root, exp.Command):
        word = f"WITH ... {type(root).__name__.upper()}"
    return Rejected("statement_kind", p.line_at(p.tokens[0].start), _kind_detail(word))


def _kind_detail(word: str) -> str:
    return f"{word} is not a read-only query; only SELECT, WITH ... SELECT and VALUES are allowed"


def _modifying(p: _Parsed) -> Rejected | None:
    for node in p.tree.find_all(*_DML):
        in_cte = node.find_ancestor(exp.CTE) is not None
        at = _start(node)
        line = p.line_at(_keyword_before(p.tokens, at, _DML_TOKENS) if at is not None else 0)
        verb = type(node).__name__.upper()
        if in_cte:
            return Rejected("data_modifying_cte", line, f"WITH item runs {verb}")
        return Rejected("statement_kind", line, f"nested {verb} is not a read-only query")
    return None


def _keyword_before(tokens: Sequence[Token], offset: int, types: Collection[TokenType]) -> int:
    best = offset
    for token in tokens:
        if token.start > offset:
            break
        if token.token_type in types:
            best = token.start
    return best


def _into(p: _Parsed) -> Rejected | None:
    if p.tree.find(exp.Into) is None:
        return None
    line = p.first_token_line({TokenType.INTO})
    return Rejected("select_into", line, "SELECT ... INTO creates a table")


def _locks(p: _Parsed) -> Rejected | None:
    if p.tree.find(exp.Lock) is None:
        return None
    offset = 0
    for token, after in itertools.pairwise(p.tokens):
        if token.token_type == TokenType.FOR and after.text.upper() in _LOCK_WORDS:
            offset = token.start
            break
    return Rejected("locking_clause", p.line_at(offset), "FOR UPDATE / FOR SHARE locks rows")


def _function_names(node: exp.Func, sql: str) -> set[str]:
    names = {node.name} if isinstance(node, exp.Anonymous) else set(type(node).sql_names())
    if "start" in node.meta and "end" in node.meta:
        names.add(sql[node.meta["start"] : node.meta["end"] + 1])  # the name as written
    names |= {unescape_pg_unicode(n) for n in names}  # U&"\0073et_config" is set_config
    return {n.lower() for n in names if n}


def _arity(node: exp.Func) -> int:
    """How many arguments ``node`` passes (sqlglot keeps them under several keys)."""
    if isinstance(node, exp.Anonymous):
        return len(node.expressions)
    return sum(
        len(value) if isinstance(value, list) else 1
        for value in node.args.values()
        if value is not None and value != []
    )


def _functions(p: _Parsed) -> Rejected | None:
    for node in p.tree.find_all(exp.Func):
        for name in sorted(_function_names(node, p.sql)):
            if (why := side_effect(name, _arity(node))) is not None:
                line = p.line_at(node.meta.get("start", p.tokens[0].start))
                return Rejected(
                    "side_effect_function", line, f"function {name}() has side effects: it {why}"
                )
    for table in p.tree.find_all(exp.Table):
        if isinstance(table.this, exp.Identifier) and (why := side_effect_table(table.name)):
            line = p.line_at(table.this.meta.get("start", p.tokens[0].start))
            return Rejected(
                "side_effect_function",
                line,
                f"table-valued function {table.name.lower()}() has side effects: it {why}",
            )
    return None


def _binds(p: _Parsed, declared: Collection[str]) -> tuple[str, ...] | Rejected:
    for token in p.tokens:  # SQLite reads an unquoted $name as a bind; sqlglot as a name
        if token.token_type == TokenType.VAR and token.text.startswith("$"):
            return Rejected(
                "positional_parameter",
                p.line_at(token.start),
                f"bind {token.text} is not allowed; use named binds like :name",
            )
    named: list[str] = []
    for node in p.tree.find_all(exp.Placeholder, exp.Parameter):
        name = node.this if isinstance(node, exp.Placeholder) else None
        if isinstance(name, str) and not name.isidentifier():  # SQLite reads :a$b as a bind
            return Rejected(
                "positional_parameter",
                p.line_at(_named_offset(p.tokens, name)),
                f"bind :{name} is not allowed; a bind name is letters, digits and _ (:name)",
            )
        if not isinstance(name, str):
            offset, text = _positional(p.sql, p.tokens)
            return Rejected(
                "positional_parameter",
                p.line_at(offset),
                f"bind {text} is not allowed; use named binds like :name",
            )
        named.append(name)
    for name in named:
        if name not in declared:
            return Rejected(
                "undeclared_parameter",
                p.line_at(_named_offset(p.tokens, name)),
                f":{name} is not a declared parameter of this entry",
            )
    unused = sorted(set(declared) - set(named))
    if unused:
        return Rejected(
            "unused_parameter", 1, f"declared but not used in the SQL: {', '.join(unused)}"
        )
    return tuple(sorted(set(named)))


def _positional(sql: str, tokens: Sequence[Token]) -> tuple[int, str]:
    """Offset and text of the first positional bind (``?``, ``$1``, ``%s``, ``%(x)s``, ``@x``)."""
    for i, token in enumerate(tokens):
        after = tokens[i + 1] if i + 1 < len(tokens) else None
        if token.token_type == TokenType.PLACEHOLDER:
            return token.start, token.text
        if token.token_type == TokenType.PARAMETER:
            return token.start, token.text + (after.text if after is not None else "")
        if token.token_type == TokenType.MOD and after is not None and after.text == "s":
            return token.start, "%s"
        if token.token_type == TokenType.MOD and after is not None and after.text == "(":
            close = next((t for t in tokens[i + 2 :] if t.text == ")"), None)
            if close is not None:  # pyformat %(name)s: the text up to the 's' after ')'
                return token.start, sql[token.start : close.end + 2]
    return tokens[0].start, "?"


def _named_offset(tokens: Sequence[Token], name: str) -> int:
    for token, after in itertools.pairwise(tokens):
        if token.token_type == TokenType.COLON and after.text == name:
            return token.start
    return tokens[0].start


def _order_determined(tree: exp.Expr) -> bool:
    root = _unwrap(tree)
    if root.args.get("order"):
        return True
    if isinstance(root, exp.Values):
        return len(root.expressions) == 1
    if isinstance(root, exp.Select) and not root.args.get("group"):
        return any(_has_aggregate(e) for e in root.expressions)
    return False


def _has_aggregate(node: exp.Expr) -> bool:
    """Tell whether ``node`` aggregates at this query level (not in a window or subquery)."""
    if isinstance(node, exp.AggFunc):
        return True
    if isinstance(node, (exp.Window, exp.Subquery, exp.Query)):
        return False
    return any(_has_aggregate(child) for child in node.iter_expressions())
