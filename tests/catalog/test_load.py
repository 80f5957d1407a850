"""Loading catalog.toml: the resolved document, and every problem named in place."""

# ruff: noqa: E501 - case tables read best as one case per line

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from catalog.errors import CatalogErrors, CatalogLoadError, SealError, SqlRejected
from catalog.load import SEAL_FILE, load_catalog_dir, parse_catalog, read_seal, write_seal
from catalog.model import CommandEntry, QueryEntry
from catalog.seal import compute_seal, entry_digest

if TYPE_CHECKING:
    from collections.abc import Callable

HEADER = '[catalog]\nname = "demo"\nversion = "1"\n\n[sources.demo]\nengine = "sqlite"\n'
GOOD_SQL = "SELECT id FROM t ORDER BY id\n"
MiB = 1024 * 1024


def _reader(files: dict[str, str]) -> Callable[[str], bytes]:
    def read(path: str) -> bytes:
        if path not in files:
            raise FileNotFoundError(2, "No such file or directory")
        return files[path].encode("utf-8")

    return read


def _errors(toml: str, files: dict[str, str] | None = None) -> list[CatalogLoadError | SqlRejected]:
    with pytest.raises((CatalogLoadError, SqlRejected, CatalogErrors)) as info:
        parse_catalog(toml, _reader(files or {"q.sql": GOOD_SQL}))
    found = info.value.errors if isinstance(info.value, CatalogErrors) else [info.value]
    assert all(isinstance(e, CatalogLoadError | SqlRejected) for e in found)
    return found  # type: ignore[return-value]


def _load_errors(toml: str, files: dict[str, str] | None = None) -> list[tuple[object, ...]]:
    return [
        (e.line, e.entry, e.key, e.detail)
        for e in _errors(toml, files)
        if isinstance(e, CatalogLoadError)
    ]


def test_loads_the_demo_catalog(write_catalog: Callable[..., Path]) -> None:
    catalog = load_catalog_dir(write_catalog())
    assert [e.id for e in catalog.entries] == [
        "orders.by_customer",
        "orders.count",
        "system.uptime",
    ]
    query = catalog.entry("orders.by_customer")
    assert isinstance(query, QueryEntry)
    assert query.engine == "sqlite"
    assert query.sql.startswith("-- orders of one customer\nSELECT id")
    assert query.timeout_ms == 5000
    assert query.params["customer_id"].required is True
    command = catalog.entry("system.uptime")
    assert isinstance(command, CommandEntry)
    assert command.exit_codes == {"0": "ran_clean", "1": "ran_with_drift"}


def test_resolved_document_shape(write_catalog: Callable[..., Path]) -> None:
    doc = load_catalog_dir(write_catalog()).model_dump(mode="json")
    assert list(doc) == ["format", "name", "version", "entries"]
    assert doc["format"] == "govex.catalog/v1"
    query = doc["entries"][0]
    assert set(query) == {
        "kind", "id", "title", "description", "source", "engine", "sql_file", "sql", "params",
        "timeout_ms", "max_rows", "max_bytes", "tags", "sensitive", "requires_approval",
        "tenant_scoped", "tenant_param", "lease", "claim", "sensitive_columns",
    }  # fmt: skip
    assert query["params"]["customer_id"] == {
        "type": "integer", "required": True, "default": None, "min": 1, "max": 1000000,
        "max_length": None, "pattern": None, "choices": None, "description": "",
    }  # fmt: skip
    command = doc["entries"][2]
    assert set(command) == {
        "kind", "id", "title", "description", "argv", "executable_sha256", "params",
        "timeout_ms", "max_bytes", "max_stderr_bytes", "mutating", "exit_codes", "env",
        "limits", "tags", "sensitive", "requires_approval", "tenant_scoped", "tenant_param",
        "lease",
    }  # fmt: skip
    assert command["limits"] == {
        "cpu_seconds": 30, "memory_bytes": 1024 * MiB, "file_size_bytes": 64 * MiB,
        "open_files": 64,
    }  # fmt: skip
    assert (command["env"], command["max_stderr_bytes"]) == ([], MiB)
    pinned = hashlib.sha256(Path("/usr/bin/uptime").read_bytes()).hexdigest()
    assert command["executable_sha256"] == pinned


