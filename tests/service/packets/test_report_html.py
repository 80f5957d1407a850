"""report.html: a static page in every packet: no script, nothing fetched, every value escaped."""

from __future__ import annotations

import hashlib
import re
import zipfile
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from catalog.authority import AuthorityStatus
from catalog.digest import digest_bytes
from service.packets.build import PacketBuilder
from service.packets.manifest import (
    CatalogRef,
    Claim,
    ClaimBound,
    EntryRef,
    LedgerRef,
    PacketManifest,
    ServiceRef,
    manifest_hash,
)
from service.packets.readers import ZipPacketReader
from service.packets.report_html import REPORT_NAME, render_report_html
from service.packets.verify import verify_packet

from .conftest import CLOCK, PACKET_ID

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'
CONTRACT: dict[str, Any] = {
    "call_id": "01JCALLAAAAAAAAAAAAAAAAAAA",
    "identity": {
        "id": "alice",
        "roles": ["analyst", "auditor"],
        "tenant": "acme",
        "auth_method": "jwt",
        "key_id": "k-alice",
    },
    "inputs": {"customer": HOSTILE, "since": "2026-01-01"},
    "tenant_relation": "own",
    "max_rows": 1000,
    "max_bytes": 1_000_000,
    "boundary": {
        "engine": "sqlite",
        "source": "demo",
        "controls": ["mode=ro", "query_only", "read_transaction"],
    },
    "outcome": {
        "verdict": "ran_clean",
        "rows": 3,
        "bytes": 57,
        "complete": True,
        "cut_by": None,
    },
}
CLAIM = Claim(
    expect=ClaimBound(min_rows=None, max_rows=2), surface="exhaustive", verdict="NOT_EVIDENCED",
    reason="bound_exceeded",
)  # fmt: skip


def _build(tmp_path: Path, *, title: str = "Customers <b>& orders</b>") -> tuple[Path, Any]:
    builder = PacketBuilder(tmp_path / "packets", PACKET_ID)
    builder.write_table(
        path="data/result.jsonl",
        fmt="jsonl",
        columns=["id", "name"],
        rows=[(1, "a"), (2, HOSTILE), (3, "c")],
        max_bytes=None,
    )
    staged = builder.finish(
        created_at=CLOCK,
        authority_status=AuthorityStatus.sealed,
        catalog=CatalogRef(name="demo", version="1.0.0", catalog_digest=digest_bytes(b"cat")),
        entry=EntryRef(id="orders.by_customer", kind="query", entry_digest=digest_bytes(b"e")),
        contract=CONTRACT,
        complete=True,
        claim=CLAIM,
        ledger=LedgerRef(origin="govex.test/ledger", call_seq=41),
        service=ServiceRef(version="0.9.1", module_sha256="ab" * 32),
        entry_title=title,
    )
    return builder.publish(staged), staged


def _page(path: Path) -> str:
    with zipfile.ZipFile(path) as archive:
        return archive.read(f"{PACKET_ID}/{REPORT_NAME}").decode("utf-8")


