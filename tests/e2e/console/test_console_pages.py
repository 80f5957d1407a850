"""Console pages over the API's core: policy 403s, ledgered reads, escaping, no outside URLs."""

from __future__ import annotations

import html
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.console.view_ledger import CHECKPOINTS_SHOWN
from tests.e2e.conftest import TOKENS
from tests.e2e.console.conftest import (
    HOSTILE,
    HOSTILE_TOKEN,
    csrf_of,
    make_console_world,
    run_call,
    sign_in,
)

LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


@dataclass(frozen=True)
class World:
    client: TestClient
    carol_call: str
    carol_packet: str
    secret_call: str
    secret_packet: str
    tmp: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One app for the module: carol's call of items.by_tenant and of items.secret (sensitive)."""
    tmp = tmp_path_factory.mktemp("console-pages")
    with TestClient(create_app(make_console_world(tmp))) as client:
        sign_in(client, TOKENS["carol"])
        carol_call = run_call(client, "items.by_tenant", {"tenant": "acme"})
        secret_call = run_call(client, "items.secret", {})
        runtime = client.app.state.runtime  # type: ignore[attr-defined]
        carol_packet = runtime.calls.get(carol_call).packet_id
        secret_packet = runtime.calls.get(secret_call).packet_id
        yield World(client, carol_call, carol_packet, secret_call, secret_packet, tmp)


def _as(world: World, token: str) -> TestClient:
    world.client.cookies.clear()
    sign_in(world.client, token)
    return world.client


def _reads_after(client: TestClient, seq: int) -> list[dict[str, object]]:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    return [
        dict(e.body)
        for e in runtime.ledger.list_entries(seq, 1000)
        if e.kind.value == "access.read"
    ]


def _size(client: TestClient) -> int:
    size: int = client.app.state.runtime.ledger.size()  # type: ignore[attr-defined]
    return size


def _assert_403_page(answer: object, *words: str) -> None:
    assert answer.status_code == 403, answer.text  # type: ignore[attr-defined]
    assert answer.headers["content-type"].startswith("text/html")  # type: ignore[attr-defined]
    text = answer.text  # type: ignore[attr-defined]
    assert "<h1>403 · " in text
    for word in words:
        assert word in text


def test_what_policy_forbids_is_a_403_page_naming_the_refusal(world: World) -> None:
    client = _as(world, TOKENS["alice"])
    _assert_403_page(client.get("/console/ledger"), "policy denies read_ledger for alice")
    _assert_403_page(client.get("/console/ledger/entries/0"), "read_ledger")
    _assert_403_page(client.get(f"/console/calls/{world.carol_call}"), "read_ledger")
    _assert_403_page(client.get("/console/calls?principal=carol"), "read_ledger")
    _assert_403_page(
        client.get(f"/console/packets/{world.carol_packet}"),
        f"policy denies read_packet of {world.carol_packet} for alice",
    )
    _assert_403_page(client.get(f"/console/packets/{world.carol_packet}/download"), "read_packet")
    bob = _as(world, TOKENS["bob"])  # an auditor: reads the ledger, but sensitive packets no
    _assert_403_page(
        bob.get(f"/console/packets/{world.secret_packet}"), "forbid-sensitive-non-operators"
    )


def test_a_run_that_policy_forbids_is_a_403_page_and_a_call_denied_entry(world: World) -> None:
    client = _as(world, TOKENS["alice"])
    page = client.get("/console/catalog/items.secret")
    before = _size(client)
    answer = client.post(
        "/console/catalog/items.secret/run", data={"csrf": csrf_of(page.text), "format": "jsonl"}
    )
    _assert_403_page(answer, "forbid-sensitive-non-operators", "recorded as entry")
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    denied = [e for e in runtime.ledger.list_entries(before, 100) if e.kind.value == "call.denied"]
    assert len(denied) == 1
    assert f"recorded as entry {denied[0].seq}" in answer.text