def test_crlf_is_normalized() -> None:
    toml = HEADER + '[[query]]\nid = "a"\ntitle = "A"\nsource = "demo"\nsql = "q.sql"\n'
    catalog = parse_catalog(toml, _reader({"q.sql": "SELECT id\r\nFROM t\r\nORDER BY id\r\n"}))
    entry = catalog.entry("a")
    assert isinstance(entry, QueryEntry)
    assert entry.sql == "SELECT id\nFROM t\nORDER BY id\n"


def test_sql_refusal_names_entry_file_line_and_rule() -> None:
    toml = (
        HEADER
        + '[[query]]\nid = "orders.bad"\ntitle = "Bad"\nsource = "demo"\nsql = "queries/x.sql"\n'
    )
    sql = "SELECT id\nFROM orders\nORDER BY id FOR UPDATE\n"
    with pytest.raises(SqlRejected) as info:
        parse_catalog(toml, _reader({"queries/x.sql": sql}))
    error = info.value
    assert (error.entry, error.file, error.line, error.rule) == (
        "orders.bad", "queries/x.sql", 3, "locking_clause",
    )  # fmt: skip
    assert str(error) == (
        "queries/x.sql:3: entry orders.bad: rule locking_clause: FOR UPDATE / FOR SHARE locks rows"
    )


def test_toml_syntax_error_has_line() -> None:
    [error] = _errors(HEADER + "[[query]]\nid = \n")
    assert isinstance(error, CatalogLoadError)
    assert (error.file, error.line) == ("catalog.toml", 8)
    assert error.detail.startswith("invalid TOML: Invalid value")


def test_all_problems_are_collected_with_lines() -> None:
    toml = (
        HEADER  # lines 1-6
        + "\n[[query]]\n"  # 8
        + 'id = "a.one"\n'  # 9
        + 'title = "One"\n'  # 10
        + 'source = "nowhere"\n'  # 11
        + 'sql = "q.sql"\n'  # 12
        + "colour = 1\n"  # 13
        + "\n[query.params.n]\n"  # 15
        + 'type = "integer"\n'  # 16
        + "min = 10\n"  # 17
        + "max = 1\n"  # 18
        + "\n[[query]]\n"  # 20
        + 'id = "a.one"\n'  # 21
        + "\n[[command]]\n"  # 23
        + 'id = "c.two"\n'  # 24
        + 'title = "Two"\n'  # 25
        + 'argv = ["rm", "-rf", "x{n}"]\n'  # 26
        + "mutating = true\n"  # 27
        + "[command.params.n]\n"  # 28
        + 'type = "string"\n'  # 29
    )
    assert _load_errors(toml) == [
        (13, "a.one", "colour", "unknown key"),
        (21, "a.one", "id", "duplicate entry id (already used by an earlier [[query]])"),
        (27, "c.two", "mutating", "must be false: govex runs only non-mutating commands"),
        (26, "c.two", "argv.0", "argv[0] must be an absolute path, no placeholder"),
        (26, "c.two", "argv.2", "a placeholder must be a whole argument: '{name}'"),
        (28, "c.two", "params.n", "declared but not used in argv"),
    ]


def test_semantic_problems_of_one_query() -> None:
    toml = (
        HEADER
        + '[[query]]\nid = "a.one"\ntitle = "One"\nsource = "nowhere"\nsql = "q.sql"\n'  # 7-11
        + "tenant_scoped = true\n"  # 12
        + '[query.params.n]\ntype = "integer"\nmin = 10\nmax = 1\n'  # 13-16
        + '[query.params.s]\ntype = "string"\nmin = 1\npattern = "("\n'  # 17-20
        + '[query.params.e]\ntype = "enum"\n'  # 21-22
        + '[query.params.d]\ntype = "date"\nrequired = true\ndefault = 2026-13-01\n'
    )
    with pytest.raises(CatalogLoadError) as info:  # invalid TOML date: stops before the rest
        parse_catalog(toml, _reader({}))
    assert info.value.line == 26
    toml = toml.replace("2026-13-01", "2026-01-01")
    found = _load_errors(toml, {"q.sql": "SELECT 1 ORDER BY 1"})
    assert found == [
        (15, "a.one", "params.n.min", "min 10 is greater than max 1"),
        (19, "a.one", "params.s.min", "not allowed for type string"),
        (20, "a.one", "params.s.pattern", found[2][3]),
        (21, "a.one", "params.e.choices", "an enum needs a non-empty list of choices"),
        (25, "a.one", "params.d.required", "a parameter with a default is not required"),
        (7, "a.one", "tenant_param", "required when tenant_scoped = true"),
        (10, "a.one", "source", "source 'nowhere' is not declared (demo)"),
    ]
    assert str(found[2][3]).startswith("not a valid regular expression")


