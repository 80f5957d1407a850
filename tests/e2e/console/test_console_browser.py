"""The console in a real browser: Debian's headless Chromium, driven by Playwright.

One browser and one server for the module. An operator signs in, dry-runs and runs a call,
watches it finish live, opens its packet (and downloads it), follows its ledger entry to
the ledger, and signs out; an analyst is refused a sensitive entry and the ledger with
403 pages. Every page is checked as a person would meet it (contrast of every text
element as rendered, one h1, no sideways scrolling at phone width, nothing loaded from
another host) and photographed at desktop and phone width into build/screenshots/.

The browser is the system's (``/usr/bin/chromium``, installed by ``make test`` when it is
missing), never one Playwright downloads; each launch gets a fresh temporary profile.
Without it the module is skipped, except under CI=true, where that is a failure.
"""

from __future__ import annotations

import os
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    ViewportSize,
    expect,
    sync_playwright,
)

from service.app import create_app
from tests.e2e.conftest import TOKENS
from tests.e2e.console.conftest import make_console_world
from tests.e2e.servers import running_uvicorn

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[3] / "build" / "screenshots"
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 375, "height": 812}
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# WCAG contrast of every element that has text of its own, against its painted background.
LOW_CONTRAST_JS = """() => {
  const parse = (c) => {
    const m = c.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null;
    const p = m[1].split(',').map((s) => parseFloat(s));
    return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1};
  };
  const lum = (c) => {
    const f = (v) => {
      v /= 255;
      return v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
  };
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c.a > 0) return c;
    }
    return {r: 255, g: 255, b: 255, a: 1};
  };
  const low = [];
  for (const el of document.querySelectorAll('body *')) {
    if (el.closest('svg')) continue;
    if (!Array.from(el.childNodes).some((n) => n.nodeType === 3 && n.textContent.trim())) continue;
    const rect = el.getBoundingClientRect();
    const style = getComputedStyle(el);
    if (!rect.width || !rect.height || style.visibility === 'hidden') continue;
    const [hi, lo] = [lum(parse(style.color)), lum(background(el))].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    const text = el.textContent.trim().slice(0, 30);
    if (ratio < 4.5) low.push(`${el.tagName} "${text}" ${ratio.toFixed(2)}`);
  }
  return low;
}"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: make test installs chromium and chromium-driver"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    world = make_console_world(tmp_path_factory.mktemp("console-browser"))
    with running_uvicorn(create_app(world)) as url:
        yield url


class Visit:
    """A browsing session that checks and photographs each page it reaches."""

    def __init__(self, context: BrowserContext, base_url: str) -> None:
        self.page: Page = context.new_page()
        self.base_url = base_url
        self.requests: list[str] = []
        context.on("request", lambda request: self.requests.append(request.url))
        SHOTS.mkdir(parents=True, exist_ok=True)

    def check(self, name: str) -> None:
        """The page as a person meets it, at both widths; a screenshot of each."""
        page = self.page
        assert page.locator("h1").count() == 1, name
        first = page.locator("a").first
        assert first.get_attribute("href") == "#content", name
        for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
            page.set_viewport_size(size)
            assert page.evaluate(LOW_CONTRAST_JS) == [], (name, label)
            overflow = page.evaluate(
                "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, (name, label, overflow)
            page.screenshot(path=str(SHOTS / f"{name}-{label}.png"), full_page=True)
        page.set_viewport_size(DESKTOP)
        outside = [u for u in self.requests if not u.startswith(self.base_url)]
        assert outside == [], (name, outside)

    def sign_in(self, token: str) -> None:
        self.page.fill("#token", token)
        self.page.get_by_role("button", name="Sign in").click()
        expect(self.page.locator(".who")).to_be_visible()


def test_an_operator_runs_a_call_and_follows_it_to_its_packet_and_ledger(
    browser: Browser, base_url: str, tmp_path: Path
) -> None:
    context = browser.new_context(viewport=DESKTOP, base_url=base_url, accept_downloads=True)
    visit = Visit(context, base_url)
    try:
        _sign_in_and_open_an_entry(visit, base_url)
        _dry_run_then_run_and_watch_it_finish(visit)
        _open_its_packet(visit, tmp_path)
        _follow_its_ledger_entry_to_the_ledger(visit)
        _lists_and_sign_out(visit)
    finally:
        context.close()


def _sign_in_and_open_an_entry(visit: Visit, base_url: str) -> None:
    page = visit.page
    page.goto("/console/catalog")
    expect(page).to_have_url(re.compile(r"/console/sign-in\?notice=required"))
    visit.check("01-sign-in")
    visit.sign_in(TOKENS["carol"])
    expect(page).to_have_url(f"{base_url}/console/catalog")
    expect(page.locator("h1")).to_contain_text("Catalog: e2e 1")
    visit.check("02-catalog")
    page.get_by_role("link", name="items.counting").click()
    expect(page.locator("h1")).to_have_text("items.counting")
    expect(page.locator("pre").first).to_contain_text("WITH RECURSIVE")
    visit.check("03-entry")


def _dry_run_then_run_and_watch_it_finish(visit: Visit) -> None:
    page = visit.page
    page.get_by_role("button", name="Dry run").click()
    expect(page.locator("h1")).to_have_text("Dry run of items.counting")
    expect(page.get_by_text("A run would pass every check.")).to_be_visible()
    expect(page.locator("tr", has_text="policy")).to_contain_text("passed")
    visit.check("04-dry-run")
    page.get_by_role("button", name="Run items.counting").click()
    expect(page.locator("h1")).to_contain_text("Call ")
    live = page.locator("[data-events]")
    # data-state is set by the script only, from the call's event stream.
    expect(live).to_have_attribute("data-state", re.compile("running|completed"), timeout=15_000)
    expect(live.locator('[data-field="state"]')).to_have_text(re.compile("running|completed"))
    visit.check("05-call-running")
    expect(page.locator(".badge.v-ran_clean").first).to_be_visible(timeout=30_000)
    expect(page.locator("[data-events]")).to_have_count(0)  # reloaded once it ended
    expect(page.locator("#content")).to_contain_text("packet issued: packet.issued")
    visit.check("06-call-finished")


def _open_its_packet(visit: Visit, tmp_path: Path) -> None:
    page = visit.page
    page.locator("main dd a[href^='/console/packets/']").click()
    expect(page.locator("h1")).to_contain_text("Packet ")
    command = page.locator("#verify-command")
    expect(command).to_contain_text("govex packet verify")
    expect(command).to_contain_text("--proof")
    with page.expect_download() as download:
        page.get_by_role("link", name=re.compile(r"^Download .*\.zip$")).click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    with zipfile.ZipFile(saved) as archive:
        assert any(name.endswith("/packet.json") for name in archive.namelist())
    with page.expect_download() as proof:
        page.get_by_role("link", name=re.compile(r"^Download the inclusion proof")).click()
    assert proof.value.suggested_filename.endswith(".tlog-proof")
    proof_file = tmp_path / proof.value.suggested_filename
    proof.value.save_as(proof_file)
    assert proof_file.read_text().startswith("c2sp.org/tlog-proof@v1")
    visit.check("07-packet")


def _follow_its_ledger_entry_to_the_ledger(visit: Visit) -> None:
    page = visit.page
    page.get_by_role("link", name=re.compile(r"^packet\.issued at seq \d+$")).click()
    expect(page.locator("h1")).to_contain_text(": packet.issued")
    visit.check("08-ledger-entry")
    page.get_by_role("link", name="See it among its neighbours").click()
    expect(page.locator("h1")).to_have_text("Ledger")
    expect(page.get_by_text("Chain intact")).to_be_visible()
    expect(page.locator("svg.chart rect.v-ran_clean")).to_have_count(1)
    checkpoints = page.get_by_role("region", name="Checkpoints")
    expect(checkpoints.locator("tr", has_text="signed by govex.test/ledger/console")).to_have_count(
        1
    )
    visit.check("09-ledger")


def _lists_and_sign_out(visit: Visit) -> None:
    page = visit.page
    page.get_by_role("link", name="Calls", exact=True).click()
    expect(page.locator("tbody tr")).to_have_count(1)
    visit.check("10-calls")
    page.get_by_role("link", name="Packets", exact=True).click()
    expect(page.locator("tbody tr")).to_have_count(1)
    visit.check("11-packets")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("You are signed out.")).to_be_visible()
    visit.check("12-signed-out")
    page.goto("/console/ledger")
    expect(page).to_have_url(re.compile(r"/console/sign-in"))


def test_an_analyst_gets_403_pages_for_a_forbidden_entry_and_the_ledger(
    browser: Browser, base_url: str
) -> None:
    context = browser.new_context(viewport=DESKTOP, base_url=base_url)
    visit = Visit(context, base_url)
    page = visit.page
    try:
        page.goto("/console/sign-in")
        visit.sign_in(TOKENS["alice"])
        page.goto("/console/catalog/items.secret")
        page.get_by_role("button", name="Dry run").click()
        expect(page.get_by_text("A run would be refused:")).to_be_visible()
        page.get_by_role("button", name="Run items.secret").click()
        expect(page.locator("h1")).to_have_text("403 · Denied by policy")
        expect(page.locator("#content")).to_contain_text("forbid-sensitive-non-operators")
        expect(page.locator("#content")).to_contain_text("recorded as entry")
        visit.check("13-denied-entry")

        page.get_by_role("link", name="Ledger", exact=True).click()
        expect(page.locator("h1")).to_have_text("403 · Denied by policy")
        expect(page.locator("#content")).to_contain_text("policy denies read_ledger for alice")
        visit.check("14-denied-ledger")

        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_text("You are signed out.")).to_be_visible()
    finally:
        context.close()
