"""Docs that drift fail the build: every CLI command is documented, every documented one exists."""

from __future__ import annotations

import re
from pathlib import Path

from typer.main import get_command
from typer.testing import CliRunner

from service.cli import app

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _cli_commands() -> set[str]:
    root = get_command(app)
    found: set[str] = set()
    for name, command in root.commands.items():  # type: ignore[attr-defined]
        subcommands = getattr(command, "commands", None)
        if subcommands:
            found |= {f"{name} {sub}" for sub in subcommands}
        else:
            found.add(name)
    return found


def _documented() -> set[str]:
    text = (DOCS / "cli.md").read_text()
    return {
        m.group(1).strip()
        for m in re.finditer(r"^\| `govex ([a-z]+(?: [a-z]+)?)", text, re.MULTILINE)
    }


def test_every_command_is_documented_and_every_documented_command_exists() -> None:
    assert _cli_commands() == _documented()


def test_every_documented_command_has_help() -> None:
    for command in sorted(_documented()):
        result = CliRunner().invoke(app, [*command.split(), "--help"])
        assert result.exit_code == 0, command
        assert "Usage" in result.stdout


def test_readme_links_resolve() -> None:
    readme = (DOCS.parent / "README.md").read_text()
    for target in re.findall(r"\]\(((?:docs|schemas|examples)/[^)#]*)\)", readme):
        assert (DOCS.parent / target).exists(), target


def test_every_kind_beyond_formats_is_documented_with_its_schema() -> None:
    from ledger.entry import Kind  # noqa: PLC0415 - only this test needs the ledger

    formats_kinds = {"service.started", "call.started", "call.denied", "call.finished"}
    formats_kinds.add("packet.issued")
    text = (DOCS / "formats.md").read_text()
    rows = dict(
        re.findall(r"^\| `([a-z_.]+)` \|.*\| `([^`]+\.schema\.json)` \|$", text, re.MULTILINE)
    )
    assert set(rows) == {kind.value for kind in Kind} - formats_kinds
    for kind, schema in rows.items():
        assert schema == f"ledger-body-{kind}.schema.json"
        assert (DOCS.parent / "schemas" / schema).exists(), schema


def _table_codes(text: str, heading: str) -> list[str]:
    """The first-column codes of the table under ``heading``, down to the next heading."""
    section = text.split(heading + "\n", 1)[1].split("\n#", 1)[0]
    return re.findall(r"^\| `([a-z_A-Z]+)` \|", section, re.MULTILINE)


def test_every_claim_reason_and_verdict_the_code_can_give_is_documented() -> None:
    from typing import get_args  # noqa: PLC0415 - only this test needs them

    from service.claims import REASONS  # noqa: PLC0415
    from service.packets.manifest import ClaimReason, ClaimVerdict  # noqa: PLC0415

    text = (DOCS / "formats.md").read_text()
    reasons = _table_codes(text, "### Reason codes")
    assert sorted(reasons) == sorted(REASONS) == sorted(get_args(ClaimReason))
    verdicts = _table_codes(text.split("## The claim\n", 1)[1], "| verdict | meaning |\n|---|---|")
    assert sorted(verdicts) == sorted(get_args(ClaimVerdict))