class _Tags(HTMLParser):
    """Every start tag and its attributes, as a browser's tokenizer sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _tags(page: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Tags()
    parser.feed(page)
    return parser.tags


def test_every_packet_has_a_report_covered_by_the_tag_manifest(tmp_path: Path) -> None:
    path, _ = _build(tmp_path)
    with zipfile.ZipFile(path) as archive:
        page = archive.read(f"{PACKET_ID}/report.html")
        tagmanifest = archive.read(f"{PACKET_ID}/tagmanifest-sha256.txt").decode()
        packet_json = archive.read(f"{PACKET_ID}/packet.json")
    assert f"{hashlib.sha256(page).hexdigest()}  report.html\n" in tagmanifest
    assert b"report.html" not in packet_json  # packet.json lists payload files only
    with ZipPacketReader(path) as reader:
        report = verify_packet(reader)
    assert report.ok, report.summary()
    assert report.file("report.html").status == "pass"


def test_the_page_runs_no_script_and_fetches_nothing(tmp_path: Path) -> None:
    page = _page(_build(tmp_path)[0])
    assert "<script" not in page.lower()
    assert "http://" not in page
    assert "https://" not in page
    tags = _tags(page)
    names = {tag for tag, _ in tags}
    assert names.isdisjoint({"script", "img", "link", "iframe", "object", "embed", "base", "form"})
    for tag, attrs in tags:
        assert not any(a.startswith("on") for a in attrs), tag  # no event handlers
        assert "src" not in attrs
        assert "href" not in attrs
    csp = next(a["content"] for t, a in tags if t == "meta" and a.get("http-equiv"))
    assert csp is not None
    assert csp.startswith("default-src 'none'")


def test_every_value_is_escaped(tmp_path: Path) -> None:
    page = _page(_build(tmp_path)[0])
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "Customers &lt;b&gt;&amp; orders&lt;/b&gt;" in page
    assert "<b>" not in page


def test_a_url_in_a_value_stays_text(tmp_path: Path) -> None:
    page = _page(_build(tmp_path, title='<a href="https://evil.example/">x</a>')[0])
    assert "&lt;a href=&quot;https://evil.example/&quot;&gt;" in page
    assert all("href" not in attrs and tag != "a" for tag, attrs in _tags(page))


def test_the_page_states_the_facts(tmp_path: Path) -> None:
    path, staged = _build(tmp_path)
    page = _page(path)
    record = staged.manifest.files[0]
    text = re.sub(r"<[^>]+>", " ", page)
    for fact in (
        "orders.by_customer",  # entry
        staged.manifest.entry.entry_digest.sha256,
        staged.manifest.catalog.catalog_digest.sha256,
        "alice", "analyst, auditor", "acme", "jwt",  # who
        "2026-11-23T09:15:02.123456Z",  # when
        "since", "2026-01-01",  # inputs
        "ran_clean", "57",  # result
        "NOT_EVIDENCED", "bound_exceeded", "at most 2 rows", "exhaustive",  # claim
        record.path, record.digest.sha256, record.digest.blake3,  # file digests
        "govex.test/ledger", "41",  # ledger reference
        "0.9.1", "ab" * 32,  # service
    ):  # fmt: skip
        assert fact in text, fact
    assert re.search(r"Rows\s*</th><td><code>3</code>", page)
    assert re.search(r"Complete\s*</th><td>yes", page)


def test_the_verify_command_pins_the_final_manifest_hash(tmp_path: Path) -> None:
    path, staged = _build(tmp_path)
    page = _page(path)
    pinned = staged.manifest_hash.text("sha256")
    command = (
        f"govex packet verify {PACKET_ID}.zip --expect-manifest-hash {pinned} "
        f"--require-authority sealed "
        f"--trust-catalog {staged.manifest.catalog.catalog_digest.text('sha256')}"
    )
    assert command in page
    assert f"govex ledger prove --packet {PACKET_ID} --out {PACKET_ID}.tlog-proof" in page
    assert f"govex gate {PACKET_ID}.zip --expect-manifest-hash {pinned}" in page
    # the hash shown is the one of the packet.json in the zip: no circularity
    with zipfile.ZipFile(path) as archive:
        packet_json = archive.read(f"{PACKET_ID}/packet.json")
    assert digest_bytes(packet_json).text("sha256") == pinned


def test_rendering_is_pure_and_deterministic(tmp_path: Path) -> None:
    _, staged = _build(tmp_path)
    manifest: PacketManifest = staged.manifest
    first = render_report_html(manifest, manifest_hash(manifest), entry_title="T")
    assert first == render_report_html(manifest, manifest_hash(manifest), entry_title="T")
    assert first.startswith(b"<!DOCTYPE html>")
    no_claim = manifest.model_copy(update={"claim": None})
    assert b"The entry states no claim." in render_report_html(no_claim, manifest_hash(no_claim))