def test_unknown_pages_are_html_404s_and_the_api_keeps_problem_json(world: World) -> None:
    client = _as(world, TOKENS["carol"])
    for path in ("/console/calls/01NOPE", "/console/packets/01NOPE", "/console/no/such/page"):
        answer = client.get(path)
        assert answer.status_code == 404, path
        assert answer.headers["content-type"].startswith("text/html")
        assert "Traceback" not in answer.text
    for home in ("/console", "/console/"):
        answer = client.get(home, follow_redirects=False)
        assert answer.status_code == 303
        assert answer.headers["location"] == "/console/catalog"
    unknown_entry = client.get("/console/catalog/no.such")
    assert unknown_entry.status_code == 404
    invalid = client.get("/console/ledger?limit=0")
    assert invalid.status_code == 422
    assert "text/html" in invalid.headers["content-type"]
    api = client.get("/v1/calls/01NOPE", headers={"Authorization": f"Bearer {TOKENS['carol']}"})
    assert api.status_code == 404
    assert api.headers["content-type"] == "application/problem+json"


def test_console_reads_are_ledgered_as_the_same_api_reads_are(world: World) -> None:
    client = _as(world, TOKENS["carol"])
    packet = world.carol_packet
    cases = [
        ("/console/ledger?start=0&limit=5", "ledger.entries", {"start": 0, "limit": 5}),
        (f"/console/packets/{packet}", "packet.manifest", None),
        (f"/console/packets/{packet}/download", "packet.zip", None),
        (f"/console/packets/{packet}/proof", "packet.proof", None),
        ("/console/ledger/entries/1/proof", "ledger.inclusion_proof", {"seq": 1, "size": None}),
    ]
    for path, read, target in cases:
        before = _size(client)
        answer = client.get(path)
        assert answer.status_code == 200, answer.text
        reads = [r for r in _reads_after(client, before) if r["read"] == read]
        assert len(reads) == 1, (path, reads)
        assert reads[0]["request_id"] == answer.headers["x-request-id"]
        assert reads[0]["principal"]["id"] == "carol"  # type: ignore[index]
        if target is not None:
            assert reads[0]["target"] == target
        if read.startswith("packet."):
            assert reads[0]["packet_id"] == packet
    # The same read through the API records the same entry, bar the request id.
    before = _size(client)
    api = client.get(
        f"/v1/packets/{packet}/manifest", headers={"Authorization": f"Bearer {TOKENS['carol']}"}
    )
    assert api.status_code == 200
    assert client.get(f"/console/packets/{packet}").status_code == 200
    api_read, console_read = (
        {k: v for k, v in r.items() if k != "request_id"} for r in _reads_after(client, before)
    )
    assert api_read == console_read


def test_dry_run_shows_checks_policy_and_contract_and_is_ledgered(world: World) -> None:
    client = _as(world, TOKENS["alice"])
    page = client.get("/console/catalog/items.secret")
    before = _size(client)
    answer = client.post(
        "/console/catalog/items.secret/dry-run",
        data={"csrf": csrf_of(page.text), "format": "jsonl"},
    )
    assert answer.status_code == 200
    text = answer.text
    assert "A run would be refused:" in text
    assert "policy denies call of items.secret for alice (forbid-sensitive-non-operators)" in text
    assert "&#34;call_id&#34;" in text or "&quot;call_id&quot;" in text  # the contract, escaped
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    dry = [e for e in runtime.ledger.list_entries(before, 10) if e.kind.value == "call.dry_run"]
    assert len(dry) == 1
    assert f'href="/console/ledger/entries/{dry[0].seq}"' in text


