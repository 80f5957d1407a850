"""``report.html``: a packet explains itself offline (pure: data in, bytes out).

A static page: inline CSS only, no script, no link, image, font or frame, nothing
fetched (its Content-Security-Policy says ``default-src 'none'`` too). It shows the
entry, the inputs, who called and when, the result's rows and completeness, the claim's
verdict and reason, every data file's digests, the ledger reference, the service build,
and the exact commands that verify the packet. Every value is HTML-escaped.

Where it sits: ``report.html`` is an optional tag file (FORMATS section 4), covered by
``tagmanifest-sha256.txt`` and not listed in ``packet.json``. ``packet.json`` is written
first, so the page can show the manifest hash (``digest(JCS(packet.json))``) in its verify
command without any circularity. The page is a view, not evidence: the manifest hash does
not cover it, so whoever can rewrite a bag can rewrite the page (and its tag manifest).
``govex packet verify`` with the pinned hash is what proves the packet; the page says so.
"""

from __future__ import annotations

import json
from html import escape
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from pydantic import JsonValue

    from catalog.digest import DigestSet
    from service.packets.manifest import Claim, PacketManifest

REPORT_NAME = "report.html"

_STYLE = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;
max-width:62rem;padding:0 1rem;color:#1b1f23;background:#fff}
h1{font-size:1.4rem;margin:0 0 .2rem}h2{font-size:1.1rem;margin:1.8rem 0 .5rem;
border-bottom:1px solid #d0d7de;padding-bottom:.2rem}
table{border-collapse:collapse;width:100%}th,td{text-align:left;vertical-align:top;
padding:.3rem .5rem;border-bottom:1px solid #eaeef2}th{width:14rem;font-weight:600}
code,pre{font:13px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;
overflow-wrap:anywhere;word-break:break-all}
pre{background:#f6f8fa;border:1px solid #d0d7de;padding:.7rem;white-space:pre-wrap}
.verdict{display:inline-block;padding:.1rem .5rem;border-radius:.3rem;font-weight:700}
.ok{background:#dafbe1;color:#116329}.bad{background:#ffebe9;color:#a40e26}
.unknown{background:#fff8c5;color:#7d4e00}.muted{color:#57606a}
""".strip()
_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
_VERIFY_NOTE = (
    "<p>Offline, with the packet file next to you. The manifest hash pins "
    "<code>packet.json</code>, which pins every data file; the ledger proof shows the "
    "ledger issued this packet. This page is a view covered by "
    "<code>tagmanifest-sha256.txt</code> only, not by the manifest hash: where it and "
    "<code>packet.json</code> differ, <code>packet.json</code> is the record.</p>"
)
_REASONS = {
    "scoped_surface": "the entry reads part of what the claim is about (surface: scoped)",
    "truncated": "a row or byte limit cut the result",
    "timed_out": "the statement stopped at its deadline",
    "row_security": "row security would filter rows of a table the statement reads",
    "error": "the run failed",
    "no_snapshot": "the run's boundary states no read-only snapshot",
    "bound_exceeded": "more rows than the claim allows",
    "bound_not_met": "fewer rows than the claim requires",
}
_VERDICT_MEANING = {
    "ABSENT": "proven: nothing the claim rules out is there",
    "EVIDENCE_PRESENT": "rows were found: they are evidence against the claim",
    "NOT_EVIDENCED": "this run proves nothing about the claim",
}


def _text(value: object) -> str:
    """Private: ``value`` as escaped text; strings as they are, anything else as JSON."""
    shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return escape(shown, quote=True)


def _code(value: object) -> str:
    """Private: ``value`` in a code span; a missing value (None) as a muted "none"."""
    return "<span class=muted>none</span>" if value is None else f"<code>{_text(value)}</code>"


def _rows(pairs: Iterable[tuple[str, str]]) -> str:
    """Private: a two-column table; labels are ours, values already escaped."""
    body = "".join(f"<tr><th>{escape(label)}</th><td>{value}</td></tr>" for label, value in pairs)
    return f"<table>{body}</table>"


def _get(record: Mapping[str, JsonValue], *path: str) -> JsonValue:
    """Private: ``record[path[0]][path[1]]...``, or None where a step is missing."""
    value: JsonValue = dict(record)
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _expect_text(claim: Claim) -> str:
    if isinstance(claim.expect, str):
        return "empty: the query finds no row"
    low, high = claim.expect.min_rows, claim.expect.max_rows
    if low is not None and high is not None:
        return f"between {low} and {high} rows"
    return f"at least {low} rows" if high is None else f"at most {high} rows"


def _claim_section(claim: Claim | None) -> str:
    if claim is None:
        return "<p class=muted>The entry states no claim.</p>"
    css = {"ABSENT": "ok", "EVIDENCE_PRESENT": "bad"}.get(claim.verdict, "unknown")
    verdict = f'<span class="verdict {css}">{_text(claim.verdict)}</span> '
    verdict += _text(_VERDICT_MEANING[claim.verdict])
    pairs = [
        ("Claim", _text(_expect_text(claim))),
        ("Surface", _code(claim.surface)),
        ("Verdict", verdict),
    ]
    if claim.reason is not None:
        pairs.append(("Reason", f"{_code(claim.reason)}: {_text(_REASONS[claim.reason])}"))
    return _rows(pairs)


def _inputs_section(inputs: JsonValue) -> str:
    if not isinstance(inputs, dict) or not inputs:
        return "<p class=muted>No inputs.</p>"
    return _rows((name, _code(value)) for name, value in sorted(inputs.items()))


def _files_section(manifest: PacketManifest) -> str:
    head = "<tr><th>Path</th><th>Bytes</th><th>Rows</th><th>Digests</th></tr>"
    body = "".join(
        f"<tr><td>{_code(record.path)}<br><span class=muted>{_text(record.media_type)}"
        f"</span></td><td>{record.bytes}</td>"
        f"<td>{'' if record.rows is None else record.rows}</td>"
        f"<td>sha256 {_code(record.digest.sha256)}<br>blake3 {_code(record.digest.blake3)}</td>"
        "</tr>"
        for record in manifest.files
    )
    return f"<table>{head}{body}</table>"


def verify_commands(manifest: PacketManifest, manifest_hash: DigestSet) -> tuple[str, ...]:
    """The commands that verify this packet (file ``<packet_id>.zip``), one per line.

    ``govex packet verify`` pinning the manifest hash, the packet's authority and its
    catalog digest; the ledger proof to fetch and pass for ``ledger_inclusion``; and
    ``govex gate``, which adds the claim's verdict.
    """
    file = f"{manifest.packet_id}.zip"
    pins = (
        f"--expect-manifest-hash {manifest_hash.text('sha256')} "
        f"--require-authority {manifest.authority_status.value} "
        f"--trust-catalog {manifest.catalog.catalog_digest.text('sha256')}"
    )
    proof = f"{manifest.packet_id}.tlog-proof"
    return (
        f"govex packet verify {file} {pins}",
        f"govex ledger prove --packet {manifest.packet_id} --out {proof}",
        f"govex packet verify {file} {pins} --proof {proof} --key LEDGER_VERIFIER_KEY",
        f"govex gate {file} {pins}",
    )


def render_report_html(
    manifest: PacketManifest, manifest_hash: DigestSet, *, entry_title: str | None = None
) -> bytes:
    """The UTF-8 bytes of ``report.html`` for ``manifest`` (whose hash is ``manifest_hash``).

    ``entry_title`` is the catalog entry's title (the manifest does not hold it). The
    same arguments give the same bytes.
    """
    contract = manifest.contract
    roles = _get(contract, "identity", "roles")
    who = [
        ("Principal", _code(_get(contract, "identity", "id"))),
        ("Roles", _text(", ".join(str(r) for r in roles) if isinstance(roles, list) else "")),
        ("Tenant", _code(_get(contract, "identity", "tenant"))),
        ("Authenticated by", _code(_get(contract, "identity", "auth_method"))),
        ("Key id", _code(_get(contract, "identity", "key_id"))),
        ("Tenant relation", _code(_get(contract, "tenant_relation"))),
        ("Packet created at", _code(manifest.created_at)),
        ("Call id", _code(_get(contract, "call_id"))),
    ]
    entry = [
        ("Entry", _code(manifest.entry.id)),
        ("Title", _text(entry_title) if entry_title else "<span class=muted>not given</span>"),
        ("Kind", _code(manifest.entry.kind)),
        ("Entry digest", _digests(manifest.entry.entry_digest)),
        ("Catalog", f"{_code(manifest.catalog.name)} version {_code(manifest.catalog.version)}"),
        ("Catalog digest", _digests(manifest.catalog.catalog_digest)),
        ("Authority", _code(manifest.authority_status.value)),
    ]
    result = [
        ("Verdict", _code(_get(contract, "outcome", "verdict"))),
        ("Rows", _code(_get(contract, "outcome", "rows"))),
        ("Bytes", _code(_get(contract, "outcome", "bytes"))),
        ("Complete", _text("yes" if manifest.complete else "no: a row or byte limit cut it")),
        ("Cut by", _code(_get(contract, "outcome", "cut_by"))),
        ("Row limit", _code(_get(contract, "max_rows"))),
        ("Byte limit", _code(_get(contract, "max_bytes"))),
        ("Boundary", _boundary(contract)),
    ]
    ledger = [
        ("Ledger origin", _code(manifest.ledger.origin)),
        ("call.started seq", _code(manifest.ledger.call_seq)),
        ("Manifest hash", _digests(manifest_hash)),
        ("Service version", _code(manifest.service.version)),
        ("Service module sha256", _code(manifest.service.module_sha256)),
    ]
    commands = "\n".join(verify_commands(manifest, manifest_hash))
    subtitle = " · ".join(
        _text(part) for part in (manifest.entry.id, entry_title, manifest.created_at) if part
    )
    sections = [
        f"<h1>govex packet {_text(manifest.packet_id)}</h1>",
        f"<p class=muted>{subtitle}</p>",
        "<h2>Claim</h2>",
        _claim_section(manifest.claim),
        "<h2>Entry</h2>",
        _rows(entry),
        "<h2>Inputs</h2>",
        _inputs_section(_get(contract, "inputs")),
        "<h2>Who and when</h2>",
        _rows(who),
        "<h2>Result</h2>",
        _rows(result),
        "<h2>Files</h2>",
        _files_section(manifest),
        "<h2>Ledger and service</h2>",
        _rows(ledger),
        "<h2>Verify this packet</h2>",
        _VERIFY_NOTE,
        f"<pre>{_text(commands)}</pre>",
    ]
    page = (
        "<!DOCTYPE html>\n<html lang=en>\n<head>\n<meta charset=utf-8>\n"
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">\n'
        '<meta name="referrer" content="no-referrer">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>govex packet {_text(manifest.packet_id)}: {_text(manifest.entry.id)}</title>\n"
        f"<style>{_STYLE}</style>\n</head>\n<body>\n" + "\n".join(sections) + "\n</body>\n</html>\n"
    )
    return page.encode("utf-8")


def _digests(digest: DigestSet) -> str:
    return f"sha256 {_code(digest.sha256)}<br>blake3 {_code(digest.blake3)}"


def _boundary(contract: Mapping[str, JsonValue]) -> str:
    controls = _get(contract, "boundary", "controls")
    listed: Sequence[JsonValue] = controls if isinstance(controls, list) else []
    engine = _get(contract, "boundary", "engine")
    return f"{_code(engine)}: " + ", ".join(_code(c) for c in listed)
