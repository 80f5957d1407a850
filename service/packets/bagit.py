"""BagIt (RFC 8493, version 1.0) tag files: render, parse strictly, validate a bag.

Rendering and parsing are pure. :func:`verify_bag` reads only through the
:class:`~service.packets.readers.PacketReader` it is given, and reports every
problem it finds as a :class:`BagProblem` with a stable ``reason`` id:

    layout                    the reader refused a member (unsafe name, link, bomb, ...)
    unreadable                a listed file that cannot be read to its end (bad CRC, ...)
    bagit_txt                 bagit.txt missing, or not exactly the two declarations
    no_manifest               no payload manifest ``manifest-<alg>.txt``
    unsupported_algorithm     a manifest whose algorithm is not one of ALGORITHMS
    manifest_syntax           a manifest line that is not ``<hex><whitespace><path>``
    duplicate_path            a path listed twice in one manifest
    unsafe_path               a listed path that is absolute, has ``..``, is not NFC, ...
    manifest_path_outside_payload  a payload manifest listing a file outside ``data/``
    file_missing              a listed file that is not in the bag
    payload_not_in_manifest   a payload file some payload manifest does not list
    digest_mismatch           a listed file whose bytes do not give the listed digest
    bag_info_syntax           a bag-info.txt line that is not ``Label: value``
    payload_oxum              Payload-Oxum malformed or not the payload's octets.count
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING

from service.packets.errors import BagInvalidError, BagProblem, PacketLayoutError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from service.packets.readers import PacketReader

BAGIT_TXT = b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"
# Manifest algorithms this validator checks, with their hex digest length.
ALGORITHMS: dict[str, int] = {"sha256": 64, "sha512": 128}
_READ_CHUNK = 1 << 20
_MANIFEST_NAME = re.compile(r"^(tag)?manifest-([a-z0-9]+)\.txt$")
_MANIFEST_LINE = re.compile(r"^([0-9A-Fa-f]+)[ \t]+([^ \t].*)$")
_BAGIT_VERSION = re.compile(r"^BagIt-Version: ([0-9]+\.[0-9]+)$")
_BAG_INFO_LINE = re.compile(r"^([^\s:](?:[^:]*[^\s:])?):[ \t](.*)$")
_OXUM = re.compile(r"^([0-9]+)\.([0-9]+)$")
_DRIVE = re.compile(r"^[A-Za-z]:")
_ENCODED = {"%25": "%", "%0A": "\n", "%0D": "\r"}
_PERCENT = re.compile("%(25|0[AaDd])")


def name_problem(name: str) -> str | None:
    """Why ``name`` is not a safe bag member path, or ``None`` when it is.

    A safe name is relative, ``/``-separated, NFC-normalized, with no empty,
    ``.`` or ``..`` component, no backslash, no drive letter and no control
    character (FORMATS section 4).
    """
    problem: str | None = None
    if not name:
        problem = "empty name"
    elif name.startswith("/") or _DRIVE.match(name):
        problem = "absolute name"
    elif "\\" in name:
        problem = "backslash in name"
    elif any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):  # noqa: PLR2004 - C0 controls, DEL
        problem = "control character in name"
    elif any(part in {"", ".", ".."} for part in name.split("/")):
        problem = "empty, '.' or '..' path component"
    elif not unicodedata.is_normalized("NFC", name):
        problem = "name is not NFC-normalized"
    return problem


def render_bag_info(
    *,
    bagging_date: str,
    payload_bytes: int,
    payload_files: int,
    external_identifier: str,
    software_agent: str,
) -> bytes:
    """bag-info.txt with Bagging-Date, Payload-Oxum, External-Identifier, Bag-Software-Agent."""
    lines = [
        f"Bagging-Date: {bagging_date}",
        f"Payload-Oxum: {payload_bytes}.{payload_files}",
        f"External-Identifier: {external_identifier}",
        f"Bag-Software-Agent: {software_agent}",
    ]
    for line in lines:
        if "\n" in line or "\r" in line:
            raise ValueError(f"bag-info value on more than one line: {line!r}")
    return "".join(f"{line}\n" for line in lines).encode()


def render_manifest(digests: Mapping[str, str]) -> bytes:
    """Manifest lines ``<hex>  <path>`` and LF, sorted by path, ``%``, CR, LF percent-encoded."""
    lines = []
    for path in sorted(digests):
        encoded = path.replace("%", "%25").replace("\n", "%0A").replace("\r", "%0D")
        lines.append(f"{digests[path].lower()}  {encoded}\n")
    return "".join(lines).encode()


def _lines(data: bytes, name: str) -> list[str]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BagInvalidError([BagProblem("manifest_syntax", name, f"not UTF-8: {exc}")]) from exc
    if text and not text.endswith(("\n", "\r")):
        raise BagInvalidError([BagProblem("manifest_syntax", name, "last line is not terminated")])
    return text.splitlines()


def parse_manifest(data: bytes, *, name: str, algorithm: str) -> dict[str, str]:
    """Parse a (tag) manifest strictly into ``path -> lowercase hex``.

    Raises :class:`BagInvalidError` naming ``name:<line>`` for a line that is not
    ``<hex><spaces or tabs><path>`` (no leading or trailing whitespace), a hex
    digest of the wrong length, an unsafe path, or a path listed twice (even
    with the same digest).
    """
    width = ALGORITHMS.get(algorithm)
    if width is None:
        raise BagInvalidError(
            [BagProblem("unsupported_algorithm", name, f"algorithm {algorithm!r}")]
        )
    entries: dict[str, str] = {}
    for number, line in enumerate(_lines(data, name), start=1):
        where = f"{name}:{number}"
        match = _MANIFEST_LINE.match(line)
        if match is None or line != line.rstrip(" \t"):
            raise BagInvalidError([BagProblem("manifest_syntax", where, f"bad line {line!r}")])
        digest, raw_path = match.groups()
        if len(digest) != width:
            detail = f"{algorithm} digest has {len(digest)} hex digits, not {width}"
            raise BagInvalidError([BagProblem("manifest_syntax", where, detail)])
        path = _PERCENT.sub(lambda m: _ENCODED[m.group(0).upper()], raw_path)
        problem = name_problem(path)
        if problem is not None:
            raise BagInvalidError([BagProblem("unsafe_path", where, f"{path!r}: {problem}")])
        if path in entries:
            raise BagInvalidError([BagProblem("duplicate_path", where, f"{path!r} listed twice")])
        entries[path] = digest.lower()
    return entries


def parse_bagit_txt(data: bytes) -> str:
    """Return the BagIt version of bagit.txt; exactly two declarations, UTF-8 only."""
    try:
        lines = _lines(data, "bagit.txt")
    except BagInvalidError as exc:
        raise BagInvalidError(
            [BagProblem("bagit_txt", "bagit.txt", exc.problems[0].detail)]
        ) from exc
    match = _BAGIT_VERSION.match(lines[0]) if lines else None
    if len(lines) != 2 or match is None or lines[1] != "Tag-File-Character-Encoding: UTF-8":  # noqa: PLR2004
        detail = f"not exactly the two declarations: {lines!r}"
        raise BagInvalidError([BagProblem("bagit_txt", "bagit.txt", detail)])
    return match.group(1)


def parse_bag_info(data: bytes) -> list[tuple[str, str]]:
    """bag-info.txt as ``(label, value)`` pairs in order; indented lines continue a value."""
    try:
        lines = _lines(data, "bag-info.txt")
    except BagInvalidError as exc:
        detail = exc.problems[0].detail
        raise BagInvalidError([BagProblem("bag_info_syntax", "bag-info.txt", detail)]) from exc
    fields: list[tuple[str, str]] = []
    for number, line in enumerate(lines, start=1):
        if line[:1] in {" ", "\t"} and fields:
            label, value = fields[-1]
            fields[-1] = (label, f"{value} {line.strip()}")
            continue
        match = _BAG_INFO_LINE.match(line)
        if match is None:
            where = f"bag-info.txt:{number}"
            raise BagInvalidError([BagProblem("bag_info_syntax", where, f"bad line {line!r}")])
        fields.append((match.group(1), match.group(2)))
    return fields


def parse_oxum(value: str) -> tuple[int, int]:
    """Payload-Oxum ``octets.count`` as ``(octets, count)``."""
    match = _OXUM.match(value)
    if match is None:
        raise BagInvalidError([BagProblem("payload_oxum", "bag-info.txt", f"malformed {value!r}")])
    return int(match.group(1)), int(match.group(2))


def hash_member(
    reader: PacketReader, name: str, algorithms: Iterable[str]
) -> tuple[int, dict[str, str]]:
    """Size and hex digests of one member, read as a stream."""
    hashes = {algorithm: hashlib.new(algorithm) for algorithm in algorithms}
    size = 0
    with reader.open(name) as stream:
        while block := stream.read(_READ_CHUNK):
            size += len(block)
            for hasher in hashes.values():
                hasher.update(block)
    return size, {algorithm: hasher.hexdigest() for algorithm, hasher in hashes.items()}


@dataclass(frozen=True)
class BagSummary:
    """What a valid bag declared: version, manifest algorithms, payload octets and count."""

    version: str
    algorithms: tuple[str, ...]
    payload_bytes: int
    payload_files: int


def _parsed(
    reader: PacketReader, names: set[str], problems: list[BagProblem], *, tag: bool
) -> dict[str, dict[str, str]]:
    manifests: dict[str, dict[str, str]] = {}
    for name in sorted(names):
        match = _MANIFEST_NAME.match(name)
        if match is None or bool(match.group(1)) != tag:
            continue
        try:
            manifests[match.group(2)] = parse_manifest(
                reader.read(name), name=name, algorithm=match.group(2)
            )
        except BagInvalidError as exc:
            problems.extend(exc.problems)
        except PacketLayoutError as exc:
            problems.append(BagProblem("layout", exc.path, exc.detail))
    return manifests


def _compare(
    reader: PacketReader,
    manifests: Mapping[str, Mapping[str, str]],
    names: set[str],
    problems: list[BagProblem],
) -> None:
    """Check every listed file's digests against the bytes."""
    listed = sorted({path for entries in manifests.values() for path in entries})
    for path in listed:
        if path not in names:
            problems.append(
                BagProblem("file_missing", path, "listed in a manifest, not in the bag")
            )
            continue
        wanted = {alg: entries[path] for alg, entries in manifests.items() if path in entries}
        try:
            _, actual = hash_member(reader, path, wanted)
        except PacketLayoutError as exc:
            problems.append(BagProblem("unreadable", path, exc.detail))
            continue
        for algorithm, expected in sorted(wanted.items()):
            if actual[algorithm] != expected:
                detail = f"{algorithm} expected {expected}, actual {actual[algorithm]}"
                problems.append(BagProblem("digest_mismatch", path, detail))


