"""Hostile inputs at the edges of the real app: parameters, bodies and ids in URLs.

One :class:`~tests.hardening.edges_world.EdgeWorld` (SQLite and PostgreSQL sources, a
parameter of every catalog type, commands) runs in process. Every refusal must be a
problem+json naming what was wrong, never a 500 and never a stack trace:

- injection through every parameter type: hostile strings come back as data, byte for byte,
  on SQLite and on PostgreSQL by both runner paths (COPY inlines literals; the cursor binds
  them), find nothing in a WHERE clause, and change no source; values of the wrong shape
  are a 422 naming the parameter; command values stay one argument and never an option;
- oversized and malformed bodies: huge, deeply nested, wrong content type, invalid UTF-8,
  not an object, unknown fields;
- path tricks on every route with an id (``..``, encoded slashes and NULs, Unicode dots,
  overlong ids), and ids of another principal's calls and packets.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from tests.hardening.edges_http import assert_problem, edge_client, packet_file
from tests.hardening.edges_world import GOOD_ECHO, EdgeWorld, build_edge_world
from tests.hardening.fingerprint import Fingerprint, folder_fingerprint
from tests.pg_harness import PostgresServer

JSON = {"content-type": "application/json"}

# Strings that have broken SQL quoting somewhere; each must come back exactly as sent.
HOSTILE_STRINGS = {
    "quote-or": "x' OR '1'='1",
    "stacked-delete": "'; DELETE FROM items; --",
    "paren-stacked": "'); DELETE FROM customers; --",
    "commit-escape": "'; COMMIT; DELETE FROM customers; --",
    "backslash-quote": "\\'; DROP TABLE items; --",
    "e-string": "E'\\x27' || chr(39)",
    "dollar-quote": "$$; DELETE FROM customers; $$",
    "tagged-dollar": "$a$ x $a$",
    "unicode-escape": "U&'\\0027'",
    "comments": "/* */ -- #",
    "format-markers": "%s %(name)s %% {0} {name}",
    "bind-markers": ":name :s ? ?1 $1 @x",
    "copy-null-marker": "\\N",
    "null-word": "NULL",
    "backslashes": "C:\\temp\\new \\\\ \\t",
    "csv-shaped": 'a,"b",c\r\nd',
    "json-shaped": '{"column1": [1, 2]}',
    "newlines-tabs": "line1\nline2\r\n\tend",
    "unicode": "ünïcødé ✓ 𝄞 中文",
    "curly-quotes": "x\u2019 OR \u20181\u2019=\u20181",
    "bidi-override": "\u202egnp.exe",
    "zero-width": "a\u200bb\ufeff",
    "max-length": "x" * 4000,
}
ECHO_PATHS = {
    "sqlite": ("edge.echo", "jsonl"),
    "postgres-copy-jsonl": ("edge.echo_pg", "jsonl"),  # the values inlined as literals
    "postgres-copy-csv": ("edge.echo_pg", "csv"),
    "postgres-cursor": ("edge.echo_pg", "parquet"),  # the values bound
}
# `make test` runs these strings by the path that quotes values itself (PostgreSQL's COPY)
# and on SQLite; `make soak` runs every string by every path.
BOUNDED_STRINGS = {
    "stacked-delete", "commit-escape", "backslash-quote", "e-string", "dollar-quote",
    "unicode-escape", "bind-markers", "copy-null-marker", "csv-shaped", "unicode", "max-length",
}  # fmt: skip
BOUNDED_PATHS = {"sqlite", "postgres-copy-jsonl"}


@pytest.fixture(scope="module")
def world(
    postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EdgeWorld]:
    built = build_edge_world(postgres, tmp_path_factory.mktemp("edges-inputs"))
    yield built
    built.shop.close()


@pytest.fixture(scope="module")
def client(world: EdgeWorld) -> Iterator[TestClient]:
    with edge_client(world) as app_client:
        yield app_client


@pytest.fixture(scope="module")
def sources_before(world: EdgeWorld) -> Fingerprint:
    """The sources as they were before any hostile call of this module."""
    return _sources(world)


def _sources(world: EdgeWorld) -> Fingerprint:
    items = Path(world.settings.sources["items"])
    return Fingerprint({**world.shop.fingerprint().parts, **folder_fingerprint(items.parent).parts})


def _call(client: TestClient, world: EdgeWorld, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/v1/calls", json=body, headers=world.bearer("alice"))
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def _first_value(client: TestClient, world: EdgeWorld, packet_id: str, fmt: str) -> object:
    data = packet_file(client, world.bearer("alice"), packet_id, f"/data/result.{fmt}")
    if fmt == "jsonl":
        return json.loads(data.splitlines()[0])["column1"]
    if fmt == "csv":
        rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
        assert rows[0][0] == "column1"
        return rows[1][0]
    return pq.read_table(io.BytesIO(data)).column("column1").to_pylist()[0]


# --- injection through every parameter type -----------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "path"),
    [
        pytest.param(
            payload,
            path,
            id=f"{name}-{path}",
            marks=() if path in BOUNDED_PATHS and name in BOUNDED_STRINGS else (pytest.mark.soak,),
        )
        for name, payload in HOSTILE_STRINGS.items()
        for path in ECHO_PATHS
    ],
)
@pytest.mark.usefixtures("sources_before")  # taken before the first hostile call
def test_a_hostile_string_comes_back_as_data_byte_for_byte(
    client: TestClient, world: EdgeWorld, payload: str, path: str
) -> None:
    entry, fmt = ECHO_PATHS[path]
    result = _call(
        client, world, {"entry": entry, "params": {**GOOD_ECHO, "s": payload}, "format": fmt}
    )
    assert result["verdict"] == "ran_clean", result["error"]
    assert result["rows"] == 1
    assert _first_value(client, world, result["packet_id"], fmt) == payload


@pytest.mark.parametrize(
    ("payload", "entry"),
    [
        pytest.param(
            payload,
            entry,
            id=f"{name}-{entry}",
            marks=()
            if entry == "edge.lookup_pg" and name in BOUNDED_STRINGS
            else (pytest.mark.soak,),
        )
        for name, payload in HOSTILE_STRINGS.items()
        for entry in ("edge.lookup", "edge.lookup_pg")
    ],
)
def test_a_hostile_string_in_a_where_clause_matches_nothing(
    client: TestClient, world: EdgeWorld, payload: str, entry: str
) -> None:
    result = _call(client, world, {"entry": entry, "params": {"name": payload}})
    assert result["verdict"] == "ran_clean", result["error"]
    assert result["rows"] == 0


def test_a_nul_in_a_string_is_data_on_sqlite_and_refused_by_postgresql(
    client: TestClient, world: EdgeWorld
) -> None:
    params = {**GOOD_ECHO, "s": "a\x00b"}
    on_sqlite = _call(client, world, {"entry": "edge.echo", "params": params})
    assert _first_value(client, world, on_sqlite["packet_id"], "jsonl") == "a\x00b"
    on_postgres = _call(client, world, {"entry": "edge.echo_pg", "params": params})
    assert on_postgres["verdict"] == "error_running"
    assert on_postgres["packet_id"] is None
    assert "driver refused" in on_postgres["error"]  # text values cannot hold NUL there


WRONG_SHAPES = [
    ("n", '"1 OR 1=1"', "expected an integer"),
    ("n", "1.5", "expected an integer"),
    ("n", "true", "expected an integer"),
    ("n", "1e3", "expected an integer"),
    ("n", "9007199254740993", "outside the exactly representable range"),
    ("n", "1001", "above the maximum 1000"),
    ("n", "-1001", "below the minimum -1000"),
    ("x", "NaN", "expected a finite number"),
    ("x", "Infinity", "expected a finite number"),
    ("x", "1e400", "expected a finite number"),
    ("x", '"0.5"', "expected a number"),
    ("b", '"true"', "expected a JSON boolean"),
    ("b", "1", "expected a JSON boolean"),
    ("d", '"2024-02-30"', "not a calendar date"),
    ("d", '"2024-01-01\'; DROP TABLE items; --"', "expected a date YYYY-MM-DD"),
    ("d", "20240101", "expected a date YYYY-MM-DD"),
    ("ts", '"2024-02-29T12:00:00"', "expected an RFC 3339 timestamp with offset"),
    ("ts", '"2024-02-29T25:00:00Z"', "not a valid timestamp"),
    ("ts", '"now()"', "expected an RFC 3339 timestamp with offset"),
    ("e", "\"red' OR '1'='1\"", "is not one of red, green"),
    ("e", '"RED"', "is not one of red, green"),
    ("e", '["red"]', "Input should be"),
    ("s", '{"$ne": null}', "Input should be"),
    ("s", '"' + "x" * 4001 + '"', "longer than 4000 characters (4001)"),
]


@pytest.mark.parametrize(
    ("name", "raw", "reason"),
    WRONG_SHAPES,
    ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(WRONG_SHAPES)],
)
def test_a_value_of_the_wrong_shape_is_a_422_naming_its_parameter(
    client: TestClient, world: EdgeWorld, name: str, raw: str, reason: str
) -> None:
    params = {k: json.dumps(v) for k, v in GOOD_ECHO.items()} | {name: raw}
    body = (
        '{"entry": "edge.echo", "params": {'
        + ", ".join(f'"{k}": {v}' for k, v in params.items())
        + "}}"
    )
    response = client.post("/v1/calls", content=body.encode(), headers=world.bearer("alice") | JSON)
    if reason == "Input should be":  # not a JSON scalar: the request model refuses it
        problem = assert_problem(response, 422, "invalid_request")
        assert problem["errors"][0]["pointer"].startswith(f"/params/{name}")
        return
    problem = assert_problem(response, 422, "invalid_input")
    assert [(e["parameter"], reason in e["detail"]) for e in problem["errors"]] == [(name, True)]


def test_unknown_missing_and_oddly_named_parameters_are_each_named(
    client: TestClient, world: EdgeWorld
) -> None:
    params = {k: v for k, v in GOOD_ECHO.items() if k != "d"} | {"s; DROP TABLE items": 1}
    response = client.post(
        "/v1/calls", json={"entry": "edge.echo", "params": params}, headers=world.bearer("alice")
    )
    problem = assert_problem(response, 422, "invalid_input")
    assert {(e["parameter"], e["detail"].split(" (")[0]) for e in problem["errors"]} == {
        ("s; DROP TABLE items", "unknown parameter"),
        ("d", "required parameter missing"),
    }


@pytest.mark.parametrize(
    ("entry", "word", "argv"),
    [
        pytest.param(
            "edge.args_after_dashes", "-rf", ["--", "-rf"], id="dash-after-end-of-options"
        ),
        pytest.param("edge.args", "a\nb", ["a\nb"], id="newline"),
        pytest.param(
            "edge.args",
            "$(touch x); `id` | cat > y &",
            ["$(touch x); `id` | cat > y &"],
            id="shell",
        ),
        pytest.param("edge.args", "a b\tc", ["a b\tc"], id="whitespace"),
        pytest.param("edge.args", "ünï ✓", ["ünï ✓"], id="unicode"),
    ],
)
def test_a_command_value_is_exactly_one_argument(
    client: TestClient, world: EdgeWorld, entry: str, word: str, argv: list[str]
) -> None:
    result = _call(client, world, {"entry": entry, "params": {"word": word}})
    assert result["verdict"] == "ran_clean", result["error"]
    stdout = packet_file(client, world.bearer("alice"), result["packet_id"], "/data/stdout.txt")
    assert json.loads(stdout) == argv


@pytest.mark.parametrize(
    ("word", "detail"),
    [
        pytest.param("-rf", "a value starting with '-' would be read as an option", id="flag"),
        pytest.param(
            "--help", "a value starting with '-' would be read as an option", id="long-flag"
        ),
        pytest.param("a\x00b", "NUL character in value", id="nul"),
    ],
)
def test_a_command_value_that_could_become_an_option_or_split_is_refused(
    client: TestClient, world: EdgeWorld, word: str, detail: str
) -> None:
    response = client.post(
        "/v1/calls",
        json={"entry": "edge.args", "params": {"word": word}},
        headers=world.bearer("alice"),
    )
    problem = assert_problem(response, 422, "command_refused")
    assert "parameter word" in problem["detail"]
    assert detail in problem["detail"]


# --- bodies --------------------------------------------------------------------------------------


BODIES = [
    pytest.param(
        b'{"entry": "edge.echo", "params": {"s": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}",
        JSON,
        400,
        "http_error",
        id="nested-100k-deep",
    ),
    pytest.param(b'{"entry": "edge.echo"', JSON, 422, "invalid_request", id="truncated"),
    pytest.param(
        b'{"entry": "edge.echo"} trailing', JSON, 422, "invalid_request", id="trailing-garbage"
    ),
    pytest.param(b"", JSON, 422, "invalid_request", id="empty"),
    pytest.param(b"[1, 2]", JSON, 422, "invalid_request", id="an-array"),
    pytest.param(b'"edge.echo"', JSON, 422, "invalid_request", id="a-string"),
    pytest.param(b'{"entry": "edge.\xff\xfe"}', JSON, 400, "http_error", id="invalid-utf8"),
    pytest.param(
        b'{"entry": "edge.echo"}',
        {"content-type": "text/plain"},
        422,
        "invalid_request",
        id="text-plain",
    ),
    pytest.param(
        b"entry=edge.echo",
        {"content-type": "application/x-www-form-urlencoded"},
        422,
        "invalid_request",
        id="form",
    ),
    pytest.param(
        b'{"entry": "edge.echo", "sql": "DELETE FROM items"}',
        JSON,
        422,
        "invalid_request",
        id="unknown-field",
    ),
    pytest.param(
        b'{"entry": "edge.echo", "mode": "execute"}', JSON, 422, "invalid_request", id="bad-mode"
    ),
    pytest.param(
        b'{"entry": "edge.echo", "format": "../x"}', JSON, 422, "invalid_request", id="bad-format"
    ),
    pytest.param(
        b'{"entry": ["edge.echo"]}', JSON, 422, "invalid_request", id="entry-not-a-string"
    ),
    pytest.param(b'{"entry": "../../etc/passwd"}', JSON, 404, "unknown_entry", id="entry-path"),
]


@pytest.mark.parametrize(("body", "headers", "status", "code"), BODIES)
def test_a_malformed_body_is_a_problem_naming_what_is_wrong(
    client: TestClient,
    world: EdgeWorld,
    body: bytes,
    headers: dict[str, str],
    status: int,
    code: str,
) -> None:
    response = client.post("/v1/calls", content=body, headers=world.bearer("alice") | headers)
    assert_problem(response, status, code)


def test_a_huge_body_is_refused_by_the_parameter_it_overflows(
    client: TestClient, world: EdgeWorld
) -> None:
    body = {"entry": "edge.echo", "params": {**GOOD_ECHO, "s": "x" * 200_000}}
    response = client.post("/v1/calls", json=body, headers=world.bearer("alice"))
    problem = assert_problem(response, 422, "invalid_input")
    assert problem["errors"][0]["parameter"] == "s"
    assert "x" * 100 not in response.text  # the value is not echoed back


def test_a_packet_upload_over_the_limit_is_a_413(client: TestClient, world: EdgeWorld) -> None:
    limit = world.settings.packet_upload_max_bytes
    body = b"PK\x03\x04" + b"\x00" * (limit + 1)
    response = client.post(
        "/v1/packets/verify",
        content=body,
        headers=world.bearer("alice") | {"content-type": "application/zip"},
    )
    assert_problem(response, 413)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"entry": "edge.\\ud800"}', id="entry"),
        pytest.param(b'{"entry": "edge.echo", "params": {"\\udfff": 1}}', id="parameter-name"),
        pytest.param(b'{"entry": "edge.lookup", "params": {"name": "\\ud800"}}', id="string-value"),
    ],
)
def test_a_lone_surrogate_anywhere_in_a_call_is_a_422_naming_where(
    client: TestClient, world: EdgeWorld, body: bytes
) -> None:
    # Refused with the request body, before a contract: JCS could not encode it for the ledger.
    response = client.post("/v1/calls", content=body, headers=world.bearer("alice") | JSON)
    problem = assert_problem(response, 422, "invalid_request")
    [error] = problem["errors"]
    assert "lone surrogate" in error["detail"]
    where = "/entry" if b'"entry": "edge.\\ud800"' in body else "/params"
    assert (error["location"], error["pointer"]) == ("body", where)


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        pytest.param(
            b'{"entry": "edge.masked", "entry": "edge.lookup", "params": {"name": "x"}}',
            "/entry",
            id="entry",
        ),
        pytest.param(
            b'{"entry": "edge.lookup", "params": {"name": "x", "name": "y"}}',
            "/params/name",
            id="parameter",
        ),
        pytest.param(
            b'{"entry": "edge.lookup", "params": {"name": "x"}, "ENTRY": 1, "params": {}}',
            "/params",
            id="after-a-case-variant",
        ),
    ],
)
def test_a_body_with_a_repeated_key_is_refused_naming_where(
    client: TestClient, world: EdgeWorld, body: bytes, pointer: str
) -> None:
    # A body whose meaning depends on the parser (first or last key wins) runs nothing.
    ledger = client.app.state.runtime.ledger  # type: ignore[attr-defined]
    before = ledger.size()
    response = client.post("/v1/calls", content=body, headers=world.bearer("alice") | JSON)
    problem = assert_problem(response, 422, "invalid_request")
    [error] = problem["errors"]
    assert (error["location"], error["pointer"]) == ("body", pointer)
    assert "appears twice" in error["detail"]
    assert ledger.size() == before  # refused before anything: not even call.denied


# --- ids in URLs ---------------------------------------------------------------------------------

HOSTILE_IDS = {
    "dot-dot": "..",
    "encoded-dot-dot": "%2e%2e",
    "encoded-traversal": "..%2F..%2Fvar%2Fledger.sqlite",
    "backslash-traversal": "..%5C..%5Cledger.sqlite",
    "encoded-slash": "a%2Fb",
    "nul": "a%00b",
    "one-dot-leaders": "%E2%80%A4%E2%80%A4",
    "fullwidth-dots": "%EF%BC%8E%EF%BC%8E%EF%BC%8F",
    "encoded-surrogate": "%ED%A0%80",
    "bad-escape": "%zz",
    "overlong": "A" * 5000,
    "absolute": "%2Fetc%2Fpasswd",
}
ID_ROUTES = {
    "get-call": ("GET", "/v1/calls/{id}"),
    "call-events": ("GET", "/v1/calls/{id}/events"),
    "cancel-call": ("DELETE", "/v1/calls/{id}"),
    "get-packet": ("GET", "/v1/packets/{id}"),
    "packet-manifest": ("GET", "/v1/packets/{id}/manifest"),
    "packet-proof": ("GET", "/v1/packets/{id}/proof"),
    "catalog-entry": ("GET", "/v1/catalog/{id}"),
    "problem-page": ("GET", "/problems/{id}"),
}
_LEAKS = (b"SQLite format 3", b"root:x:0:0", b"PRIVATE+KEY", b"PK\x03\x04")


@pytest.mark.parametrize("route", ID_ROUTES)
@pytest.mark.parametrize("ident", HOSTILE_IDS.values(), ids=HOSTILE_IDS.keys())
def test_a_hostile_id_in_a_url_is_a_404_problem_and_reads_nothing(
    client: TestClient, world: EdgeWorld, ident: str, route: str
) -> None:
    method, template = ID_ROUTES[route]
    response = client.request(
        method, template.replace("{id}", ident), headers=world.bearer("carol")
    )
    assert_problem(response, 404)
    assert not any(leak in response.content for leak in _LEAKS)


@pytest.fixture(scope="module")
def alices_call(client: TestClient, world: EdgeWorld) -> dict[str, Any]:
    return _call(client, world, {"entry": "edge.lookup", "params": {"name": "Item 1"}})


@pytest.mark.parametrize(
    ("method", "template"),
    [
        pytest.param("GET", "/v1/calls/{call}", id="get-call"),
        pytest.param("GET", "/v1/calls/{call}/events", id="call-events"),
        pytest.param("DELETE", "/v1/calls/{call}", id="cancel-call"),
        pytest.param("GET", "/v1/packets/{packet}", id="get-packet"),
        pytest.param("GET", "/v1/packets/{packet}/manifest", id="packet-manifest"),
        pytest.param("GET", "/v1/packets/{packet}/proof", id="packet-proof"),
    ],
)
def test_another_principals_call_or_packet_is_a_403_for_a_peer(
    client: TestClient, world: EdgeWorld, alices_call: dict[str, Any], method: str, template: str
) -> None:
    path = template.format(call=alices_call["call_id"], packet=alices_call["packet_id"])
    assert client.request(method, path, headers=world.bearer("alice")).status_code in {200, 409}
    problem = assert_problem(
        client.request(method, path, headers=world.bearer("mallory")), 403, "policy_denied"
    )
    assert "mallory" in problem["detail"]


def test_no_hostile_input_changed_a_source(world: EdgeWorld, sources_before: Fingerprint) -> None:
    # Runs last in this module: every call above has been made against these sources.
    assert sources_before.diff(_sources(world)) == {}
