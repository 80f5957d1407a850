"""The resolved catalog models: frozen, strict, closed."""

# ruff: noqa: E501 - case tables read best as one case per line

from __future__ import annotations

import pytest
from pydantic import ValidationError

from catalog.errors import UnknownEntry
from catalog.model import (
    CommandEntry,
    ParamSpec,
    ParamType,
    QueryEntry,
    ResolvedCatalog,
    Seal,
)


def _query(entry_id: str = "orders.all") -> QueryEntry:
    return QueryEntry(
        id=entry_id, title="All", source="demo", engine="sqlite", sql_file="q.sql",
        sql="SELECT 1 ORDER BY 1",
    )  # fmt: skip


PIN = "ab" * 32


def _command(entry_id: str = "system.uptime") -> CommandEntry:
    return CommandEntry(
        id=entry_id, title="Uptime", argv=("/usr/bin/uptime",), executable_sha256=PIN
    )


def test_entry_lookup() -> None:
    catalog = ResolvedCatalog(name="demo", version="1", entries=(_query(), _command()))
    assert catalog.entry("system.uptime").kind == "command"
    assert set(catalog.by_id) == {"orders.all", "system.uptime"}
    with pytest.raises(UnknownEntry) as info:
        catalog.entry("nope")
    assert info.value.entry == "nope"


def test_entries_must_be_sorted_and_unique() -> None:
    with pytest.raises(ValidationError, match="sorted by id"):
        ResolvedCatalog(name="demo", version="1", entries=(_command(), _query()))
    with pytest.raises(ValidationError, match="sorted by id"):
        ResolvedCatalog(name="demo", version="1", entries=(_query(), _query()))


def test_models_are_frozen() -> None:
    entry = _query()
    with pytest.raises(ValidationError, match="frozen"):
        entry.title = "changed"


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda: ParamSpec(type=ParamType.integer, colour="red"), id="extra-key"),
        pytest.param(lambda: ParamSpec(type=ParamType.integer, min="1"), id="strict-number"),
        pytest.param(lambda: ParamSpec(type="integer"), id="strict-enum"),
        pytest.param(lambda: _query("Bad Id"), id="entry-id-pattern"),
        pytest.param(lambda: CommandEntry(id="c", title="C", argv=("/bin/true",), executable_sha256=PIN, mutating=True), id="mutating"),
        pytest.param(lambda: CommandEntry(id="c", title="C", argv=(), executable_sha256=PIN), id="empty-argv"),
        pytest.param(lambda: CommandEntry(id="c", title="C", argv=("/bin/true",)), id="unpinned-executable"),  # type: ignore[call-arg]
        pytest.param(lambda: CommandEntry(id="c", title="C", argv=("/bin/true",), executable_sha256="AB" * 32), id="pin-not-lowercase-hex"),
        pytest.param(lambda: CommandEntry(id="c", title="C", argv=("/bin/true",), executable_sha256=PIN, env=("A=B",)), id="env-name"),
        pytest.param(lambda: CommandEntry.model_validate({**_command().model_dump(), "limits": {"cpu_seconds": 0}}), id="limit-below-one"),
        pytest.param(lambda: CommandEntry.model_validate({**_command().model_dump(), "max_stderr_bytes": -1}), id="negative-stderr-cap"),
    ],
)  # fmt: skip
def test_invalid_models_are_refused(build: object) -> None:
    assert callable(build)
    with pytest.raises(ValidationError):
        build()


def test_discriminated_round_trip_through_json() -> None:
    catalog = ResolvedCatalog(name="demo", version="1", entries=(_query(), _command()))
    again = ResolvedCatalog.model_validate_json(catalog.model_dump_json())
    assert again == catalog
    assert isinstance(again.entries[1], CommandEntry)


def test_seal_requires_microsecond_utc_time() -> None:
    digest = {"sha256": "0" * 64, "blake3": "1" * 64}
    document = {
        "format": "govex.seal/v1", "catalog": {"name": "demo", "version": "1"},
        "catalog_digest": digest, "entries": {"a": digest}, "authority": "sealed",
        "sealed_at": "2026-11-23T09:15:02.123456Z", "signature": None,
    }  # fmt: skip
    assert Seal.model_validate(document).sealed_at == "2026-11-23T09:15:02.123456Z"
    with pytest.raises(ValidationError, match="sealed_at"):
        Seal.model_validate({**document, "sealed_at": "2026-11-23T09:15:02Z"})
    with pytest.raises(ValidationError, match="authority"):
        Seal.model_validate({**document, "authority": "provisional"})