@pytest.mark.parametrize(
    ("path", "detail"),
    [
        pytest.param("../x.sql", "SQL path '../x.sql' must not contain '..'", id="dotdot"),
        pytest.param("/etc/passwd", "SQL path '/etc/passwd' must be relative to the catalog directory, not absolute", id="absolute"),
        pytest.param("a\\\\b.sql", "SQL path 'a\\\\b.sql' must be a non-empty relative path with / separators", id="backslash"),
        pytest.param("missing.sql", "cannot read missing.sql: No such file or directory", id="missing"),
    ],
)  # fmt: skip
def test_sql_path_problems(path: str, detail: str) -> None:
    toml = HEADER + f'[[query]]\nid = "a"\ntitle = "A"\nsource = "demo"\nsql = "{path}"\n'
    assert _load_errors(toml) == [(11, "a", "sql", detail)]


def test_symlink_escape_is_refused(write_catalog: Callable[..., Path], tmp_path: Path) -> None:
    root = write_catalog()
    outside = tmp_path / "outside.sql"
    outside.write_text(GOOD_SQL, encoding="utf-8")
    (root / "queries" / "orders_count.sql").unlink()
    (root / "queries" / "orders_count.sql").symlink_to(outside)
    with pytest.raises(CatalogLoadError) as info:
        load_catalog_dir(root)
    assert (info.value.entry, info.value.key) == ("orders.count", "sql")
    assert "resolves outside the catalog directory" in info.value.detail


def test_invalid_utf8_sql_names_the_sql_file() -> None:
    toml = HEADER + '[[query]]\nid = "a"\ntitle = "A"\nsource = "demo"\nsql = "q.sql"\n'
    with pytest.raises(CatalogLoadError) as info:
        parse_catalog(toml, lambda _: b"SELECT 1\n-- \xff\n")
    assert (info.value.file, info.value.line, info.value.entry) == ("q.sql", 2, "a")


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        pytest.param('[catalog]\nname = "x"\n', [(1, None, "catalog.version", "required key missing")], id="no-version"),
        pytest.param('[sources.a]\nengine = "sqlite"\n', [(None, None, "catalog", "missing [catalog] table with name and version")], id="no-catalog"),
        pytest.param("extra = 1\n" + HEADER, [(1, None, "extra", "unknown top-level key (allowed: catalog, sources, query, command)")], id="unknown-top-level"),
        pytest.param(HEADER + '[sources.pg]\nengine = "mysql"\n', [(8, None, "sources.pg.engine", "Input should be 'sqlite' or 'postgresql' (got 'mysql')")], id="bad-engine"),
        pytest.param(HEADER + '[[query]]\ntitle = "x"\n', [(7, "query[0]", "id", "required key missing")], id="missing-id"),
        pytest.param(HEADER + '[[query]]\nid = "Bad-Id"\n', [(8, "query[0]", "id", "must match ^[a-z][a-z0-9_]*(\\.[a-z][a-z0-9_]*)*$")], id="bad-id"),
        pytest.param(HEADER + '[[command]]\nid = "c"\ntitle = "C"\nargv = ["/bin/true"]\n', [(7, "c", "mutating", "required key missing")], id="mutating-required"),
        pytest.param(HEADER + '[[command]]\nid = "c"\ntitle = "C"\nargv = ["/bin/echo", "{x}"]\nmutating = false\nexit_codes = { "256" = "ran_clean" }\n', [(10, "c", "argv.1", "undeclared parameter 'x'"), (12, "c", "exit_codes.256", "exit code must be a decimal 0..255")], id="command-template"),
        pytest.param(HEADER + '[[command]]\nid = "c"\ntitle = "C"\nargv = ["/bin/echo"]\nmutating = false\nexit_codes = { "0" = "blocked" }\n', [(12, "c", "exit_codes.0", "Input should be 'ran_clean', 'ran_with_drift' or 'error_running' (got 'blocked')")], id="exit-verdict"),
        pytest.param(HEADER + '[[query]]\nid = "q"\ntitle = "Q"\nsource = "demo"\nsql = "q.sql"\nclaim = { expect = "maybe", surface = "exhaustive" }\n', [(12, "q", "claim.expect", 'expect is "empty" or a row-count bound such as { max_rows = 10 } (got \'maybe\')')], id="claim"),
    ],
)  # fmt: skip
def test_structure_problems(toml: str, expected: list[tuple[object, ...]]) -> None:
    assert _load_errors(toml) == expected


