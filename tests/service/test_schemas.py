"""The checked-in JSON Schemas are exactly what the models generate."""

from __future__ import annotations

from pathlib import Path

from service.schemas import generate_schemas, render

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def test_checked_in_schemas_match_the_models() -> None:
    generated = generate_schemas()
    on_disk = {p.name for p in SCHEMAS.glob("*.schema.json")}
    assert on_disk == set(generated), "run 'make schemas' and commit the result"
    drifted = [
        name for name, schema in generated.items() if (SCHEMAS / name).read_text() != render(schema)
    ]
    assert drifted == [], f"schemas drifted from the models: {drifted}; run 'make schemas'"


def test_every_formats_document_has_a_schema() -> None:
    names = set(generate_schemas())
    for required in ("catalog", "seal", "ledger-entry", "packet", "contract"):
        assert f"{required}.schema.json" in names
    for kind in (
        "service.started",
        "call.started",
        "call.denied",
        "call.finished",
        "packet.issued",
        "approval.granted",
    ):
        assert f"ledger-body-{kind}.schema.json" in names
