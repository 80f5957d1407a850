"""The console's test world: the e2e catalog plus three entries, keys (one hostile), a ledger key.

``console_world`` is a fresh world per test; ``signed_in`` signs a TestClient in through
the sign-in form, as a browser would (the form's CSRF token and cookie included).
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from catalog.load import SEAL_FILE, load_catalog_dir, write_seal
from catalog.seal import compute_seal
from ledger.keys import SignerKey
from service.api_keys import token_hash
from service.settings import Settings
from tests.e2e.conftest import TOKENS, key_records, write_catalog, write_source

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

HOSTILE = "<script>alert('principal')</script>"
HOSTILE_TOKEN = "tok-hostile"
ALL_TOKENS = {**TOKENS, "hostile": HOSTILE_TOKEN}
EXTRA_TOML = """
[[query]]
id = "items.counting"
title = "Counts to four million in buckets (takes a moment)"
source = "items"
sql = "queries/counting.sql"

[[query]]
id = "items.approved"
title = "Items, once an operator approved the call"
source = "items"
sql = "queries/all.sql"
requires_approval = true

[[query]]
id = "items.named"
title = "Items whose name contains a text"
source = "items"
sql = "queries/named.sql"
[query.params.text]
type = "string"
max_length = 100
"""
EXTRA_QUERIES = {
    # Some seconds of work in SQLite: long enough to watch it run.
    "counting.sql": (
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 4000000)\n"
        "SELECT x / 100000 AS bucket, count(*) AS n FROM c\n"
        "GROUP BY bucket\n"
        "ORDER BY bucket\n"
    ),
    "named.sql": "SELECT id, name FROM items WHERE instr(name, :text) > 0 ORDER BY id\n",
}
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def write_console_catalog(directory: Path) -> Path:
    write_catalog(directory, seal=False, extra_toml=EXTRA_TOML)
    for name, text in EXTRA_QUERIES.items():
        (directory / "queries" / name).write_text(text)
    write_seal(directory / SEAL_FILE, compute_seal(load_catalog_dir(directory), datetime.now(UTC)))
    return directory


def write_console_keys(path: Path) -> Path:
    keys = key_records()
    keys.append(
        {
            "key_id": "k-hostile",
            "principal": HOSTILE,
            "roles": ["analyst"],
            "tenant": "acme",
            "sha256": token_hash(HOSTILE_TOKEN),
            "expires_at": None,
        }
    )
    path.write_text(json.dumps({"format": "govex.keys/v1", "keys": keys}))
    return path


def make_console_world(tmp_path: Path, *, ledger_key: bool = True, **overrides: object) -> Settings:
    """A sealed catalog, a source, keys, and (unless told not) a ledger signing key."""
    origin = "govex.test/ledger/console"
    tmp_path.mkdir(parents=True, exist_ok=True)
    key_file = None
    if ledger_key:
        key_file = tmp_path / "ledger.key"
        key_file.write_text(SignerKey.generate(origin).text() + "\n")
    values: dict[str, object] = {
        "catalog_dir": write_console_catalog(tmp_path / "catalog"),
        "sources": {"items": str(write_source(tmp_path / "items.sqlite"))},
        "keys_file": write_console_keys(tmp_path / "keys.json"),
        "ledger_url": f"sqlite:///{tmp_path / 'ledger.sqlite'}",
        "packet_root": tmp_path / "packets",
        "origin": origin,
        "ledger_key_file": key_file,
        "checkpoint_interval_s": 0,
        **overrides,
    }
    return Settings.model_validate(values)


@pytest.fixture
def console_world(tmp_path: Path) -> Settings:
    return make_console_world(tmp_path)


def csrf_of(html: str) -> str:
    """The CSRF token of the first form on a page."""
    match = _CSRF.search(html)
    assert match is not None, "the page has no form with a CSRF token"
    return str(match.group(1))


def sign_in(client: TestClient, token: str) -> None:
    """Sign ``client`` in through the form; the session cookie stays in its jar."""
    form = client.get("/console/sign-in")
    assert form.status_code == 200
    answer = client.post(
        "/console/sign-in",
        data={"csrf": csrf_of(form.text), "token": token, "next": "/console/catalog"},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/console/catalog"


def wait_done(client: TestClient, call_id: str, timeout_s: float = 30.0) -> None:
    """Wait until the call index says ``call_id`` has ended."""
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        record = runtime.calls.get(call_id)
        if record is not None and record.done:
            return
        time.sleep(0.05)
    pytest.fail(f"call {call_id} did not end within {timeout_s} s")


def run_call(client: TestClient, entry: str, params: dict[str, str]) -> str:
    """Run ``entry`` through the console's forms (entry page, run); its call id, once ended."""
    page = client.get(f"/console/catalog/{entry}")
    assert page.status_code == 200, page.text
    data = {"csrf": csrf_of(page.text), "format": "jsonl"}
    data.update({f"p.{name}": value for name, value in params.items()})
    answer = client.post(f"/console/catalog/{entry}/run", data=data, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    call_id = str(answer.headers["location"]).rsplit("/", 1)[1]
    wait_done(client, call_id)
    return call_id