def test_the_call_page_shows_contract_lifecycle_and_its_ledger_entries(world: World) -> None:
    client = _as(world, TOKENS["carol"])
    record = client.app.state.runtime.calls.get(world.carol_call)  # type: ignore[attr-defined]
    text = client.get(f"/console/calls/{world.carol_call}").text
    assert "ran_clean" in text
    assert "&#34;inputs&#34;" in text or "&quot;inputs&quot;" in text
    for seq in (record.started_seq, record.finished_seq, record.packet_seq):
        assert f'<tr id="seq-{seq}">' in text
    assert "data-events" not in text  # ended: no live block, no script
    assert "progress.js" not in text
    owner = _as(world, TOKENS["alice"])
    own = run_call(owner, "items.by_tenant", {"tenant": "acme"})
    own_page = owner.get(f"/console/calls/{own}")
    assert own_page.status_code == 200
    assert "does not let you read the ledger" in own_page.text


def test_the_calls_list_filters_by_entry_principal_verdict_state_and_date(world: World) -> None:
    client = _as(world, TOKENS["carol"])

    def listed(query: str) -> set[str]:
        answer = client.get(f"/console/calls?{query}")
        assert answer.status_code == 200, answer.text
        return set(re.findall(r'href="/console/calls/([0-9A-Z]+)"', answer.text))

    assert {world.carol_call, world.secret_call} <= listed("")
    assert listed("entry=items.secret") == {world.secret_call}
    assert world.carol_call in listed("principal=carol&verdict=ran_clean&state=completed")
    assert listed("principal=nobody") == set()
    assert listed("verdict=timed_out") == set()
    assert world.carol_call in listed("since=2000-01-01")
    assert listed("since=2999-01-01") == set()
    refused = client.get("/console/calls?verdict=maybe")
    assert refused.status_code == 422
    assert "unknown verdict" in refused.text


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        del tag
        self.urls += [v for k, v in attrs if k in {"href", "src", "action", "data-events"} and v]


def _outside(url: str) -> bool:
    parts = urlsplit(url)
    if url.startswith("//"):
        return True
    return bool(parts.scheme or parts.netloc) and (
        parts.scheme not in {"http", "https"} or parts.hostname not in LOOPBACK
    )


def test_no_page_links_or_loads_anything_outside_this_service(world: World) -> None:
    client = _as(world, TOKENS["carol"])
    record = client.app.state.runtime.calls.get(world.carol_call)  # type: ignore[attr-defined]
    pages = [
        "/console/catalog",
        "/console/catalog/items.by_tenant",
        "/console/calls",
        f"/console/calls/{world.carol_call}",
        "/console/packets",
        f"/console/packets/{world.carol_packet}",
        "/console/ledger",
        f"/console/ledger/entries/{record.packet_seq}",
        "/console/nope",
    ]
    for path in pages:
        answer = client.get(path)
        assert "default-src 'none'" in answer.headers["content-security-policy"]
        parser = _Links()
        parser.feed(answer.text)
        assert parser.urls, path
        outside = [url for url in parser.urls if _outside(url)]
        assert outside == [], (path, outside)
    client.cookies.clear()
    sign_in_page = client.get("/console/sign-in")
    parser = _Links()
    parser.feed(sign_in_page.text)
    assert [url for url in parser.urls if _outside(url)] == []
    assert "http://" not in client.get("/console/static/console.css").text
    assert "http" not in client.get("/console/static/progress.js").text


def test_hostile_principals_and_inputs_are_shown_as_text(world: World) -> None:
    client = _as(world, HOSTILE_TOKEN)
    catalog = client.get("/console/catalog").text
    assert "Signed in as <strong>&lt;script&gt;alert(" in catalog
    assert HOSTILE not in catalog
    hostile_input = '"><script>alert(document.cookie)</script>'
    page = client.get("/console/catalog/items.named")
    dry = client.post(
        "/console/catalog/items.named/dry-run",
        data={"csrf": csrf_of(page.text), "p.text": hostile_input, "format": "jsonl"},
    ).text
    assert "<script>alert" not in dry
    assert 'value="&#34;&gt;&lt;script&gt;alert(document.cookie)&lt;/script&gt;"' in dry  # Run form
    call_id = run_call(client, "items.named", {"text": hostile_input})
    ledger_reader = _as(world, TOKENS["carol"])
    for path in (
        f"/console/calls/{call_id}",
        f"/console/calls?principal={HOSTILE}",
        "/console/ledger",
    ):
        text = ledger_reader.get(path).text
        assert "<script>alert" not in text, path
        assert HOSTILE not in text, path