def test_param_default_is_validated_and_normalized() -> None:
    toml = (
        HEADER
        + '[[query]]\nid = "q"\ntitle = "Q"\nsource = "demo"\nsql = "q.sql"\n'
        + '[query.params.since]\ntype = "date"\ndefault = 2026-01-31\n'
        + '[query.params.n]\ntype = "integer"\nmax = 5\ndefault = 9\n'
    )
    sql = "SELECT 1 FROM t WHERE d >= :since AND n = :n ORDER BY 1"
    assert _load_errors(toml, {"q.sql": sql}) == [
        (18, "q", "params.n.default", "invalid default: 9 is above the maximum 5")
    ]
    catalog = parse_catalog(toml.replace("default = 9", "default = 3"), _reader({"q.sql": sql}))
    since = catalog.entry("q").params["since"]
    assert (since.default, since.required) == ("2026-01-31", False)


_SENSITIVE = HEADER + '[[query]]\nid = "q"\ntitle = "Q"\nsource = "demo"\nsql = "q.sql"\n'


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param('sensitive_columns = ["email", "e mail"]\n', [(12, "q", "sensitive_columns.1", "not a plain column name ([A-Za-z_][A-Za-z0-9_]*): 'e mail'")], id="not-plain"),
        pytest.param('sensitive_columns = ["t.email"]\n', [(12, "q", "sensitive_columns.0", "not a plain column name ([A-Za-z_][A-Za-z0-9_]*): 't.email'")], id="qualified"),
        pytest.param('sensitive_columns = ["email", "email"]\n', [(12, "q", "sensitive_columns.1", "email is listed twice")], id="twice"),
        pytest.param('sensitive_columns = "email"\n', [(12, "q", "sensitive_columns", "Input should be a valid list (got 'email')")], id="not-a-list"),
    ],
)  # fmt: skip
def test_sensitive_columns_problems(line: str, expected: list[tuple[object, ...]]) -> None:
    assert _load_errors(_SENSITIVE + line, {"q.sql": "SELECT 1 AS email"}) == expected


def test_sensitive_columns_are_resolved_and_covered_by_the_entry_digest() -> None:
    sql = _reader({"q.sql": "SELECT email FROM t ORDER BY email"})
    plain = parse_catalog(_SENSITIVE, sql).entry("q")
    masked = parse_catalog(_SENSITIVE + 'sensitive_columns = ["email"]\n', sql).entry("q")
    assert isinstance(masked, QueryEntry)
    assert masked.sensitive_columns == ("email",)
    assert entry_digest(plain) != entry_digest(masked)


def test_commands_have_no_sensitive_columns() -> None:
    toml = (
        HEADER
        + '[[command]]\nid = "c"\ntitle = "C"\nargv = ["/bin/true"]\nmutating = false\nsensitive_columns = ["x"]\n'
    )
    assert _load_errors(toml) == [(12, "c", "sensitive_columns", "unknown key")]


