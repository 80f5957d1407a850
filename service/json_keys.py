"""Repeated keys in a JSON document: where the first one is (pure).

RFC 8259 leaves an object whose names repeat to the parser ("many implementations report
the last name/value pair only"), and I-JSON (RFC 7493) forbids it: a body such as
``{"entry": "a", "entry": "b"}`` means one call to a reader that keeps the first key and
another to one that keeps the last. Python's ``json`` keeps the last, silently; a request
whose meaning depends on the parser is refused instead (:mod:`service.routes.json_route`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

JsonPath = tuple[str | int, ...]


class _Members(list[tuple[str, Any]]):
    """Private: one JSON object's members, every one kept, in document order."""


def repeated_key(document: bytes | str) -> JsonPath | None:
    """The path of the first key that repeats in an object of ``document``, in document order.

    None when no key repeats, and when ``document`` is not JSON at all (whoever parses it
    next reports that, with its own position).
    """
    try:
        parsed = json.loads(document, object_pairs_hook=_Members)
    except (ValueError, RecursionError):
        return None
    return _first_repeat(parsed, ())


def _first_repeat(node: object, path: JsonPath) -> JsonPath | None:
    """Private: :func:`repeated_key` below ``path``; explicit stack, so nesting is no limit.

    A member's value is searched before the next member's key is looked at: the repeat
    reported is the first one a reader meets.
    """
    stack = [_Frame.of(node, path)] if isinstance(node, _Members | list) else []
    while stack:
        frame = stack[-1]
        step = next(frame.members, None)
        if step is None:
            stack.pop()
            continue
        name, child = step
        if frame.seen is not None:
            assert isinstance(name, str)  # noqa: S101 - an object's member names are strings
            if name in frame.seen:
                return (*frame.where, name)
            frame.seen.add(name)
        if isinstance(child, _Members | list):
            stack.append(_Frame.of(child, (*frame.where, name)))
    return None


@dataclass
class _Frame:
    """Private: an object or array being searched, and the names its object has shown."""

    members: Iterator[tuple[str | int, object]]
    seen: set[str] | None  # None for an array
    where: JsonPath

    @classmethod
    def of(cls, container: _Members | list[object], where: JsonPath) -> _Frame:
        if isinstance(container, _Members):
            return cls(iter(container), set(), where)
        return cls(enumerate(container), None, where)