def test_the_verify_command_shown_verifies_the_downloaded_packet(world: World) -> None:
    client = _as(world, TOKENS["carol"])
    packet = world.carol_packet
    page = client.get(f"/console/packets/{packet}").text
    match = re.search(r'<pre class="wrap" id="verify-command">(.*?)</pre>', page, re.DOTALL)
    assert match is not None
    argv = shlex.split(html.unescape(match.group(1)))
    assert argv[:4] == ["govex", "packet", "verify", f"{packet}.zip"]
    for flag in ("--expect-manifest-hash", "--trust-catalog", "--proof", "--key"):
        assert flag in argv
    folder = world.tmp / "verify"
    folder.mkdir()
    (folder / f"{packet}.zip").write_bytes(
        client.get(f"/console/packets/{packet}/download").content
    )
    (folder / f"{packet}.tlog-proof").write_bytes(
        client.get(f"/console/packets/{packet}/proof").content
    )
    govex = Path(sys.executable).parent / "govex"
    result = subprocess.run(
        [str(govex), *argv[1:]], cwd=folder, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"^OK\s+ledger_inclusion\b", result.stdout, re.MULTILINE), result.stdout
    assert re.search(r"^OK\s+catalog_pin\b", result.stdout, re.MULTILINE), result.stdout
    assert not re.search(r"^(SKIP|FAIL)\s", result.stdout, re.MULTILINE), result.stdout


def test_the_ledger_page_shows_chain_checkpoints_consistency_and_the_chart(world: World) -> None:
    client = _as(world, TOKENS["carol"])
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    first = runtime.require_checkpointer().checkpoint()
    run_call(client, "items.all", {})
    second = runtime.require_checkpointer().checkpoint()
    before = _size(client)
    text = client.get(f"/console/ledger?old={first.size}&new={second.size}").text
    assert "Chain intact" in text
    assert runtime.require_checkpointer().verifier_key.text() in text
    assert f"Consistent</span> from {first.size} to {second.size}" in text
    assert first.root.hex() in text
    assert second.root.hex() in text
    assert '<svg class="chart"' in text
    assert "ran_clean" in text
    reads = {r["read"] for r in _reads_after(client, before)}
    assert {"ledger.entries", "ledger.consistency_proof"} <= reads


def test_the_ledger_page_lists_the_latest_checkpoints_and_proves_from_any_stored_one(
    world: World,
) -> None:
    client = _as(world, TOKENS["carol"])
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    checkpointer = runtime.require_checkpointer()
    oldest = checkpointer.checkpoint()
    for _ in range(CHECKPOINTS_SHOWN + 1):
        run_call(client, "items.all", {})
        checkpointer.checkpoint()
    count = runtime.ledger.checkpoint_count()
    assert count > CHECKPOINTS_SHOWN
    latest = runtime.ledger.latest_checkpoint()
    text = client.get(f"/console/ledger?old={oldest.size}&new={latest.size}").text
    assert f"{count} signed checkpoints; the latest {CHECKPOINTS_SHOWN} below" in text
    assert latest.root.hex() in text
    # Not listed (older than the latest 20), yet still a stored checkpoint to prove from.
    assert f"Consistent</span> from {oldest.size} to {latest.size}" in text
    refused = client.get(f"/console/ledger?old={oldest.size + 1}&new={latest.size}")
    assert refused.status_code == 422
    assert "old must be the tree size of a stored checkpoint" in refused.text


def test_console_routes_stay_out_of_the_openapi_document(world: World) -> None:
    paths = world.client.get("/openapi.json").json()["paths"]
    assert not [path for path in paths if path.startswith("/console")]
