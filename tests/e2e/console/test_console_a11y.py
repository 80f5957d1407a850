"""Accessibility checks we can make without a browser: contrast of the palette, page structure.

The browser test (test_console_browser.py) checks the rendered pages too: computed colours of
every text element, no horizontal scrolling at 375 px.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.console.render import STATIC
from tests.e2e.conftest import TOKENS
from tests.e2e.console.conftest import make_console_world, run_call, sign_in

CSS = (STATIC / "console.css").read_text()
VERDICTS = (
    "ran_clean",
    "ran_with_drift",
    "error_running",
    "timed_out",
    "blocked",
    "in_progress",
    "no_verdict",
)
TEXT_PAIRS = [
    ("--fg", "--bg"),
    ("--muted", "--bg"),
    ("--link", "--bg"),
    ("--ok", "--bg"),
    ("--bad", "--bg"),
    ("--fg", "--panel"),
    ("--muted", "--panel"),
    ("--link", "--panel"),
    ("--ok", "--panel"),
    ("--bad", "--panel"),
    ("--fg", "--code-bg"),
    ("--header-fg", "--header-bg"),
    ("--header-link", "--header-bg"),
    ("#ffffff", "--link"),  # buttons
    ("#ffffff", "--header-bg"),  # attribute badges
    ("#ffffff", "--ok"),
    ("#ffffff", "--bad"),
    *(("#ffffff", f"--v-{v}") for v in VERDICTS),  # verdict badges
]
GRAPHIC_PAIRS = [  # WCAG 1.4.11: focus rings and chart bars against what is next to them
    ("--focus", "--bg"),
    ("--focus", "--panel"),
    ("--focus", "--header-bg"),
    *((f"--v-{v}", "--bg") for v in VERDICTS),
]


def _palette() -> dict[str, str]:
    return dict(re.findall(r"(--[a-z0-9_-]+):\s*(#[0-9a-fA-F]{6})\s*;", CSS))


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    """WCAG 2 contrast ratio of two #rrggbb colours."""
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def _colour(name: str, palette: dict[str, str]) -> str:
    return name if name.startswith("#") else palette[name]


def test_the_contrast_computation_matches_known_values() -> None:
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)


@pytest.mark.parametrize(("fg", "bg"), TEXT_PAIRS, ids=[f"{f}-on-{b}" for f, b in TEXT_PAIRS])
def test_text_colours_have_aa_contrast(fg: str, bg: str) -> None:
    palette = _palette()
    assert contrast(_colour(fg, palette), _colour(bg, palette)) >= 4.5


@pytest.mark.parametrize(("fg", "bg"), GRAPHIC_PAIRS, ids=[f"{f}-on-{b}" for f, b in GRAPHIC_PAIRS])
def test_focus_rings_and_chart_colours_have_graphic_contrast(fg: str, bg: str) -> None:
    palette = _palette()
    assert contrast(_colour(fg, palette), _colour(bg, palette)) >= 3.0


class _Structure(HTMLParser):
    """Headings, form controls, labels, ids and the first link of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.headings: list[int] = []
        self.controls: list[dict[str, str | None]] = []
        self.label_for: set[str] = set()
        self.ids: set[str] = set()
        self.first_link: str | None = None
        self.lang: str | None = None
        self.regions: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(str(a["id"]))
        if tag == "html":
            self.lang = a.get("lang")
        if re.fullmatch(r"h[1-6]", tag):
            self.headings.append(int(tag[1]))
        if tag == "a" and self.first_link is None:
            self.first_link = a.get("href")
        if tag == "label" and a.get("for"):
            self.label_for.add(str(a["for"]))
        if tag in {"input", "select", "textarea"} and a.get("type") != "hidden":
            self.controls.append(a)
        if a.get("role") == "region":
            self.regions.append(a)


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Every console page, as carol sees it after one run (plus the sign-in and error pages)."""
    tmp: Path = tmp_path_factory.mktemp("console-a11y")
    with TestClient(create_app(make_console_world(tmp))) as client:
        found = {"sign-in": client.get("/console/sign-in").text}
        sign_in(client, TOKENS["carol"])
        call_id = run_call(client, "items.by_tenant", {"tenant": "acme"})
        record = client.app.state.runtime.calls.get(call_id)  # type: ignore[attr-defined]
        client.app.state.runtime.require_checkpointer().checkpoint()  # type: ignore[attr-defined]
        for path in (
            "/console/catalog",
            "/console/catalog/items.by_tenant",
            "/console/calls",
            f"/console/calls/{call_id}",
            "/console/packets",
            f"/console/packets/{record.packet_id}",
            "/console/ledger",
            f"/console/ledger/entries/{record.packet_seq}",
            "/console/calls/01NOPE",
        ):
            found[path] = client.get(path).text
        yield found


def test_every_page_has_one_h1_and_headings_in_order(pages: dict[str, str]) -> None:
    for path, text in pages.items():
        parser = _Structure()
        parser.feed(text)
        assert parser.headings.count(1) == 1, path
        assert parser.headings[0] == 1, path
        steps = zip(parser.headings, parser.headings[1:], strict=False)
        assert all(after <= before + 1 for before, after in steps), (path, parser.headings)


def test_every_form_field_has_a_label(pages: dict[str, str]) -> None:
    fields = 0
    for path, text in pages.items():
        parser = _Structure()
        parser.feed(text)
        for control in parser.controls:
            labelled = (
                control.get("id") in parser.label_for
                or control.get("aria-label")
                or control.get("aria-labelledby")
            )
            assert labelled, (path, control)
        fields += len(parser.controls)
    assert fields >= 10  # the sign-in, call, filter, ledger and consistency forms


def test_every_page_starts_with_a_skip_link_to_its_main_content(pages: dict[str, str]) -> None:
    for path, text in pages.items():
        parser = _Structure()
        parser.feed(text)
        assert parser.lang == "en", path
        assert parser.first_link == "#content", path
        assert "content" in parser.ids, path
        assert '<main id="content"' in text, path


def test_scrolling_tables_are_named_focusable_regions(pages: dict[str, str]) -> None:
    regions = 0
    for path, text in pages.items():
        parser = _Structure()
        parser.feed(text)
        for region in parser.regions:
            assert region.get("aria-label"), path
            assert region.get("tabindex") == "0", path
        regions += len(parser.regions)
    assert regions >= 8
