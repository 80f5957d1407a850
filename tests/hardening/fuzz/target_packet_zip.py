"""Fuzz target: any bytes as a packet zip, through the whole FORMATS section 4 contract.

``verify_packet_file`` promises never to raise for a bad packet: whatever the bytes (a
damaged zip, a zip bomb, hostile names), it returns a report with every check named, the
first failing one with its place and the rest skipped. Any exception is a crash. Seeds:
valid packets built at run time, and the BagIt conformance bags zipped (see test_fuzz).
"""

from __future__ import annotations

from service.packets.verify import CHECKS, verify_packet_file
from tests.hardening.fuzz.packets import prepare_packet_target, scratch_zip, seed_packets


def prepare() -> None:
    prepare_packet_target()


def seeds() -> list[bytes]:
    return seed_packets()


def test_one_input(data: bytes) -> None:
    path = scratch_zip()
    path.write_bytes(data)
    report = verify_packet_file(path)
    names = [check.name for check in report.checks]
    assert names == list(CHECKS), names
    failed = [check for check in report.checks if check.status == "fail"]
    assert len(failed) <= 1, report.summary()
    if failed:
        later = names[names.index(failed[0].name) + 1 :]
        assert all(report.check(name).status == "skip" for name in later), report.summary()
        assert failed[0].detail, report.summary()  # a refusal says what was wrong
