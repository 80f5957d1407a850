"""The configuration file with the environment: precedence, refusals, the documented table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from service.config import (
    OPERATIONS_DOC,
    config_file,
    load_settings,
    settings_table,
    with_settings_table,
)
from service.errors import SettingsInvalid
from service.settings import Settings

REPO = Path(__file__).resolve().parents[2]
BASE = 'catalog_dir = "cat"\nkeys_file = "keys.json"\n'


@pytest.fixture(autouse=True)
def _no_ambient_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each test starts in an empty folder (no ./govex.toml) without GOVEX_* variables."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GOVEX_CONFIG", raising=False)


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _refusal(config: Path | None = None, **overrides: object) -> SettingsInvalid:
    with pytest.raises(SettingsInvalid) as caught:
        load_settings(config, **overrides)
    return caught.value


# --- finding and reading the file ------------------------------------------------------------


def test_the_file_gives_every_setting_it_names(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "g.toml",
        BASE + 'ledger_url = "sqlite:///l.sqlite"\npacket_retention_days = 30\n'
        'jwt_algorithms = ["EdDSA", "ES256"]\n[sources]\ndemo = "demo.sqlite"\n',
    )
    settings = load_settings(path)
    assert settings.catalog_dir == Path("cat")
    assert settings.ledger_url == "sqlite:///l.sqlite"
    assert settings.packet_retention_days == 30
    assert settings.jwt_algorithms == ("EdDSA", "ES256")
    assert settings.sources == {"demo": "demo.sqlite"}
    assert settings.checkpoint_interval_s == 60  # the default where the file is silent


def test_the_environment_wins_over_the_file_and_options_over_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path / "g.toml", BASE + 'ledger_url = "sqlite:///file.sqlite"\n')
    monkeypatch.setenv("GOVEX_LEDGER_URL", "sqlite:///env.sqlite")
    monkeypatch.setenv("GOVEX_PROVISIONAL", "false")
    assert load_settings(path).ledger_url == "sqlite:///env.sqlite"
    assert load_settings(path, provisional=True).provisional is True
    assert load_settings(path, provisional=None).provisional is False  # None: not given


def test_govex_config_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path / "elsewhere.toml", BASE)
    monkeypatch.setenv("GOVEX_CONFIG", str(path))
    assert config_file() == path
    assert load_settings().keys_file == Path("keys.json")
    explicit = _write(tmp_path / "explicit.toml", BASE.replace("keys.json", "other.json"))
    assert load_settings(explicit).keys_file == Path("other.json")  # --config wins


def test_a_govex_toml_in_the_working_directory_is_read(tmp_path: Path) -> None:
    assert config_file() is None
    _write(tmp_path / "govex.toml", BASE)
    assert config_file() == Path("govex.toml")
    assert load_settings().catalog_dir == Path("cat")


def test_without_a_file_the_environment_alone_configures(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOVEX_CATALOG_DIR", "c")
    monkeypatch.setenv("GOVEX_KEYS_FILE", "k")
    monkeypatch.setenv("GOVEX_SOURCES", '{"demo": "d.sqlite"}')
    assert load_settings().sources == {"demo": "d.sqlite"}


# --- refusals: each names its place ----------------------------------------------------------


def test_an_unknown_key_is_refused_naming_it_the_file_and_the_nearest_name(
    tmp_path: Path,
) -> None:
    path = _write(tmp_path / "g.toml", BASE + 'ledger_ulr = "x"\nfrobnicate = 1\n')
    exc = _refusal(path)
    assert exc.problems == (
        (f"key 'ledger_ulr' in {path}", "unknown setting (did you mean 'ledger_url'?)"),
        (f"key 'frobnicate' in {path}", "unknown setting"),
    )
    assert exc.where == f"key 'ledger_ulr' in {path}"


def test_an_environment_variable_name_in_the_file_is_pointed_to_its_key(tmp_path: Path) -> None:
    path = _write(tmp_path / "g.toml", BASE + 'GOVEX_LEDGER_URL = "x"\n')
    ((where, detail),) = _refusal(path).problems
    assert where == f"key 'GOVEX_LEDGER_URL' in {path}"
    assert "did you mean 'ledger_url'?" in detail


def test_an_invalid_value_names_the_key_in_the_file_and_why(tmp_path: Path) -> None:
    path = _write(tmp_path / "g.toml", BASE + "checkpoint_interval_s = -1\njwt_leeway_s = 'x'\n")
    problems = dict(_refusal(path).problems)
    assert set(problems) == {
        f"key 'checkpoint_interval_s' in {path}",
        f"key 'jwt_leeway_s' in {path}",
    }
    assert "greater than or equal to 0" in problems[f"key 'checkpoint_interval_s' in {path}"]


def test_an_invalid_variable_is_named_as_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path / "g.toml", BASE + "checkpoint_interval_s = 5\n")
    monkeypatch.setenv("GOVEX_CHECKPOINT_INTERVAL_S", "-3")
    ((where, detail),) = _refusal(path).problems
    assert where == "GOVEX_CHECKPOINT_INTERVAL_S"  # the variable won, so it is at fault
    assert "greater than or equal to 0" in detail


def test_a_variable_that_does_not_parse_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOVEX_CATALOG_DIR", "c")
    monkeypatch.setenv("GOVEX_KEYS_FILE", "k")
    monkeypatch.setenv("GOVEX_SOURCES", "not json")
    ((where, detail),) = _refusal().problems
    assert where == "GOVEX_SOURCES"
    assert "JSON" in detail


def test_a_nested_value_is_named_with_its_path(tmp_path: Path) -> None:
    path = _write(tmp_path / "g.toml", BASE + "[sources]\ndemo = 3\n")
    ((where, _),) = _refusal(path).problems
    assert where == f"key \"sources['demo']\" in {path}"


def test_a_missing_required_setting_says_where_to_set_it(tmp_path: Path) -> None:
    path = _write(tmp_path / "g.toml", 'catalog_dir = "c"\n')
    ((where, detail),) = _refusal(path).problems
    assert where == "keys_file"
    assert detail == f"required: set 'keys_file' in {path} or GOVEX_KEYS_FILE"


def test_a_refused_value_is_never_repeated(tmp_path: Path) -> None:
    secret = "postgresql://reader:s3cret-pw@db.internal/sales"
    path = _write(tmp_path / "g.toml", BASE + f'sources = "{secret}"\nmetrics_token = 12345\n')
    exc = _refusal(path)
    text = str(exc) + repr(exc.problems)
    assert "s3cret-pw" not in text
    assert "12345" not in text
    assert {where for where, _ in exc.problems} == {
        f"key 'sources' in {path}",
        f"key 'metrics_token' in {path}",
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(None, "configuration file does not exist", id="missing"),
        pytest.param("catalog_dir = [unclosed\n", "not valid TOML", id="not-toml"),
    ],
)
def test_a_named_file_that_cannot_be_read_is_refused(
    tmp_path: Path, text: str | None, expected: str
) -> None:
    path = tmp_path / "g.toml"
    if text is not None:
        _write(path, text)
    ((where, detail),) = _refusal(path).problems
    assert where == str(path)
    assert expected in detail


def test_settings_stay_frozen_and_strict() -> None:
    settings = Settings(catalog_dir=Path("c"), keys_file=Path("k"))
    with pytest.raises(ValidationError):
        settings.origin = "x"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        Settings(catalog_dir=Path("c"), keys_file=Path("k"), nope=1)  # type: ignore[call-arg]


def test_settings_built_directly_never_read_a_file(tmp_path: Path) -> None:
    _write(tmp_path / "govex.toml", BASE + 'origin = "from.file/ledger"\n')
    assert Settings(catalog_dir=Path("c"), keys_file=Path("k")).origin != "from.file/ledger"


def test_the_metrics_token_stays_hidden(tmp_path: Path) -> None:
    path = _write(tmp_path / "g.toml", BASE + 'metrics_token = "tok-secret-1"\n')
    settings = load_settings(path)
    assert settings.metrics_token is not None
    assert settings.metrics_token.get_secret_value() == "tok-secret-1"
    assert "tok-secret-1" not in repr(settings)


# --- the example and the documented table ----------------------------------------------------


def test_the_example_file_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    settings = load_settings(Path("examples/govex.toml"))
    assert settings.catalog_dir == Path("examples/demo/catalog")
    assert settings.sources == {"demo": "var/demo/demo.sqlite"}
    assert settings.packet_retention_days == 90
    assert settings.metrics_token is None
    assert (REPO / settings.catalog_dir / "catalog.toml").is_file()
    assert (REPO / settings.keys_file).is_file()


def test_the_operations_doc_holds_the_generated_table() -> None:
    text = OPERATIONS_DOC.read_text(encoding="utf-8")
    assert text == with_settings_table(text), (
        "docs/operations.md's settings table differs from the model: regenerate it with "
        '.venv/bin/python -c "from service.config import write_settings_table; '
        'write_settings_table()"'
    )


def test_the_table_names_every_setting_and_nothing_else() -> None:
    text = OPERATIONS_DOC.read_text(encoding="utf-8")
    keys = re.findall(r"^\| `([a-z0-9_]+)` \| `GOVEX_([A-Z0-9_]+)` \|", text, re.MULTILINE)
    assert [key for key, _ in keys] == list(Settings.model_fields)
    assert all(env == key.upper() for key, env in keys)
    assert settings_table().count("\n") == len(Settings.model_fields) + 2
