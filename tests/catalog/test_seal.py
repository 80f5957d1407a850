"""Digests, sealing and the seal check."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import blake3
import pytest
import rfc8785

from catalog.authority import AuthorityStatus
from catalog.errors import SealMismatch
from catalog.load import load_catalog_dir
from catalog.model import ParamSpec, ParamType, QueryEntry, ResolvedCatalog
from catalog.seal import catalog_digest, check_seal, compute_seal, entry_digest

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

SEALED_AT = datetime(2026, 11, 23, 9, 15, 2, 123456, tzinfo=UTC)


def _mismatch(catalog: ResolvedCatalog, sealed: ResolvedCatalog) -> SealMismatch:
    with pytest.raises(SealMismatch) as info:
        check_seal(catalog, compute_seal(sealed, SEALED_AT))
    return info.value


def test_fresh_seal_checks_sealed(write_catalog: Callable[..., Path]) -> None:
    catalog = load_catalog_dir(write_catalog())
    seal = compute_seal(catalog, SEALED_AT)
    assert check_seal(catalog, seal) is AuthorityStatus.sealed
    assert seal.sealed_at == "2026-11-23T09:15:02.123456Z"
    assert (seal.authority, seal.signature, seal.format) == ("sealed", None, "govex.seal/v1")
    assert sorted(seal.entries) == ["orders.by_customer", "orders.count", "system.uptime"]


def test_editing_one_sql_file_names_that_entry(
    write_catalog: Callable[..., Path], sql_files: dict[str, str]
) -> None:
    root = write_catalog()
    sealed = load_catalog_dir(root)
    (root / "queries" / "orders_count.sql").write_text(
        "SELECT count(*) AS n FROM orders WHERE total > 0\n", encoding="utf-8"
    )
    error = _mismatch(load_catalog_dir(root), sealed)
    assert (error.changed, error.added, error.removed) == (["orders.count"], [], [])
    assert error.header == ["catalog_digest"]
    assert "changed: orders.count" in str(error)
    assert sql_files  # the fixture's own copy is untouched


def test_whitespace_only_edit_is_a_change(write_catalog: Callable[..., Path]) -> None:
    root = write_catalog()
    sealed = load_catalog_dir(root)
    path = root / "queries" / "orders_count.sql"
    path.write_text(path.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    assert _mismatch(load_catalog_dir(root), sealed).changed == ["orders.count"]


def test_added_and_removed_entries_are_named(
    write_catalog: Callable[..., Path], catalog_toml: str
) -> None:
    sealed = load_catalog_dir(write_catalog())
    renamed = catalog_toml.replace('id = "orders.count"', 'id = "orders.total"')
    current = load_catalog_dir(write_catalog(toml=renamed))
    error = _mismatch(current, sealed)
    assert (error.changed, error.added, error.removed) == ([], ["orders.total"], ["orders.count"])


def test_name_or_version_change_is_named(
    write_catalog: Callable[..., Path], catalog_toml: str
) -> None:
    sealed = load_catalog_dir(write_catalog())
    bumped = load_catalog_dir(write_catalog(toml=catalog_toml.replace('"1.0.0"', '"1.0.1"')))
    error = _mismatch(bumped, sealed)
    assert (error.changed, error.added, error.removed) == ([], [], [])
    assert error.header == ["version", "catalog_digest"]
    renamed = load_catalog_dir(
        write_catalog(toml=catalog_toml.replace('"demo"\nversion', '"x"\nversion'))
    )
    assert _mismatch(renamed, sealed).header == ["name", "catalog_digest"]


def test_tampered_catalog_digest_in_seal_is_named(write_catalog: Callable[..., Path]) -> None:
    catalog = load_catalog_dir(write_catalog())
    seal = compute_seal(catalog, SEALED_AT)
    forged = seal.model_copy(update={"catalog_digest": entry_digest(catalog.entries[0])})
    with pytest.raises(SealMismatch) as info:
        check_seal(catalog, forged)
    assert info.value.header == ["catalog_digest"]


def test_one_algorithm_differing_is_a_change(write_catalog: Callable[..., Path]) -> None:
    catalog = load_catalog_dir(write_catalog())
    seal = compute_seal(catalog, SEALED_AT)
    good = seal.entries["orders.count"]
    bad = good.model_copy(update={"blake3": "0" * 64})
    forged = seal.model_copy(update={"entries": {**seal.entries, "orders.count": bad}})
    with pytest.raises(SealMismatch) as info:
        check_seal(catalog, forged)
    assert info.value.changed == ["orders.count"]


def test_entry_digest_is_pinned_against_an_independent_computation() -> None:
    entry = QueryEntry(
        id="pin.one",
        title="Pinned",
        source="demo",
        engine="sqlite",
        sql_file="q.sql",
        sql="SELECT :n AS n\n",
        params={"n": ParamSpec(type=ParamType.integer, min=0, max=9)},
    )
    # Written out by hand: every field of the FORMATS section 2 query entry.
    document: dict[str, Any] = {
        "kind": "query", "id": "pin.one", "title": "Pinned", "description": "",
        "source": "demo", "engine": "sqlite", "sql_file": "q.sql", "sql": "SELECT :n AS n\n",
        "params": {"n": {
            "type": "integer", "required": True, "default": None, "min": 0, "max": 9,
            "max_length": None, "pattern": None, "choices": None, "description": "",
        }},
        "timeout_ms": 30000, "max_rows": 1000000, "max_bytes": 1073741824, "tags": [],
        "sensitive": False, "requires_approval": False, "tenant_scoped": False,
        "tenant_param": None, "lease": None, "claim": None, "sensitive_columns": [],
    }  # fmt: skip
    data = rfc8785.dumps(document)
    digest = entry_digest(entry)
    assert digest.sha256 == hashlib.sha256(data).hexdigest()
    assert digest.blake3 == blake3.blake3(data).hexdigest()


def test_catalog_digest_covers_the_document() -> None:
    empty = ResolvedCatalog(name="demo", version="1")
    data = rfc8785.dumps(
        {"format": "govex.catalog/v1", "name": "demo", "version": "1", "entries": []}
    )
    assert catalog_digest(empty).sha256 == hashlib.sha256(data).hexdigest()


def test_an_executable_changed_after_sealing_names_its_command(
    write_catalog: Callable[..., Path], catalog_toml: str, tmp_path: Path
) -> None:
    tool = tmp_path / "tool"
    tool.write_bytes(b"#!/bin/sh\necho sealed\n")
    tool.chmod(0o755)
    root = write_catalog(toml=catalog_toml.replace("/usr/bin/uptime", str(tool)))
    sealed = load_catalog_dir(root)
    tool.write_bytes(b"#!/bin/sh\necho edited\n")
    error = _mismatch(load_catalog_dir(root), sealed)
    assert (error.changed, error.added, error.removed) == (["system.uptime"], [], [])
