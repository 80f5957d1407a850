"""docs/benchmarks.md is written in sections: a bench run alone replaces only its own."""

from __future__ import annotations


def replace_section(document: str, heading: str, block: str) -> str:
    """``document`` with the ``heading`` section replaced by ``block`` (appended if absent)."""
    start = document.find(heading + "\n")
    if start < 0:
        return document.rstrip("\n") + "\n\n" + block
    end = document.find("\n## ", start + len(heading))
    rest = document[end + 1 :] if end >= 0 else ""
    return document[:start] + block + ("\n" + rest if rest else "")
