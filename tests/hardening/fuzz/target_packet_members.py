"""Fuzz target: a valid packet with members changed, added, removed or renamed, then re-zipped.

Random zip bytes rarely get past ``layout``; this target edits the bag itself (any member's
bytes, names, a forger's recomputed BagIt manifests) so every later check is reached. On
top of "no exception", an integrity property: with the original manifest hash pinned, a
report that passes means packet.json and every payload byte are the original ones.
"""

from __future__ import annotations

import contextlib
import zipfile

import atheris

from service.packets.verify import CHECKS, verify_packet_file
from tests.hardening.fuzz.packets import original, prepare_packet_target, scratch_zip, zip_members
from tests.service.packets.conftest import PacketKit

_OPERATIONS = ("replace", "splice", "truncate", "add", "remove", "rename")


def prepare() -> None:
    prepare_packet_target()


def seeds() -> list[bytes]:
    return [bytes(range(64)), b"\x00" * 64, b"\xff" * 64]


def _edit(members: dict[str, bytes], fdp: atheris.FuzzedDataProvider) -> None:
    names = sorted(members)
    operation = _OPERATIONS[fdp.ConsumeIntInRange(0, len(_OPERATIONS) - 1)]
    name = names[fdp.ConsumeIntInRange(0, len(names) - 1)] if names else "data/x"
    data = members.get(name, b"")
    if operation == "replace":
        members[name] = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 512))
    elif operation == "splice":
        at = fdp.ConsumeIntInRange(0, len(data))
        members[name] = data[:at] + fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 64)) + data[at + 8 :]
    elif operation == "truncate":
        members[name] = data[: fdp.ConsumeIntInRange(0, len(data))]
    elif operation == "add":
        members[fdp.ConsumeUnicode(fdp.ConsumeIntInRange(0, 40))] = fdp.ConsumeBytes(64)
    elif operation == "remove":
        members.pop(name, None)
    else:
        members[fdp.ConsumeUnicode(fdp.ConsumeIntInRange(0, 40))] = members.pop(name, b"")


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    good, manifest_hash = original()
    members = dict(good)
    for _ in range(fdp.ConsumeIntInRange(1, 3)):
        _edit(members, fdp)
    if fdp.ConsumeBool():  # a forger recomputes the BagIt manifests and Payload-Oxum
        # (unless bag-info.txt is gone, or a name or bag-info.txt is not text: then the
        # members go as they are)
        with contextlib.suppress(KeyError, UnicodeError):
            members = PacketKit.rebag(members)
    root = "01JPACKETAAAAAAAAAAAAAAAAA" if fdp.ConsumeBool() else fdp.ConsumeUnicode(30)
    compression = zipfile.ZIP_STORED if fdp.ConsumeBool() else zipfile.ZIP_DEFLATED
    path = scratch_zip()
    try:
        path.write_bytes(zip_members(members, root=root, compression=compression))
    except (ValueError, UnicodeEncodeError, IndexError):
        return  # a name zipfile itself cannot write (empty, lone surrogate): nothing to verify
    report = verify_packet_file(path, expect_manifest_hash=manifest_hash)
    assert [check.name for check in report.checks] == list(CHECKS)
    if report.ok:
        changed = sorted(n for n in set(good) | set(members) if good.get(n) != members.get(n))
        payload_or_manifest = [n for n in changed if n.startswith("data/") or n == "packet.json"]
        assert not payload_or_manifest, f"verified with changed {payload_or_manifest}"
