"""The adversarial corpus at seal time: every mutating statement refused, with its reason.

``corpus/mutating.toml`` holds each statement with the rule and the words its refusal must
carry; ``corpus/known_good.toml`` holds ordinary analytical queries that must all seal. The
refusals are checked one by one against :func:`catalog.sqlcheck.check_sql`, then together
through the real ``govex catalog seal`` command on a catalog holding the whole corpus.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from catalog.load import SEAL_FILE
from catalog.sqlcheck import ReadOnly, Rejected, check_sql
from service.cli import app
from tests.hardening.corpus_data import SEAL_VAR, Engine, KnownGood, Mutating, known_good, mutating

MUTATING = mutating()
KNOWN_GOOD = known_good()
_SOURCES = {"postgresql": "pg", "sqlite": "sq"}
_REFUSAL_LINE = re.compile(r"^  queries/(\S+)\.sql:\d+: entry (\S+): rule (\w+): (.*)$")


def _entry_id(record_id: str, engine: str = "") -> str:
    suffix = f"_{_SOURCES[engine]}" if engine else ""
    return "corpus." + record_id.replace("-", "_") + suffix


def _write_catalog(directory: Path, entries: list[tuple[str, Engine, str, dict[str, str]]]) -> Path:
    """A catalog of ``(entry id, engine, sql, {param: type})`` entries, one SQL file each."""
    (directory / "queries").mkdir(parents=True)
    toml = [
        '[catalog]\nname = "corpus"\nversion = "1"\n',
        '[sources.pg]\nengine = "postgresql"\n',
        '[sources.sq]\nengine = "sqlite"\n',
    ]
    for entry, engine, sql, params in entries:
        (directory / "queries" / f"{entry}.sql").write_text(sql + "\n", encoding="utf-8")
        toml.append(
            f'[[query]]\nid = "{entry}"\ntitle = "{entry}"\nsource = "{_SOURCES[engine]}"\n'
            f'sql = "queries/{entry}.sql"\n'
        )
        toml += [f'[query.params.{name}]\ntype = "{kind}"\n' for name, kind in params.items()]
    (directory / "catalog.toml").write_text("\n".join(toml), encoding="utf-8")
    return directory


def test_the_corpora_cover_both_engines_at_the_sizes_asked() -> None:
    engines = Counter(m.engine for m in MUTATING)
    assert len(MUTATING) >= 40
    assert engines["postgresql"] >= 20
    assert engines["sqlite"] >= 20
    runs = Counter(engine for q in KNOWN_GOOD for engine in q.engines)
    assert len(KNOWN_GOOD) >= 50
    assert runs["postgresql"] >= 50
    assert runs["sqlite"] >= 50
    rules = {m.rule for m in MUTATING}
    assert rules >= {
        "statement_kind",
        "single_statement",
        "data_modifying_cte",
        "select_into",
        "locking_clause",
        "side_effect_function",
    }


@pytest.mark.parametrize("record", MUTATING, ids=[m.id for m in MUTATING])
def test_each_mutating_statement_is_refused_naming_its_rule_and_reason(record: Mutating) -> None:
    decision = check_sql(record.text(SEAL_VAR), record.engine, ())
    assert isinstance(decision, Rejected), f"{record.id} was accepted: {record.threat}"
    assert decision.rule == record.rule
    assert record.detail in decision.detail
    assert decision.line >= 1


@pytest.mark.parametrize(
    ("record", "engine"),
    [(q, e) for q in KNOWN_GOOD for e in q.engines],
    ids=[f"{q.id}-{e}" for q in KNOWN_GOOD for e in q.engines],
)
def test_each_known_good_query_is_accepted(record: KnownGood, engine: Engine) -> None:
    text = record.text(engine)
    assert text is not None
    assert check_sql(text, engine, list(record.params)) == ReadOnly(
        placeholders=tuple(sorted(record.params))
    )


def test_govex_catalog_seal_refuses_the_whole_corpus_naming_every_entry(tmp_path: Path) -> None:
    directory = _write_catalog(
        tmp_path / "catalog",
        [(_entry_id(m.id), m.engine, m.text(SEAL_VAR), {}) for m in MUTATING],
    )
    result = CliRunner().invoke(app, ["catalog", "seal", str(directory)])
    assert result.exit_code == 1, result.stderr
    assert result.stderr.startswith(f"error [catalog_invalid]: {len(MUTATING)} catalog problems:")
    refused = {
        match.group(2): (match.group(1), match.group(3), match.group(4))
        for match in map(_REFUSAL_LINE.match, result.stderr.splitlines())
        if match is not None
    }
    assert len(refused) == len(MUTATING)
    for record in MUTATING:
        entry = _entry_id(record.id)
        assert refused[entry][0] == entry  # the file is named
        assert refused[entry][1] == record.rule
        assert record.detail in refused[entry][2]
    assert not (directory / SEAL_FILE).exists()
    assert "Traceback" not in result.output


def test_govex_catalog_seal_seals_the_whole_known_good_corpus(tmp_path: Path) -> None:
    entries = [
        (_entry_id(q.id, e), e, text, q.param_types())
        for q in KNOWN_GOOD
        for e in q.engines
        if (text := q.text(e)) is not None
    ]
    directory = _write_catalog(tmp_path / "catalog", entries)
    result = CliRunner().invoke(app, ["catalog", "seal", str(directory)])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"sealed {len(entries)} entries of corpus 1")
    assert (directory / SEAL_FILE).is_file()
