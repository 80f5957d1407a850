"""The OpenAPI document: FastAPI's, plus what every operation can answer with a problem.

Every operation gets a ``default`` response: ``application/problem+json`` (RFC 9457)
with the ``Problem`` schema and one named example per problem type
(``components/examples/problem-<code>``), each with its ``type`` page
(``/problems/<code>``). FastAPI's own 422 (its ``HTTPValidationError``) is replaced: a
request that does not match its schema gets an ``invalid_request`` problem.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi.openapi.utils import get_openapi

from service.problems import PROBLEM_MEDIA_TYPE, PROBLEM_TYPE_PREFIX, documented_kinds

if TYPE_CHECKING:
    from fastapi import FastAPI

_METHODS = frozenset({"get", "put", "post", "delete", "patch", "head", "options"})
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details, with govex's stable code and hint.",
    "required": ["type", "title", "status", "detail", "code", "hint", "errors", "request_id"],
    "properties": {
        "type": {"type": "string", "description": "Relative URI of the problem's page."},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string", "description": "What was wrong, naming its place."},
        "code": {"type": "string"},
        "hint": {"type": "string", "description": "What to do about it."},
        "errors": {
            "type": "array",
            "items": {"type": "object"},
            "description": "Each failure with its place (pointer, entry, file, seq).",
        },
        "request_id": {"type": ["string", "null"]},
        "instance": {"type": "string"},
        "call_id": {"type": "string", "description": "A refused call's id."},
        "ledger_seq": {"type": "integer", "description": "The refusal's ledger entry."},
    },
}


def problem_examples() -> dict[str, dict[str, Any]]:
    """One example body per problem type, by ``problem-<code>``."""
    return {
        f"problem-{code}": {
            "summary": f"{kind.status} {kind.title}",
            "value": {
                "type": PROBLEM_TYPE_PREFIX + code,
                "title": kind.title,
                "status": kind.status,
                "detail": f"(what was wrong, naming its place) - {kind.title.lower()}",
                "code": code,
                "hint": kind.hint,
                "errors": [],
                "request_id": "01JEXAMPLEREQUEST00000000",
                "instance": "/v1/...",
            },
        }
        for code, kind in sorted(documented_kinds().items())
    }


def govex_openapi(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document, built once and kept on the app (FastAPI's convention)."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    document = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
    )
    components = document.setdefault("components", {})
    components.setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    examples = problem_examples()
    components["examples"] = examples
    problem = {
        "description": "A problem (RFC 9457); `type` resolves to its page.",
        "content": {
            PROBLEM_MEDIA_TYPE: {
                "schema": {"$ref": "#/components/schemas/Problem"},
                "examples": {name: {"$ref": f"#/components/examples/{name}"} for name in examples},
            }
        },
    }
    for operations in document.get("paths", {}).values():
        for method, operation in operations.items():
            if method not in _METHODS:
                continue
            responses = operation.setdefault("responses", {})
            responses["default"] = problem
            if "422" in responses:
                responses["422"] = {
                    "description": "The request does not match its schema, or its values are "
                    "refused (invalid_request, invalid_input, ...).",
                    "content": {
                        PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}
                    },
                }
    app.openapi_schema = document
    return document
