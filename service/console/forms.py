"""Reading a console POST form: ``application/x-www-form-urlencoded`` only, bounded, strict.

The console's forms are small (a token, a CSRF token, an entry's inputs), so a body is
read whole up to :data:`MAX_FORM_BYTES`; a larger one, another media type, bytes that are
not UTF-8, or a field named twice is refused (:class:`FormRefused`) before any field is
looked at. An entry's inputs travel as ``p.<name>``; an empty one is left out, so that
an optional parameter gets its default.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from service.console.errors import FormRefused

if TYPE_CHECKING:
    from collections.abc import Mapping

    from fastapi import Request

FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"
MAX_FORM_BYTES = 64 * 1024
MAX_FIELDS = 200
PARAM_PREFIX = "p."


@dataclass(frozen=True)
class Form:
    """The fields of one form, by name."""

    fields: Mapping[str, str]

    def get(self, name: str) -> str | None:
        return self.fields.get(name)

    def params(self) -> dict[str, str]:
        """The entry inputs (``p.<name>`` fields) that are not empty, by parameter name."""
        return {
            name.removeprefix(PARAM_PREFIX): value
            for name, value in self.fields.items()
            if name.startswith(PARAM_PREFIX) and value != ""
        }


def parse_form(body: bytes) -> Form:
    """The fields of a urlencoded ``body``; raises :class:`FormRefused` naming what is wrong."""
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(
            text,
            keep_blank_values=True,
            strict_parsing=bool(text),
            max_num_fields=MAX_FIELDS,
            errors="strict",
        )
    except UnicodeDecodeError:
        raise FormRefused("the form is not UTF-8", where="body") from None
    except ValueError as exc:
        raise FormRefused(f"the form does not parse: {exc}", where="body") from None
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name in fields:
            raise FormRefused(f"the form names field {name!r} twice", where=name)
        fields[name] = value
    return Form(fields)


async def read_form(request: Request) -> Form:
    """The form of ``request``, after checking its media type and size."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != FORM_MEDIA_TYPE:
        raise FormRefused(
            f"expected {FORM_MEDIA_TYPE}, got {media_type or 'no Content-Type'}",
            status=415,
            where="Content-Type",
        )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        raise FormRefused(f"the form is over {MAX_FORM_BYTES} bytes", status=413, where="body")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise FormRefused(f"the form is over {MAX_FORM_BYTES} bytes", status=413, where="body")
    return parse_form(bytes(body))
