"""Ed25519 signer and verifier keys in the C2SP signed-note text forms. Pure: no I/O.

A key belongs to a *name* (for a log, its checkpoint origin) and is known by a
4-byte *key id* (c2sp.org/signed-note, FORMATS section 5)::

    key id   = SHA-256(name || 0x0A || 0x01 || 32-byte public key)[:4]
    verifier = <name>+<8 hex key id>+<base64(0x01 || public key)>
    signer   = PRIVATE+KEY+<name>+<8 hex key id>+<base64(0x01 || 32-byte seed)>

These are exactly the forms of Go's ``golang.org/x/mod/sumdb/note``
(``NewVerifier``, ``NewSigner``, ``GenerateKey``), so keys move between the two.
Parsing refuses with :class:`~ledger.errors.KeyFormatError` naming the field
that is wrong, and never echoes private key material. :func:`decode_base64` is
the one strict base64 decoder of the C2SP texts in this package.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from ledger.errors import KeyFormatError

ED25519_ALGORITHM = 0x01
"""The signed-note signature type byte of Ed25519."""

KEY_ID_SIZE = 4
SEED_SIZE = 32
PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64

_PRIVATE_PREFIX = "PRIVATE+KEY+"
_HEX_KEY_ID = re.compile(r"[0-9a-fA-F]{8}")

# Go's unicode.IsSpace (the Unicode White_Space property), which the signed-note spec means by
# "Unicode spaces". Python's str.isspace differs (it adds U+001C..U+001F).
_UNICODE_SPACES = frozenset(
    "\t\n\v\f\r \x85\xa0\u1680"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)


def is_valid_key_name(name: str) -> bool:
    """Whether ``name`` may name a key: non-empty UTF-8, no Unicode space, no ``+``.

    That is the signed-note rule; control characters (which a signed note
    cannot carry) are refused as well.
    """
    if not name or "+" in name:
        return False
    if any(char in _UNICODE_SPACES or char < "\x20" for char in name):
        return False
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


def decode_base64(text: str) -> bytes | None:
    """Decode standard, padded base64 (RFC 4648 section 4) in canonical form only.

    Returns ``None`` for anything else: characters outside the alphabet,
    whitespace, missing or extra padding, or non-zero unused bits (two texts
    that decode to the same bytes would make one signature look like two).
    """
    if not text.isascii():
        return None
    try:
        raw = binascii.a2b_base64(text, strict_mode=True)
    except binascii.Error:
        return None
    return raw if encode_base64(raw) == text else None


def encode_base64(raw: bytes) -> str:
    """Standard, padded base64 (RFC 4648 section 4) of ``raw``."""
    return binascii.b2a_base64(raw, newline=False).decode("ascii")


def key_id(name: str, public_key: bytes) -> bytes:
    """``SHA-256(name || 0x0A || 0x01 || public_key)[:4]``: the Ed25519 key id of a name."""
    material = name.encode("utf-8") + b"\n" + bytes([ED25519_ALGORITHM]) + public_key
    return hashlib.sha256(material).digest()[:KEY_ID_SIZE]


def _check_name(name: str, *, secret: bool = False) -> None:
    """Private: raise :class:`KeyFormatError` when ``name`` is not a valid key name.

    With ``secret`` (a signer key text, where a garbled "name" may be key
    material) the message does not repeat the name.
    """
    if not is_valid_key_name(name):
        shown = "" if secret else f" {name!r}"
        raise KeyFormatError(
            f"key name{shown} is not valid: it must be non-empty, with no space, "
            "no control character and no '+'",
            field="name",
        )


@dataclass(frozen=True)
class VerifierKey:
    """An Ed25519 public key and its name: checks signatures made by a :class:`SignerKey`.

    Raises :class:`KeyFormatError` for an invalid name or a public key that is
    not 32 bytes.
    """

    name: str
    public_key: bytes
    key_id: bytes = field(init=False)
    _key: Ed25519PublicKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_name(self.name)
        if len(self.public_key) != PUBLIC_KEY_SIZE:
            raise KeyFormatError(
                f"an Ed25519 public key has {PUBLIC_KEY_SIZE} bytes, not {len(self.public_key)}",
                field="key data",
            )
        object.__setattr__(self, "key_id", key_id(self.name, self.public_key))
        object.__setattr__(self, "_key", Ed25519PublicKey.from_public_bytes(self.public_key))

    def text(self) -> str:
        """``<name>+<8 hex key id>+<base64(0x01 || public key)>``."""
        data = encode_base64(bytes([ED25519_ALGORITHM]) + self.public_key)
        return f"{self.name}+{self.key_id.hex()}+{data}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is this key's Ed25519 signature of ``message``."""
        if len(signature) != SIGNATURE_SIZE:
            return False
        try:
            self._key.verify(signature, message)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class SignerKey:
    """An Ed25519 private key and its name. Keep :meth:`text` secret; ``repr`` never shows it.

    Two signer keys are equal when their names and public keys are.
    Raises :class:`KeyFormatError` for an invalid name.
    """

    name: str
    private_key: Ed25519PrivateKey = field(repr=False, compare=False)
    verifier_key: VerifierKey = field(init=False)

    def __post_init__(self) -> None:
        _check_name(self.name)
        public = self.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        object.__setattr__(self, "verifier_key", VerifierKey(self.name, public))

    @classmethod
    def generate(cls, name: str) -> SignerKey:
        """A new key for ``name`` from the operating system's random source."""
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, name: str, seed: bytes) -> SignerKey:
        """The key whose RFC 8032 32-byte private seed is ``seed``."""
        if len(seed) != SEED_SIZE:
            raise KeyFormatError(
                f"an Ed25519 seed has {SEED_SIZE} bytes, not {len(seed)}", field="key data"
            )
        return cls(name, Ed25519PrivateKey.from_private_bytes(seed))

    @property
    def key_id(self) -> bytes:
        """The 4-byte key id (that of :attr:`verifier_key`)."""
        return self.verifier_key.key_id

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``message`` (deterministic, RFC 8032)."""
        return self.private_key.sign(message)

    def text(self) -> str:
        """``PRIVATE+KEY+<name>+<8 hex key id>+<base64(0x01 || seed)>``: SECRET."""
        seed = self.private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        data = encode_base64(bytes([ED25519_ALGORITHM]) + seed)
        return f"{_PRIVATE_PREFIX}{self.name}+{self.key_id.hex()}+{data}"


def _split_key(text: str, *, secret: bool) -> tuple[str, str, str]:
    """Private: ``name+hex+data`` into its three fields; the data may itself hold ``+``."""
    name, _, rest = text.partition("+")
    hex_id, _, data = rest.partition("+")
    _check_name(name, secret=secret)
    if _HEX_KEY_ID.fullmatch(hex_id) is None:
        raise KeyFormatError(
            f"{_label(name, secret=secret)}: the key id must be 8 hex digits after the name "
            "and a '+'",
            field="key id",
        )
    return name, hex_id, data


def _label(name: str, *, secret: bool) -> str:
    """Private: how a message names the key (a signer key's name only once it parsed)."""
    return "signer key" if secret else f"key {name}"


def _key_material(label: str, data: str, *, size: int, what: str) -> bytes:
    """Private: the ``size`` key bytes after the algorithm byte of base64 ``data``.

    The messages name the key and what is wrong, never the data.
    """
    raw = decode_base64(data)
    if not raw:
        raise KeyFormatError(
            f"{label}: the key data is not standard padded base64", field="key data"
        )
    if raw[0] != ED25519_ALGORITHM:
        raise KeyFormatError(
            f"{label}: unknown signature algorithm {raw[0]:#04x} (only Ed25519, 0x01)",
            field="algorithm",
        )
    if len(raw) != 1 + size:
        raise KeyFormatError(
            f"{label}: an Ed25519 {what} has {size} bytes, not {len(raw) - 1}", field="key data"
        )
    return raw[1:]


def parse_verifier_key(text: str) -> VerifierKey:
    """Parse ``<name>+<8 hex key id>+<base64(0x01 || public key)>``.

    Raises :class:`KeyFormatError` naming the field: ``name``, ``key id`` (not 8
    hex digits, or not the id of this name and key), ``key data`` or ``algorithm``.
    The text must be exactly the key: no surrounding whitespace.
    """
    if text.startswith(_PRIVATE_PREFIX):
        raise KeyFormatError(
            "this is a signer (private) key, not a verifier key; keep it secret",
            field="prefix",
        )
    name, hex_id, data = _split_key(text, secret=False)
    material = _key_material(f"key {name}", data, size=PUBLIC_KEY_SIZE, what="public key")
    key = VerifierKey(name, material)
    if not hmac.compare_digest(key.key_id, bytes.fromhex(hex_id)):
        raise KeyFormatError(
            f"key {name}: key id {hex_id.lower()} is not the id of this name and key "
            f"({key.key_id.hex()})",
            field="key id",
        )
    return key


def parse_signer_key(text: str) -> SignerKey:
    """Parse ``PRIVATE+KEY+<name>+<8 hex key id>+<base64(0x01 || seed)>``.

    Raises :class:`KeyFormatError` like :func:`parse_verifier_key` (field
    ``prefix`` when the text does not start with ``PRIVATE+KEY+``); the key id
    must be that of the public key derived from the seed.
    """
    if not text.startswith(_PRIVATE_PREFIX):
        raise KeyFormatError("a signer key starts with 'PRIVATE+KEY+'", field="prefix")
    name, hex_id, data = _split_key(text.removeprefix(_PRIVATE_PREFIX), secret=True)
    seed = _key_material("signer key", data, size=SEED_SIZE, what="seed")
    key = SignerKey.from_seed(name, seed)
    if not hmac.compare_digest(key.key_id, bytes.fromhex(hex_id)):
        raise KeyFormatError(
            f"signer key: key id {hex_id.lower()} is not the id of the key this name and seed give",
            field="key id",
        )
    return key
