"""Configuration: find ``govex.toml``, read it with the environment, refuse what is wrong.

:func:`load_settings` is what the edges call (the CLI and the uvicorn factory). The file is,
in this order: the path given (``--config``), ``GOVEX_CONFIG``, else ``./govex.toml`` when it
exists; none is fine (environment variables only). Its top-level keys are the setting
names (``ledger_url``, ``[sources]``); pydantic-settings' ``TomlConfigSettingsSource``
reads it. A value set in both places is taken from the environment: command-line options
win over ``GOVEX_*`` variables, which win over the file, which wins over the defaults.

Every problem is reported at once (:class:`~service.errors.SettingsInvalid`), each with
its place: ``key 'ledger_ulr' in /etc/govex/govex.toml`` (with the nearest setting name
when it looks like a typo) or ``GOVEX_CHECKPOINT_INTERVAL_S``. A value is never repeated:
it may be a secret.

:func:`settings_table` renders docs/operations.md's table of every setting from the model.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
import types
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union, get_args, get_origin

from pydantic import SecretStr, ValidationError
from pydantic_core import PydanticUndefined
from pydantic_settings import SettingsError, TomlConfigSettingsSource

from service.errors import SettingsInvalid
from service.settings import Settings, settings_from_file

if TYPE_CHECKING:
    from collections.abc import Mapping

    from pydantic.fields import FieldInfo

CONFIG_ENV = "GOVEX_CONFIG"
DEFAULT_CONFIG = Path("govex.toml")
ENV_PREFIX = "GOVEX_"
_ENV_FIELD = re.compile(r'field "([a-z0-9_]+)"')


def config_file(
    explicit: Path | None = None, environ: Mapping[str, str] | None = None
) -> Path | None:
    """The configuration file to read: ``explicit``, else ``GOVEX_CONFIG``, else ``./govex.toml``.

    None when none is named and ``./govex.toml`` does not exist. A named file must exist
    (:func:`load_settings` refuses it otherwise).
    """
    env = os.environ if environ is None else environ
    if explicit is not None:
        return explicit
    named = env.get(CONFIG_ENV, "").strip()
    if named:
        return Path(named)
    return DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None


def load_settings(config: Path | None = None, **overrides: Any) -> Settings:  # noqa: ANN401 - field values
    """The settings: ``overrides`` (non-None), ``GOVEX_*`` variables, the file, the defaults.

    Raises :class:`SettingsInvalid` naming every problem: a named file that is missing or
    not TOML, an unknown key in the file (with the nearest setting name), a value that is
    refused (the key in the file, or the variable, and why).
    """
    path = config_file(config)
    values = {name: value for name, value in overrides.items() if value is not None}
    source = None if path is None else _file_source(path)
    try:
        return settings_from_file(source, **values)
    except ValidationError as exc:
        problems = [_problem(err, path, source, values) for err in exc.errors(include_url=False)]
        raise SettingsInvalid(problems, source=str(path or "")) from None
    except SettingsError as exc:  # a GOVEX_* variable that does not parse (JSON expected)
        match = _ENV_FIELD.search(str(exc))
        field = match.group(1) if match else "?"
        raise SettingsInvalid(
            [(_env_name(field), "does not parse: give a JSON value")], source="environment"
        ) from None


def _file_source(path: Path) -> TomlConfigSettingsSource:
    """Private: the TOML source of ``path``; :class:`SettingsInvalid` when it cannot be read."""
    if not path.is_file():
        raise SettingsInvalid(
            [(str(path), "configuration file does not exist (--config or GOVEX_CONFIG)")],
            source=str(path),
        )
    try:
        return TomlConfigSettingsSource(Settings, toml_file=path)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsInvalid([(str(path), f"not valid TOML: {exc}")], source=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsInvalid(
            [(str(path), f"cannot be read: {getattr(exc, 'strerror', None) or exc}")],
            source=str(path),
        ) from None


def _problem(
    err: Mapping[str, Any],
    path: Path | None,
    source: TomlConfigSettingsSource | None,
    overrides: Mapping[str, object],
) -> tuple[str, str]:
    """Private: where one pydantic error is to be fixed, and why (never the value)."""
    loc = tuple(str(part) for part in err["loc"])
    field = loc[0] if loc else ""
    inner = "".join(f"[{part!r}]" for part in loc[1:])
    if err["type"] == "extra_forbidden":  # only the file brings unknown keys
        return f"key {field!r} in {path}", "unknown setting" + _suggestion(field)
    if err["type"] == "missing":
        return field, f"required: set {field!r} in {path or 'govex.toml'} or {_env_name(field)}"
    if field in overrides:
        return f"{field}{inner} (command line)", err["msg"]
    if _env_name(field) in {name.upper() for name in os.environ}:
        return f"{_env_name(field)}{inner}", err["msg"]
    if source is not None and field in source.toml_data:
        return f"key {field + inner!r} in {path}", err["msg"]
    return f"{field}{inner}", err["msg"]


def _suggestion(key: str) -> str:
    """Private: ``" (did you mean 'x'?)"`` for a near miss of a setting name, else ``""``."""
    names = list(Settings.model_fields)
    bare = key.lower().removeprefix(ENV_PREFIX.lower())
    if bare in names:  # an environment variable name, or another case
        return f" (did you mean {bare!r}? keys in the file are setting names, without GOVEX_)"
    close = difflib.get_close_matches(bare, names, n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _env_name(field: str) -> str:
    return f"{ENV_PREFIX}{field.upper()}"


# --- the documented table -------------------------------------------------------------------

TABLE_HEADER = (
    "| key in `govex.toml` | environment variable | type | default | meaning |\n"
    "|---|---|---|---|---|\n"
)


def settings_table() -> str:
    """The Markdown table of every setting (docs/operations.md holds exactly this)."""
    rows = [
        f"| `{name}` | `{_env_name(name)}` | {_type_name(field.annotation)} | "
        f"{_default(field)} | {_cell(field.description or '')} |"
        for name, field in Settings.model_fields.items()
    ]
    return TABLE_HEADER + "\n".join(rows) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


_SIMPLE_TYPES: dict[object, str] = {
    Path: "path",
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    SecretStr: "secret string",
}


def _type_name(annotation: object) -> str:
    """Private: a reader's name for a field's type; a type not covered here is an error."""
    if annotation in _SIMPLE_TYPES:
        return _SIMPLE_TYPES[annotation]
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in {Union, types.UnionType}:
        named = [_type_name(arg) for arg in args if arg is not type(None)]
        if len(named) == 1:
            return named[0]
    if origin is dict and args == (str, str):
        return "table of strings"
    if origin is tuple and args == (str, ...):
        return "list of strings"
    raise TypeError(f"no documented name for the settings type {annotation!r}")


def _default(field: FieldInfo) -> str:
    """Private: the default as written in the file; ``required`` or ``unset`` when none."""
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if value is None or value is PydanticUndefined:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float):
        return f"`{value:g}`"
    if isinstance(value, dict):
        return "`{}`" if not value else f"`{value}`"
    return f"`{value}`"


TABLE_BEGIN = "<!-- settings-table:begin -->\n"
TABLE_END = "<!-- settings-table:end -->\n"
OPERATIONS_DOC = Path(__file__).resolve().parents[1] / "docs" / "operations.md"


def with_settings_table(text: str) -> str:
    """``text`` (docs/operations.md) with the generated table between its two markers."""
    begin = text.index(TABLE_BEGIN) + len(TABLE_BEGIN)
    end = text.index(TABLE_END, begin)
    return text[:begin] + settings_table() + text[end:]


def write_settings_table(path: Path = OPERATIONS_DOC) -> None:
    """Regenerate the table of docs/operations.md in place (a source checkout only)."""
    path.write_text(with_settings_table(path.read_text(encoding="utf-8")), encoding="utf-8")