def test_seal_round_trip(write_catalog: Callable[..., Path]) -> None:
    root = write_catalog()
    seal = compute_seal(load_catalog_dir(root), datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    write_seal(root / SEAL_FILE, seal)
    text = (root / SEAL_FILE).read_text(encoding="utf-8")
    assert text == json.dumps(seal.model_dump(mode="json"), indent=2) + "\n"
    assert read_seal(root / SEAL_FILE) == seal


def test_bad_seal_file_names_the_field(tmp_path: Path) -> None:
    (tmp_path / SEAL_FILE).write_text('{"format": "govex.seal/v1"}', encoding="utf-8")
    with pytest.raises(SealError, match="catalog: Field required") as info:
        read_seal(tmp_path / SEAL_FILE)
    assert info.value.where == str(tmp_path / SEAL_FILE)
    with pytest.raises(SealError, match="cannot read seal"):
        read_seal(tmp_path / "missing.json")


def _command_toml(argv0: str, extra: str = "") -> str:
    return (
        HEADER  # lines 1-6
        + "[[command]]\n"  # 7
        + 'id = "c"\ntitle = "C"\n'  # 8-9
        + f'argv = ["{argv0}", "--", "{{day}}"]\n'  # 10
        + "mutating = false\n"  # 11
        + extra
        + '[command.params.day]\ntype = "date"\n'
    )


def _script(path: Path, body: bytes = b"#!/bin/sh\necho hi\n", mode: int = 0o755) -> Path:
    path.write_bytes(body)
    path.chmod(mode)
    return path


def test_command_executable_is_pinned_by_its_sha256(tmp_path: Path) -> None:
    script = _script(tmp_path / "tool")
    toml = _command_toml(str(script), 'env = ["TZ", "LANG"]\nmax_stderr_bytes = 0\n'
                         "limits = { cpu_seconds = 2, open_files = 16 }\n")  # fmt: skip
    entry = parse_catalog(toml, _reader({})).entry("c")
    assert isinstance(entry, CommandEntry)
    assert entry.executable_sha256 == hashlib.sha256(script.read_bytes()).hexdigest()
    assert (entry.env, entry.max_stderr_bytes) == (("TZ", "LANG"), 0)
    assert (entry.limits.cpu_seconds, entry.limits.open_files) == (2, 16)
    assert entry.limits.memory_bytes == 1024 * MiB  # unset limits keep their defaults
    _script(script, b"#!/bin/sh\necho changed\n")
    again = parse_catalog(toml, _reader({})).entry("c")
    assert isinstance(again, CommandEntry)
    assert again.executable_sha256 != entry.executable_sha256


def test_command_executable_through_a_link_pins_the_target(tmp_path: Path) -> None:
    script = _script(tmp_path / "tool")
    (tmp_path / "link").symlink_to(script)
    entry = parse_catalog(_command_toml(str(tmp_path / "link")), _reader({})).entry("c")
    assert isinstance(entry, CommandEntry)
    assert entry.executable_sha256 == hashlib.sha256(script.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        pytest.param(lambda d: d / "missing", "No such file or directory", id="missing"),
        pytest.param(lambda d: d, "not a regular file", id="directory"),
        pytest.param(lambda d: _make_fifo(d / "fifo"), "not a regular file", id="fifo"),
        pytest.param(lambda d: _script(d / "tool", mode=0o644), "no execute permission", id="not-executable"),
    ],
)  # fmt: skip
def test_an_executable_that_cannot_be_pinned_names_argv0(
    tmp_path: Path, make: Callable[[Path], Path], reason: str
) -> None:
    path = make(tmp_path)
    assert _load_errors(_command_toml(str(path))) == [
        (10, "c", "argv.0", f"argv[0] {path} cannot be pinned: {reason}")
    ]


def _make_fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        pytest.param('env = ["A=B"]\n', [(12, "c", "env.0", "not an environment variable name: 'A=B'")], id="env-name"),
        pytest.param('env = ["GOVEX_SOURCES"]\n', [(12, "c", "env.0", "GOVEX_SOURCES is reserved (GOVEX_*, LD_* never reach a command)")], id="env-govex"),
        pytest.param('env = ["ld_preload"]\n', [(12, "c", "env.0", "ld_preload is reserved (GOVEX_*, LD_* never reach a command)")], id="env-loader"),
        pytest.param('env = ["TZ", "TZ"]\n', [(12, "c", "env.1", "TZ is listed twice")], id="env-twice"),
        pytest.param("max_stderr_bytes = -1\n", [(12, "c", "max_stderr_bytes", "Input should be greater than or equal to 0 (got -1)")], id="stderr-cap"),
        pytest.param("limits = { cpu_seconds = 0 }\n", [(12, "c", "limits.cpu_seconds", "Input should be greater than or equal to 1 (got 0)")], id="cpu-limit"),
        pytest.param("limits = { memory_bytes = 1024 }\n", [(12, "c", "limits.memory_bytes", "Input should be greater than or equal to 16777216 (got 1024)")], id="memory-limit"),
        pytest.param("limits = { nice = 5 }\n", [(12, "c", "limits.nice", "unknown key")], id="unknown-limit"),
    ],
)  # fmt: skip
def test_command_settings_problems(expected: list[tuple[object, ...]], extra: str) -> None:
    assert _load_errors(_command_toml("/bin/echo", extra)) == expected
