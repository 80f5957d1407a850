"""JSON Schemas of every govex document, generated from the models (checked in under schemas/).

A test regenerates them and fails when the checked-in files drift from the models.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from catalog.model import ResolvedCatalog, Seal
from ledger.entry import BODY_MODELS, Entry
from service.contract import CallContract
from service.packets.manifest import PacketManifest
from service.packets.report import VerifyReport

_ID_BASE = "urn:govex:schema:"


def _documents() -> dict[str, type[BaseModel]]:
    documents: dict[str, type[BaseModel]] = {
        "catalog.schema.json": ResolvedCatalog,
        "seal.schema.json": Seal,
        "ledger-entry.schema.json": Entry,
        "packet.schema.json": PacketManifest,
        "packet-verify-report.schema.json": VerifyReport,
        "contract.schema.json": CallContract,
    }
    for kind, model in sorted(BODY_MODELS.items()):
        documents[f"ledger-body-{kind}.schema.json"] = model
    return documents


def generate_schemas() -> dict[str, dict[str, Any]]:
    """File name -> JSON Schema (draft 2020-12), in a stable order."""
    schemas: dict[str, dict[str, Any]] = {}
    for name, model in _documents().items():
        schema = model.model_json_schema(mode="validation")
        schemas[name] = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": _ID_BASE + name.removesuffix(".schema.json"),
            **schema,
        }
    return schemas


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_schemas(directory: Path) -> list[Path]:
    """Write every schema into ``directory``; returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in generate_schemas().items():
        path = directory / name
        path.write_text(render(schema), encoding="utf-8")
        written.append(path)
    return written