def _check_bagit_txt(reader: PacketReader, names: set[str], problems: list[BagProblem]) -> str:
    if "bagit.txt" not in names:
        problems.append(BagProblem("bagit_txt", "bagit.txt", "missing"))
        return ""
    try:
        return parse_bagit_txt(reader.read("bagit.txt"))
    except BagInvalidError as exc:
        problems.extend(exc.problems)
    except PacketLayoutError as exc:
        problems.append(BagProblem("layout", exc.path, exc.detail))
    return ""


def _check_coverage(
    manifests: Mapping[str, Mapping[str, str]], payload: set[str], problems: list[BagProblem]
) -> None:
    """Every payload manifest lists every payload file, and only files under data/."""
    for algorithm, entries in sorted(manifests.items()):
        for path in sorted(set(entries) - payload):
            if not path.startswith("data/"):
                detail = f"manifest-{algorithm}.txt lists a file outside data/"
                problems.append(BagProblem("manifest_path_outside_payload", path, detail))
        for path in sorted(payload - set(entries)):
            detail = f"not listed in manifest-{algorithm}.txt"
            problems.append(BagProblem("payload_not_in_manifest", path, detail))


def _check_oxum(
    reader: PacketReader, names: set[str], payload: set[str], problems: list[BagProblem]
) -> None:
    if "bag-info.txt" not in names:
        return
    actual = (sum(reader.size(path) for path in payload), len(payload))
    try:
        for label, value in parse_bag_info(reader.read("bag-info.txt")):
            if label.lower() == "payload-oxum" and parse_oxum(value) != actual:
                detail = f"declared {value}, actual {actual[0]}.{actual[1]}"
                problems.append(BagProblem("payload_oxum", "bag-info.txt", detail))
    except BagInvalidError as exc:
        problems.extend(exc.problems)
    except PacketLayoutError as exc:
        problems.append(BagProblem("layout", exc.path, exc.detail))


