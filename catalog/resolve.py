"""Turn one raw ``[[query]]`` or ``[[command]]`` TOML table into a checked entry.

Pure: SQL bytes come from a ``read_sql`` callable. Problems come back as
data (:class:`Problem` with a key path, or a ready :class:`CatalogError` for
problems located in a SQL file), so :mod:`catalog.load` can add the
catalog.toml line and collect everything. The raw models here are the TOML
structure; the resolved models are in :mod:`catalog.model`.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from catalog.errors import CatalogError, CatalogLoadError, SqlRejected
from catalog.model import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_ROWS,
    DEFAULT_MAX_STDERR_BYTES,
    DEFAULT_TIMEOUT_MS,
    Claim,
    ClaimExpect,
    ClaimSurface,
    CommandEntry,
    CommandLimits,
    Engine,
    ExitVerdict,
    LeaseSpec,
    ParamSpec,
    ParamType,
    QueryEntry,
    claim_bound_problem,
    default_exit_codes,
)
from catalog.params import ValueRefused, coerce_value
from catalog.sqlcheck import Rejected, check_sql

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

_STRICT = ConfigDict(frozen=True, extra="forbid", strict=True)
_PARAM_NAME = re.compile(r"[a-z][a-z0-9_]*")
_PLACEHOLDER = re.compile(r"\{([a-z][a-z0-9_]*)\}")
_EXIT_CODE = re.compile(r"0|[1-9][0-9]{0,2}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_COLUMN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Never passed to a command: the service's own settings (a source URL may hold a password)
# and the dynamic loader's variables (they decide what code the executable runs).
_RESERVED_ENV_PREFIXES = ("GOVEX_", "LD_")
_MAX_EXIT_CODE = 255
_SHOWN_CHARS = 40
_NUMERIC = (ParamType.integer, ParamType.number)
_Model = TypeVar("_Model", bound=BaseModel)


@dataclass(frozen=True)
class Problem:
    """One problem inside an entry: ``key`` is the path within the entry table."""

    key: tuple[str, ...]
    detail: str


Found = list[Problem | CatalogError]


class _RawParam(BaseModel):
    model_config = _STRICT

    type: Literal["integer", "number", "string", "boolean", "date", "timestamp", "enum"]
    required: bool | None = None
    default: object = None  # checked by catalog.params.coerce_value
    min: object = None  # checked per type below
    max: object = None
    max_length: int | None = Field(default=None, gt=0)
    pattern: str | None = None
    choices: list[str] | None = None
    description: str = ""


class _RawClaim(BaseModel):
    model_config = _STRICT

    expect: ClaimExpect
    surface: ClaimSurface


class _RawEntry(BaseModel):
    model_config = _STRICT

    id: str
    title: str = Field(min_length=1)
    description: str = ""
    params: dict[str, _RawParam] = Field(default_factory=dict)
    timeout_ms: int = Field(default=DEFAULT_TIMEOUT_MS, gt=0)
    max_bytes: int = Field(default=DEFAULT_MAX_BYTES, gt=0)
    tags: list[str] = Field(default_factory=list)
    sensitive: bool = False
    requires_approval: bool = False
    tenant_scoped: bool = False
    tenant_param: str | None = None
    lease: LeaseSpec | None = None


class _RawQuery(_RawEntry):
    source: str
    sql: str
    max_rows: int = Field(default=DEFAULT_MAX_ROWS, gt=0)
    claim: _RawClaim | None = None
    sensitive_columns: list[str] = Field(default_factory=list)


class _RawCommand(_RawEntry):
    argv: list[str] = Field(min_length=1)
    mutating: bool
    exit_codes: dict[str, ExitVerdict] = Field(default_factory=default_exit_codes)
    env: list[str] = Field(default_factory=list)
    max_stderr_bytes: int = Field(default=DEFAULT_MAX_STDERR_BYTES, ge=0, le=DEFAULT_MAX_BYTES)
    limits: CommandLimits = Field(default_factory=CommandLimits)


def from_validation(exc: ValidationError, prefix: tuple[str, ...] = ()) -> list[Problem]:
    """One :class:`Problem` per pydantic error, keyed by its location."""
    found = []
    for err in exc.errors():
        kind = err["type"]
        if kind == "missing":
            detail = "required key missing"
        elif kind == "extra_forbidden":
            detail = "unknown key"
        else:
            detail = f"{err['msg']} (got {_show(err['input'])})"
        found.append(Problem((*prefix, *(str(p) for p in err["loc"])), detail))
    return found


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."


def check_sql_path(relative: str) -> str | None:
    """Why ``relative`` is not an acceptable SQL path, or ``None`` when it is."""
    if not relative or "\\" in relative or "\x00" in relative:
        return "must be a non-empty relative path with / separators"
    pure = PurePosixPath(relative)
    if pure.is_absolute() or re.match(r"[A-Za-z]:", relative):
        return "must be relative to the catalog directory, not absolute"
    if ".." in pure.parts:
        return "must not contain '..'"
    return None


def resolve_query(
    raw: Mapping[str, object],
    engines: Mapping[str, Engine],
    read_sql: Callable[[str], bytes],
) -> tuple[QueryEntry | None, Found]:
    """Check one ``[[query]]`` table; read and statically check its SQL."""
    try:
        q = _RawQuery.model_validate(raw)
    except ValidationError as exc:
        return None, list(from_validation(exc))
    found: Found = []
    params = _params(q.params, found)
    _tenancy(q, found)
    _sensitive_columns(q.sensitive_columns, found)
    claim = Claim(expect=q.claim.expect, surface=q.claim.surface) if q.claim else None
    bound = None if claim is None else claim_bound_problem(claim, q.max_rows)
    if bound is not None:
        found.append(Problem(("claim", "expect", bound[0]), bound[1]))
    engine = engines.get(q.source)
    if engine is None:
        declared = ", ".join(sorted(engines)) or "none"
        found.append(Problem(("source",), f"source {q.source!r} is not declared ({declared})"))
    sql = _read_sql(q.id, q.sql, read_sql, found)
    if engine is not None and sql is not None:
        decision = check_sql(sql, engine, list(q.params))
        if isinstance(decision, Rejected):
            found.append(
                SqlRejected(
                    entry=q.id, file=q.sql, line=decision.line, rule=decision.rule,
                    detail=decision.detail,
                )
            )  # fmt: skip
    if found or engine is None or sql is None or params is None:
        return None, found
    return _build(found, QueryEntry, id=q.id, title=q.title, description=q.description,
        source=q.source, engine=engine, sql_file=q.sql, sql=sql, params=params,
        timeout_ms=q.timeout_ms, max_rows=q.max_rows, max_bytes=q.max_bytes, tags=tuple(q.tags),
        sensitive=q.sensitive, requires_approval=q.requires_approval,
        tenant_scoped=q.tenant_scoped, tenant_param=q.tenant_param, lease=q.lease,
        claim=claim,
        sensitive_columns=tuple(q.sensitive_columns),
    )  # fmt: skip


def resolve_command(
    raw: Mapping[str, object], read_executable: Callable[[str], Iterable[bytes]]
) -> tuple[CommandEntry | None, Found]:
    """Check one ``[[command]]`` table: argv template, exit codes, ``mutating = false``, env.

    Pins the executable: ``read_executable(argv[0])`` yields its bytes (it may raise
    ``OSError`` or ``ValueError``: missing, not a regular file, not executable), and their
    SHA-256 becomes ``executable_sha256``, so the entry digest and the seal cover it.
    """
    try:
        c = _RawCommand.model_validate(raw)
    except ValidationError as exc:
        return None, list(from_validation(exc))
    found: Found = []
    params = _params(c.params, found)
    _tenancy(c, found)
    if c.mutating:
        found.append(Problem(("mutating",), "must be false: govex runs only non-mutating commands"))
    _argv(c.argv, c.params, found)
    pin = _pin_executable(c.argv[0], read_executable, found)
    for code in c.exit_codes:
        if not _EXIT_CODE.fullmatch(code) or int(code) > _MAX_EXIT_CODE:
            found.append(Problem(("exit_codes", code), "exit code must be a decimal 0..255"))
    _env(c.env, found)
    if found or params is None or pin is None:
        return None, found
    return _build(found, CommandEntry, id=c.id, title=c.title, description=c.description,
        argv=tuple(c.argv), executable_sha256=pin, params=params, timeout_ms=c.timeout_ms,
        max_bytes=c.max_bytes, exit_codes=dict(c.exit_codes), env=tuple(c.env),
        max_stderr_bytes=c.max_stderr_bytes, limits=c.limits, tags=tuple(c.tags),
        sensitive=c.sensitive, requires_approval=c.requires_approval,
        tenant_scoped=c.tenant_scoped, tenant_param=c.tenant_param, lease=c.lease,
    )  # fmt: skip


def _pin_executable(
    path: str, read_executable: Callable[[str], Iterable[bytes]], found: Found
) -> str | None:
    """SHA-256 (hex) of the executable at ``path``; ``None`` and a problem when unreadable.

    A path ``_argv`` already refuses (relative, placeholder) is not read.
    """
    if not path.startswith("/") or any(c in path for c in "{}\x00"):
        return None
    digest = hashlib.sha256()
    try:
        for block in read_executable(path):
            digest.update(block)
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        found.append(Problem(("argv", "0"), f"argv[0] {path} cannot be pinned: {reason}"))
        return None
    return digest.hexdigest()


def _env(names: Sequence[str], found: Found) -> None:
    seen: set[str] = set()
    for i, name in enumerate(names):
        key = ("env", str(i))
        if not _ENV_NAME.fullmatch(name):
            found.append(Problem(key, f"not an environment variable name: {_show(name)}"))
        elif name.upper().startswith(_RESERVED_ENV_PREFIXES):
            reserved = ", ".join(f"{p}*" for p in _RESERVED_ENV_PREFIXES)
            found.append(Problem(key, f"{name} is reserved ({reserved} never reach a command)"))
        elif name in seen:
            found.append(Problem(key, f"{name} is listed twice"))
        seen.add(name)


def _sensitive_columns(names: Sequence[str], found: Found) -> None:
    """Plain column names (matched against the result's column names at run time), no twice."""
    seen: set[str] = set()
    for i, name in enumerate(names):
        key = ("sensitive_columns", str(i))
        if not _COLUMN_NAME.fullmatch(name):
            found.append(
                Problem(key, f"not a plain column name ([A-Za-z_][A-Za-z0-9_]*): {_show(name)}")
            )
        elif name in seen:
            found.append(Problem(key, f"{name} is listed twice"))
        seen.add(name)


def _build(found: Found, model: type[_Model], **fields: object) -> tuple[_Model | None, Found]:
    try:
        return model.model_validate(fields), found
    except ValidationError as exc:  # defensive: the checks above should cover it
        return None, [*found, *from_validation(exc)]


def _read_sql(
    entry_id: str, path: str, read_sql: Callable[[str], bytes], found: Found
) -> str | None:
    why = check_sql_path(path)
    if why is not None:
        found.append(Problem(("sql",), f"SQL path {path!r} {why}"))
        return None
    try:
        data = read_sql(path)
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        found.append(Problem(("sql",), f"cannot read {path}: {reason}"))
        return None
    try:
        return data.decode("utf-8").replace("\r\n", "\n")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        found.append(CatalogLoadError("not valid UTF-8", file=path, line=line, entry=entry_id))
        return None


def _tenancy(raw: _RawEntry, found: Found) -> None:
    if raw.tenant_scoped and raw.tenant_param is None:
        found.append(Problem(("tenant_param",), "required when tenant_scoped = true"))
    if not raw.tenant_scoped and raw.tenant_param is not None:
        found.append(Problem(("tenant_param",), "only allowed with tenant_scoped = true"))
    if raw.tenant_param is not None and raw.tenant_param not in raw.params:
        found.append(Problem(("tenant_param",), f"names undeclared parameter {raw.tenant_param!r}"))
    key = raw.lease.resource_param if raw.lease is not None else None
    if key is not None and key not in raw.params:
        found.append(Problem(("lease", "resource_param"), f"names undeclared parameter {key!r}"))


def _argv(argv: Sequence[str], params: Mapping[str, _RawParam], found: Found) -> None:
    if not argv[0].startswith("/") or "{" in argv[0] or "}" in argv[0]:
        found.append(Problem(("argv", "0"), "argv[0] must be an absolute path, no placeholder"))
    used: set[str] = set()
    for i, item in enumerate(argv):
        if "\x00" in item:
            found.append(Problem(("argv", str(i)), "NUL character in argument"))
        if i == 0 or ("{" not in item and "}" not in item):
            continue
        match = _PLACEHOLDER.fullmatch(item)
        if match is None:
            found.append(
                Problem(("argv", str(i)), "a placeholder must be a whole argument: '{name}'")
            )
        elif match.group(1) not in params:
            found.append(Problem(("argv", str(i)), f"undeclared parameter {match.group(1)!r}"))
        else:
            used.add(match.group(1))
    found.extend(
        Problem(("params", name), "declared but not used in argv")
        for name in sorted(set(params) - used)
    )


def _params(raw: Mapping[str, _RawParam], found: Found) -> dict[str, ParamSpec] | None:
    specs: dict[str, ParamSpec] = {}
    before = len(found)
    for name, param in raw.items():
        key = ("params", name)
        if not _PARAM_NAME.fullmatch(name):
            found.append(Problem(key, "parameter name must match [a-z][a-z0-9_]*"))
            continue
        spec = _param(param, key, found)
        if spec is not None:
            specs[name] = spec
    return specs if len(found) == before else None


def _param(raw: _RawParam, key: tuple[str, ...], found: Found) -> ParamSpec | None:
    kind = ParamType(raw.type)
    before = len(found)
    for field, allowed in (
        ("min", _NUMERIC), ("max", _NUMERIC), ("max_length", (ParamType.string,)),
        ("pattern", (ParamType.string,)), ("choices", (ParamType.enum,)),
    ):  # fmt: skip
        if getattr(raw, field) is not None and kind not in allowed:
            found.append(Problem((*key, field), f"not allowed for type {kind}"))
    low, high = (_bound(raw, field, kind, key, found) for field in ("min", "max"))
    if low is not None and high is not None and low > high:
        found.append(Problem((*key, "min"), f"min {low} is greater than max {high}"))
    _string_and_enum_keys(raw, kind, key, found)
    if raw.default is not None and raw.required:
        found.append(Problem((*key, "required"), "a parameter with a default is not required"))
    if len(found) != before:
        return None
    spec = ParamSpec(
        type=kind, required=raw.default is None and raw.required is not False, min=low, max=high,
        max_length=raw.max_length, pattern=raw.pattern,
        choices=tuple(raw.choices) if raw.choices is not None else None,
        description=raw.description,
    )  # fmt: skip
    if raw.default is None:
        return spec
    try:
        default = coerce_value(spec, raw.default, from_text=False)
    except ValueRefused as exc:
        found.append(Problem((*key, "default"), f"invalid default: {exc}"))
        return None
    return spec.model_copy(update={"default": default})


def _string_and_enum_keys(
    raw: _RawParam, kind: ParamType, key: tuple[str, ...], found: Found
) -> None:
    if raw.pattern is not None:
        try:
            re.compile(raw.pattern)
        except re.error as exc:
            found.append(Problem((*key, "pattern"), f"not a valid regular expression: {exc}"))
    if kind is ParamType.enum and not raw.choices:
        found.append(Problem((*key, "choices"), "an enum needs a non-empty list of choices"))
    if raw.choices is not None and len(set(raw.choices)) != len(raw.choices):
        found.append(Problem((*key, "choices"), "choices must be unique"))


def _bound(
    raw: _RawParam, field: str, kind: ParamType, key: tuple[str, ...], found: Found
) -> int | float | None:
    value = getattr(raw, field)
    if value is None or kind not in _NUMERIC:
        return None
    integer_only = kind is ParamType.integer
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (integer_only and isinstance(value, float))
    ):
        expected = "an integer" if integer_only else "a number"
        found.append(Problem((*key, field), f"must be {expected} (got {_show(value)})"))
        return None
    if isinstance(value, float) and not math.isfinite(value):
        found.append(Problem((*key, field), "must be finite"))
        return None
    return value
