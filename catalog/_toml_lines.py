"""Private helper of :mod:`catalog.load`: best-effort line numbers for TOML keys.

``tomllib`` returns plain values without positions, so load errors about the
structure (a bad ``min``, an unknown key) would otherwise name only the entry
and key. This scanner reads the text line by line, skipping multi-line
strings, records table headers and the first line of each key, and answers
"which line defines this key of the n-th ``[[query]]``". It never decides
validity; when unsure it answers the nearest enclosing header, or ``None``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_HEADER = re.compile(r"\s*(\[\[?)([^\[\]]+)\]\]?\s*(?:#.*)?")
_KEY = re.compile(
    r"""\s*((?:"[^"]*"|'[^']*'|[A-Za-z0-9_-]+)(?:\s*\.\s*(?:"[^"]*"|'[^']*'|[A-Za-z0-9_-]+))*)\s*="""
)
_PART = re.compile(r""""([^"]*)"|'([^']*)'|([A-Za-z0-9_-]+)""")


def _path(text: str) -> tuple[str, ...]:
    return tuple(m.group(1) or m.group(2) or m.group(3) or "" for m in _PART.finditer(text))


@dataclass
class _Section:
    path: tuple[str, ...]
    is_array: bool
    line: int
    keys: dict[tuple[str, ...], int] = field(default_factory=dict)


class TomlLines:
    """Positions of headers and keys in one TOML text (1-based lines)."""

    def __init__(self, text: str) -> None:
        self._sections = [_Section(path=(), is_array=False, line=1)]
        in_string: str | None = None
        for number, line in enumerate(text.splitlines(), start=1):
            if in_string is not None:
                if line.count(in_string) % 2 == 1:
                    in_string = None
                continue
            header = _HEADER.fullmatch(line)
            if header is not None:
                self._sections.append(
                    _Section(_path(header.group(2)), header.group(1) == "[[", number)
                )
                continue
            key = _KEY.match(line)
            if key is not None:
                self._sections[-1].keys.setdefault(_path(key.group(1)), number)
            for quote in ('"""', "'''"):
                if line.count(quote) % 2 == 1:
                    in_string = quote
                    break

    def _entry_sections(self, array: str, index: int) -> list[_Section]:
        seen = -1
        found: list[_Section] = []
        for section in self._sections:
            if section.is_array:
                if found:
                    break
                if section.path == (array,):
                    seen += 1
                    if seen == index:
                        found.append(section)
                continue
            if found:
                if section.path[:1] != (array,):
                    break
                found.append(section)
        return found

    def line_of(
        self, key: tuple[str, ...], *, array: str | None = None, index: int = 0
    ) -> int | None:
        """Line of ``key`` inside the ``index``-th ``[[array]]`` entry, or at top level.

        Falls back to the closest enclosing table header, then ``None``.
        """
        if array is None:
            sections = [s for s in self._sections if not s.is_array]
            base: tuple[str, ...] = ()
        else:
            sections = self._entry_sections(array, index)
            base = (array,)
        best: tuple[int, int] | None = None  # (matched depth, line)
        for section in sections:
            rel = section.path[len(base) :]
            if section.path[: len(base)] != base or key[: len(rel)] != rel:
                continue
            candidate = (len(rel), section.line)
            rest = key[len(rel) :]
            for depth in range(len(rest), 0, -1):
                if rest[:depth] in section.keys:
                    candidate = (len(rel) + depth, section.keys[rest[:depth]])
                    break
            if best is None or candidate[0] > best[0]:
                best = candidate
        if best is None or (array is None and best[0] == 0):
            return None
        return best[1]