def verify_bag(reader: PacketReader) -> BagSummary:
    """Validate a BagIt bag read through ``reader`` and return its summary.

    Checks bagit.txt, every payload and tag manifest (syntax, duplicates,
    safe paths, each listed file present with matching sha256/sha512 digest),
    that every payload manifest lists every payload file, and Payload-Oxum
    when bag-info.txt declares it. Raises :class:`BagInvalidError` carrying every
    problem found; the error's ``reason`` and ``path`` are the first one's.
    """
    try:
        names = set(reader.names())
    except PacketLayoutError as exc:
        raise BagInvalidError([BagProblem("layout", exc.path, exc.detail)]) from exc
    problems: list[BagProblem] = []
    version = _check_bagit_txt(reader, names, problems)
    for name in sorted(names):
        match = _MANIFEST_NAME.match(name)
        if match is not None and match.group(2) not in ALGORITHMS:
            problems.append(BagProblem("unsupported_algorithm", name, f"{match.group(2)!r}"))
    payload = {name for name in names if name.startswith("data/")}
    manifests = _parsed(reader, names, problems, tag=False)
    if not manifests and not any(p.reason == "unsupported_algorithm" for p in problems):
        problems.append(BagProblem("no_manifest", "manifest-sha256.txt", "no payload manifest"))
    _check_coverage(manifests, payload, problems)
    _compare(reader, manifests, names, problems)
    _compare(reader, _parsed(reader, names, problems, tag=True), names, problems)
    _check_oxum(reader, names, payload, problems)
    if problems:
        raise BagInvalidError(problems)
    payload_bytes = sum(reader.size(path) for path in payload)
    return BagSummary(version, tuple(sorted(manifests)), payload_bytes, len(payload))
