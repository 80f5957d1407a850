"""The static read-only check, as a table of decisions (STYLE G7)."""

# ruff: noqa: E501 - case tables read best as one case per line

from __future__ import annotations

import pytest

from catalog.sqlcheck import RULES, ReadOnly, Rejected, check_sql

SQ, PG = "sqlite", "postgresql"

REFUSED = [
    # parse_error
    pytest.param(SQ, "SELEC 1", (), "parse_error", id="parse-typo-sqlite"),
    pytest.param(PG, "SELECT (1 FROM t", (), "parse_error", id="parse-paren-pg"),
    pytest.param(SQ, "SELECT 'unterminated FROM t", (), "parse_error", id="parse-string-sqlite"),
    pytest.param(PG, "SELECT 1 /* unterminated", (), "parse_error", id="parse-comment-pg"),
    # single_statement
    pytest.param(SQ, "SELECT 1;\nSELECT 2", (), "single_statement", id="two-selects-sqlite"),
    pytest.param(PG, "SELECT 1; DELETE FROM t", (), "single_statement", id="select-delete-pg"),
    pytest.param(SQ, "-- nothing here\n", (), "single_statement", id="empty-sqlite"),
    pytest.param(PG, "  ;  ", (), "single_statement", id="only-semicolon-pg"),
    # statement_kind
    pytest.param(SQ, "PRAGMA table_info(t)", (), "statement_kind", id="pragma-sqlite"),
    pytest.param(SQ, "PRAGMA writable_schema = 1", (), "statement_kind", id="pragma-set-sqlite"),
    pytest.param(SQ, "ATTACH DATABASE 'x.db' AS x", (), "statement_kind", id="attach-sqlite"),
    pytest.param(SQ, "DETACH DATABASE x", (), "statement_kind", id="detach-sqlite"),
    pytest.param(SQ, "VACUUM INTO '/tmp/copy.db'", (), "statement_kind", id="vacuum-into-sqlite"),
    pytest.param(SQ, "INSERT INTO t VALUES (1)", (), "statement_kind", id="insert-sqlite"),
    pytest.param(SQ, "REPLACE INTO t VALUES (1)", (), "statement_kind", id="replace-sqlite"),
    pytest.param(PG, "UPDATE t SET a = 1", (), "statement_kind", id="update-pg"),
    pytest.param(PG, "DELETE FROM t", (), "statement_kind", id="delete-pg"),
    pytest.param(PG, "EXPLAIN ANALYZE DELETE FROM t", (), "statement_kind", id="explain-pg"),
    pytest.param(PG, "SET search_path = evil", (), "statement_kind", id="set-pg"),
    pytest.param(PG, "CREATE TABLE x AS SELECT 1", (), "statement_kind", id="ctas-pg"),
    pytest.param(PG, "COPY t TO '/tmp/x'", (), "statement_kind", id="copy-pg"),
    pytest.param(PG, "CALL do_things()", (), "statement_kind", id="call-pg"),
    pytest.param(PG, "DO $$ BEGIN END $$", (), "statement_kind", id="do-pg"),
    pytest.param(PG, "LISTEN channel", (), "statement_kind", id="listen-pg"),
    pytest.param(PG, "WITH x AS (SELECT 1) DELETE FROM t", (), "statement_kind", id="with-delete-pg"),
    # data_modifying_cte
    pytest.param(
        PG, "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d ORDER BY 1", (),
        "data_modifying_cte", id="cte-delete-pg",
    ),
    pytest.param(
        PG, "WITH u AS (UPDATE t SET a = 1 RETURNING a) SELECT a FROM u ORDER BY a", (),
        "data_modifying_cte", id="cte-update-pg",
    ),
    pytest.param(
        PG, "WITH i AS (INSERT INTO t VALUES (1) RETURNING *) SELECT * FROM i ORDER BY 1", (),
        "data_modifying_cte", id="cte-insert-pg",
    ),
    pytest.param(
        SQ, "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d ORDER BY 1", (),
        "data_modifying_cte", id="cte-delete-sqlite",
    ),
    # select_into
    pytest.param(PG, "SELECT a INTO b FROM t ORDER BY a", (), "select_into", id="into-pg"),
    pytest.param(PG, "SELECT * INTO TEMP x FROM t ORDER BY 1", (), "select_into", id="into-temp-pg"),
    pytest.param(SQ, "SELECT a INTO b FROM t ORDER BY a", (), "select_into", id="into-sqlite"),
    # locking_clause
    pytest.param(PG, "SELECT a FROM t ORDER BY a FOR UPDATE", (), "locking_clause", id="for-update-pg"),
    pytest.param(
        PG, "SELECT a FROM t ORDER BY a FOR NO KEY UPDATE SKIP LOCKED", (), "locking_clause",
        id="for-no-key-update-pg",
    ),
    pytest.param(PG, "SELECT a FROM t ORDER BY a FOR SHARE", (), "locking_clause", id="for-share-pg"),
    pytest.param(
        PG, "SELECT a FROM t ORDER BY a FOR KEY SHARE OF t", (), "locking_clause",
        id="for-key-share-pg",
    ),
    pytest.param(
        PG, "SELECT * FROM t WHERE a IN (SELECT b FROM u FOR UPDATE) ORDER BY 1", (),
        "locking_clause", id="for-update-subquery-pg",
    ),
    pytest.param(SQ, "SELECT a FROM t ORDER BY a FOR UPDATE", (), "locking_clause", id="for-update-sqlite"),
    # side_effect_function
    *(
        pytest.param(PG, f"SELECT {call} ORDER BY 1", (), "side_effect_function", id=f"fn-{call.split('(')[0]}-pg")
        for call in (
            "nextval('s')", "setval('s', 1)", "currval('s')", "lastval()",
            "pg_advisory_lock(1)", "pg_advisory_xact_lock_shared(1)", "pg_try_advisory_lock(1)",
            "set_config('role', 'x', false)", "dblink('db', 'select 1')", "dblink_exec('db', 'x')",
            "lo_import('/etc/passwd')", "lo_unlink(1)", "pg_read_file('/etc/passwd')",
            "pg_read_binary_file('x')", "pg_ls_dir('.')", "pg_stat_file('x')", "pg_sleep(10)",
            "pg_terminate_backend(1)", "pg_cancel_backend(1)", "pg_reload_conf()",
            "pg_rotate_logfile()", "txid_current()", "pg_notify('c', 'x')",
            "query_to_xml('delete from t', true, false, '')", "PG_SLEEP(1)", '"pg_sleep"(1)',
            "pg_catalog.nextval('s')", "NextVal('s')",
        )
    ),
    pytest.param(
        PG, "SELECT * FROM dblink('db', 'select 1') AS r(a int) ORDER BY 1", (),
        "side_effect_function", id="fn-dblink-from-pg",
    ),
    *(
        pytest.param(SQ, f"SELECT {call} ORDER BY 1", (), "side_effect_function", id=f"fn-{call.split('(')[0]}-sqlite")
        for call in (
            "load_extension('/tmp/evil.so')", "LOAD_EXTENSION('x')", "writefile('x', 'y')",
            "readfile('/etc/passwd')", "edit('x')", "nextval('s')",
        )
    ),
    pytest.param(SQ, "SELECT * FROM fsdir('/etc') ORDER BY 1", (), "side_effect_function", id="fn-fsdir-sqlite"),
    # positional_parameter
    pytest.param(SQ, "SELECT a FROM t WHERE b = ? ORDER BY a", (), "positional_parameter", id="qmark-sqlite"),
    pytest.param(SQ, "SELECT a FROM t WHERE b = @b ORDER BY a", (), "positional_parameter", id="at-sqlite"),
    pytest.param(SQ, "SELECT a FROM t WHERE b = $b ORDER BY a", (), "positional_parameter", id="dollar-sqlite"),
    pytest.param(PG, "SELECT a FROM t WHERE b = $1 ORDER BY a", (), "positional_parameter", id="dollar1-pg"),
    pytest.param(PG, "SELECT a FROM t WHERE b = %s ORDER BY a", (), "positional_parameter", id="pyformat-pg"),
    # undeclared_parameter
    pytest.param(SQ, "SELECT a FROM t WHERE b = :b ORDER BY a", (), "undeclared_parameter", id="undeclared-sqlite"),
    pytest.param(
        PG, "SELECT a FROM t WHERE b = :b AND c = :c ORDER BY a", ("b",), "undeclared_parameter",
        id="undeclared-second-pg",
    ),
    pytest.param(SQ, "SELECT a FROM t WHERE b = :B ORDER BY a", ("b",), "undeclared_parameter", id="case-sqlite"),
    # unused_parameter
    pytest.param(SQ, "SELECT a FROM t ORDER BY a", ("b",), "unused_parameter", id="unused-sqlite"),
    pytest.param(PG, "SELECT a FROM t WHERE b = :b ORDER BY a", ("b", "c"), "unused_parameter", id="unused-pg"),
    # order_not_determined
    pytest.param(SQ, "SELECT a FROM t", (), "order_not_determined", id="no-order-sqlite"),
    pytest.param(PG, "SELECT a FROM t", (), "order_not_determined", id="no-order-pg"),
    pytest.param(SQ, "SELECT a, count(*) FROM t GROUP BY a", (), "order_not_determined", id="group-sqlite"),
    pytest.param(PG, "SELECT sum(a) OVER () FROM t", (), "order_not_determined", id="window-only-pg"),
    pytest.param(SQ, "VALUES (1), (2)", (), "order_not_determined", id="values-two-rows-sqlite"),
    pytest.param(
        PG, "SELECT * FROM (SELECT a FROM t ORDER BY a) s", (), "order_not_determined",
        id="inner-order-only-pg",
    ),
    pytest.param(SQ, "SELECT a FROM t UNION SELECT b FROM u", (), "order_not_determined", id="union-sqlite"),
    pytest.param(PG, "SELECT a FROM t LIMIT 1", (), "order_not_determined", id="limit-one-pg"),
    pytest.param(
        SQ, "SELECT (SELECT count(*) FROM u) AS n, a FROM t", (), "order_not_determined",
        id="aggregate-in-subquery-sqlite",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("engine", "sql", "declared", "rule"), REFUSED)
def test_refused(engine: str, sql: str, declared: tuple[str, ...], rule: str) -> None:
    decision = check_sql(sql, engine, declared)
    assert isinstance(decision, Rejected), decision
    assert decision.rule == rule, decision
    assert decision.line == 1 or "\n" in sql
    assert decision.detail


def test_every_rule_has_at_least_two_refusals() -> None:
    counts = dict.fromkeys(RULES, 0)
    for case in REFUSED:
        counts[str(case.values[3])] += 1
    assert {rule: n for rule, n in counts.items() if n < 2} == {}


ACCEPTED = [
    pytest.param(
        SQ,
        "SELECT c.id, c.name, count(o.id) AS orders, sum(o.total) AS total\n"
        "FROM customers c JOIN orders o ON o.customer_id = c.id\n"
        "WHERE c.tenant = :tenant\n"
        "GROUP BY c.id, c.name\n"
        "HAVING count(o.id) > :min_orders\n"
        "ORDER BY total DESC, c.id",
        ("tenant", "min_orders"), ("min_orders", "tenant"), id="join-group-having",
    ),
    pytest.param(
        PG,
        "SELECT id, customer_id, total,\n"
        "  row_number() OVER (PARTITION BY customer_id ORDER BY created_at) AS n,\n"
        "  sum(total) OVER (PARTITION BY customer_id ORDER BY created_at\n"
        "    ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS running\n"
        "FROM orders ORDER BY customer_id, n",
        (), (), id="window-functions-pg",
    ),
    pytest.param(
        SQ,
        "SELECT id, lag(total) OVER w AS previous, lead(total) OVER w AS next\n"
        "FROM orders WINDOW w AS (ORDER BY id) ORDER BY id",
        (), (), id="named-window-sqlite",
    ),
    pytest.param(
        PG,
        "WITH recent AS (SELECT * FROM orders WHERE created_at >= :since::date)\n"
        "SELECT r.id, c.name FROM recent r JOIN customers c ON c.id = r.customer_id\n"
        "ORDER BY r.id",
        ("since",), ("since",), id="cte-join-pg",
    ),
    pytest.param(
        SQ,
        "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 10)\n"
        "SELECT x FROM n ORDER BY x",
        (), (), id="recursive-cte-sqlite",
    ),
    pytest.param(
        SQ, "SELECT count(*) AS n, sum(total) AS total FROM orders WHERE customer_id = :customer_id",
        ("customer_id",), ("customer_id",), id="single-row-aggregate-sqlite",
    ),
    pytest.param(
        PG, "SELECT count(*) FILTER (WHERE paid) AS paid, max(total) + 1 AS m FROM invoices",
        (), (), id="aggregate-filter-pg",
    ),
    pytest.param(
        SQ,
        "SELECT i.id, i.amount FROM invoices i\n"
        "WHERE NOT EXISTS (SELECT 1 FROM payments p WHERE p.invoice_id = i.id)\n"
        "ORDER BY i.id",
        (), (), id="anti-join-sqlite",
    ),
    pytest.param(
        PG,
        "SELECT o.id FROM orders o WHERE o.customer_id IN\n"
        "  (SELECT id FROM customers WHERE tenant = :tenant) ORDER BY o.id LIMIT 100 OFFSET 10",
        ("tenant",), ("tenant",), id="in-subquery-limit-pg",
    ),
    pytest.param(
        SQ,
        "SELECT c.id, coalesce(sum(p.amount), 0) AS paid FROM customers c\n"
        "LEFT JOIN payments p ON p.customer_id = c.id GROUP BY c.id ORDER BY c.id",
        (), (), id="left-join-coalesce-sqlite",
    ),
    pytest.param(
        PG, "SELECT id, 'order' AS kind FROM orders UNION ALL SELECT id, 'invoice' FROM invoices ORDER BY 1, 2",
        (), (), id="union-all-ordered-pg",
    ),
    pytest.param(SQ, "VALUES (1, 'one')", (), (), id="values-one-row-sqlite"),
    pytest.param(PG, "VALUES (1), (2) ORDER BY 1", (), (), id="values-ordered-pg"),
    pytest.param(
        SQ,
        "SELECT id, CASE WHEN total > 100 THEN 'big' ELSE 'small' END AS size,\n"
        "  date(created_at) AS day, strftime('%Y-%m', created_at) AS month\n"
        "FROM orders WHERE date(created_at) BETWEEN :start AND :end ORDER BY id",
        ("start", "end"), ("end", "start"), id="case-dates-sqlite",
    ),
    pytest.param(
        PG,
        "SELECT date_trunc('month', created_at) AS month, payload->>'channel' AS channel,\n"
        "  count(*) AS n FROM orders GROUP BY 1, 2 ORDER BY 1, 2",
        (), (), id="date-trunc-json-pg",
    ),
    pytest.param(
        SQ,
        "SELECT id, note FROM orders -- DELETE FROM orders; FOR UPDATE\n"
        "WHERE note <> 'FOR UPDATE' AND note <> 'nextval(1); DROP TABLE t' ORDER BY id",
        (), (), id="keywords-in-strings-and-comments-sqlite",
    ),
    pytest.param(
        PG,
        "SELECT id FROM orders WHERE note = 'SELECT pg_sleep(10) FOR SHARE' /* lo_import */\n"
        "ORDER BY id",
        (), (), id="keywords-in-strings-and-comments-pg",
    ),
    pytest.param(
        SQ, "SELECT DISTINCT lower(name) AS name, log(10) AS l FROM customers ORDER BY name",
        (), (), id="distinct-harmless-functions-sqlite",
    ),
    pytest.param(
        PG,
        "SELECT c.id, (SELECT max(o.total) FROM orders o WHERE o.customer_id = c.id) AS top\n"
        "FROM customers c ORDER BY c.id LIMIT :n",
        ("n",), ("n",), id="scalar-subquery-pg",
    ),
    pytest.param(
        PG, "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY total) AS median FROM orders",
        (), (), id="ordered-set-aggregate-pg",
    ),
    pytest.param(
        SQ, "SELECT a FROM t WHERE b = :b OR c = :b ORDER BY a",
        ("b",), ("b",), id="same-bind-twice-sqlite",
    ),
    pytest.param(PG, "SELECT a FROM t ORDER BY a;", (), (), id="trailing-semicolon-pg"),
]  # fmt: skip


@pytest.mark.parametrize(("engine", "sql", "declared", "placeholders"), ACCEPTED)
def test_accepted(
    engine: str, sql: str, declared: tuple[str, ...], placeholders: tuple[str, ...]
) -> None:
    assert check_sql(sql, engine, declared) == ReadOnly(placeholders=placeholders)


def test_known_good_set_is_large_enough() -> None:
    assert len(ACCEPTED) >= 15


LINE_THREE = [
    pytest.param(SQ, "SELECT a\nFROM t\nWHERE b = 'oops", (), "parse_error", id="parse-token"),
    pytest.param(PG, "SELECT a\nFROM t\nWHERE (b = 1 ORDER BY a", (), "parse_error", id="parse"),
    pytest.param(SQ, "SELECT 1;\n\nSELECT 2", (), "single_statement", id="second-statement"),
    pytest.param(PG, "-- header\n-- comment\nDELETE FROM t", (), "statement_kind", id="kind"),
    pytest.param(
        PG, "WITH d AS (\n  SELECT 1\n), e AS (DELETE FROM t RETURNING *)\nSELECT 1 ORDER BY 1", (),
        "data_modifying_cte", id="cte",
    ),
    pytest.param(PG, "SELECT a,\n  b\n  INTO c FROM t ORDER BY a", (), "select_into", id="into"),
    pytest.param(PG, "SELECT a\nFROM t ORDER BY a\nFOR UPDATE", (), "locking_clause", id="lock"),
    pytest.param(PG, "SELECT a\nFROM t\nWHERE x = $1 ORDER BY a", (), "positional_parameter", id="dollar"),
    pytest.param(
        PG, "SELECT $1 AS a\nFROM t\nWHERE y = nextval('s') ORDER BY a", (),
        "side_effect_function", id="function-after-dollar-token",  # sqlglot's own line drifts here
    ),
    pytest.param(
        PG, "SELECT a, 'x\ny'\nFROM t WHERE y = nextval('s') ORDER BY a", (),
        "side_effect_function", id="function-after-multiline-string",
    ),
    pytest.param(SQ, "SELECT a\nFROM t\nWHERE b = ? ORDER BY a", (), "positional_parameter", id="qmark"),
    pytest.param(SQ, "SELECT a\nFROM t\nWHERE b = :nope ORDER BY a", (), "undeclared_parameter", id="named"),
    pytest.param(SQ, "-- leading\n\nSELECT a FROM t", (), "order_not_determined", id="order"),
]  # fmt: skip


@pytest.mark.parametrize(("engine", "sql", "declared", "rule"), LINE_THREE)
def test_refusal_names_line_three(
    engine: str, sql: str, declared: tuple[str, ...], rule: str
) -> None:
    decision = check_sql(sql, engine, declared)
    assert isinstance(decision, Rejected), decision
    assert (decision.rule, decision.line) == (rule, 3), decision


def test_unused_parameter_falls_back_to_line_one_and_names_them() -> None:
    decision = check_sql("\n\nSELECT a FROM t ORDER BY a", SQ, ["zeta", "alpha"])
    assert decision == Rejected(
        rule="unused_parameter", line=1, detail="declared but not used in the SQL: alpha, zeta"
    )


def test_side_effect_detail_names_the_function() -> None:
    decision = check_sql("SELECT Pg_Advisory_Lock(42) ORDER BY 1", PG, ())
    assert isinstance(decision, Rejected)
    assert decision.detail == (
        "function pg_advisory_lock() has side effects: it takes or releases an advisory lock"
    )


def test_unknown_engine_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown engine 'mysql'"):
        check_sql("SELECT 1", "mysql", ())
