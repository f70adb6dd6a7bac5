"""Raw bodies encrypted at rest: AES-256-GCM under a key id stored next to each row, so that keys can rotate.

Each `raw_event.body` is stored as `nonce (12 bytes) || ciphertext || tag (16 bytes)` and `raw_event.key_id` names
the key. The nonce is random per encryption (`os.urandom(12)`); the associated data (the route, see
`unify.ingest`) is authenticated but not stored, so a body moved to another route no longer decrypts.

Keys: `kid:key[,kid:key...]`, where `kid` is 1-64 characters of `A-Z a-z 0-9 . _ -` and `key` is 32 random bytes
in base64url (padding optional; standard base64 is accepted as well). The FIRST key is the current one: it
encrypts. The others only decrypt rows not yet re-encrypted. A new key:
`python -c "import secrets; print('k1:' + secrets.token_urlsafe(32))"`.

Where the keys come from (`unify.privacy.setup`):

- `UNIFY_RAW_KEYS`, if set. This is the way for production: keep the value in a secret manager (Vault, AWS/GCP
  Secrets Manager, a Kubernetes secret) and inject it into the environment of every worker.
- Otherwise the key file `UNIFY_DATA_DIR/raw-keys`, created on first start with a new random key (mode 0600,
  written atomically, never overwritten: when several workers start at once, all end up with the same key).
  Its format is the same string as `UNIFY_RAW_KEYS` followed by a newline; blank lines and lines starting with
  `#` are ignored, and several non-comment lines are read as one comma-separated list (the first entry is current).
  Back it up: without it, the raw bodies it encrypted are lost.

Rotation: `unify keys rotate-raw` prepends a new current key (`RawKeyring.rotated`) and re-encrypts every row under
it. Until that has finished, keep the old keys in the setting (after the new one): rows still under an old key can
only be read with it, and a worker that has not restarted yet keeps writing under the old key. Once no row
references an old key id (`select count(*) from raw_event where key_id = 'k...'`), drop it from the setting.
With random 96-bit nonces one key should seal no more than about 2^32 bodies (NIST SP 800-38D); rotate yearly,
or every billion deliveries, whichever comes first.

Cost (cryptography 50.0.2 / OpenSSL 4.0.3, Python 3.11, shared 2-vCPU AMD EPYC VM with AES-NI, best of 7 runs):
a 1 KiB body takes 2-3.5 µs to encrypt (`os.urandom(12)` included) and 2-3 µs to decrypt, 5-7 µs round trip;
64 KiB 45-90 µs round trip; 1 MiB (the default body limit) about 2 ms. Negligible next to the INSERT. The AESGCM
object of each key (about 1.3 µs to build) is built once per keyring, not per call.

No database access here: this module only turns bytes into bytes. Errors never show key material: parse errors
name the entry by position, `KeyMissing` and `DecryptionFailed` name only the key id."""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import re
import secrets
import tempfile
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "DecryptionFailed",
    "KeyMissing",
    "RawKeyring",
    "VaultError",
    "generate_keyring",
    "load_or_create_keyring",
]

KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # 96-bit GCM nonce
TAG_BYTES = 16
SETTING = "UNIFY_RAW_KEYS"
_FORMAT = "expected 'kid:base64url-key[,kid:base64url-key...]'"
_KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_B64 = re.compile(r"[A-Za-z0-9+/_-]+={0,2}")


class VaultError(Exception):
    """A raw body could not be decrypted."""


class KeyMissing(VaultError):
    """The row names a key id the keyring does not hold (dropped too early, or a different deployment's keys)."""

    def __init__(self, key_id: str, known: Iterable[str]) -> None:
        self.key_id = key_id
        super().__init__(f"no raw key with id {key_id!r} (this keyring holds: {', '.join(known)})")


class DecryptionFailed(VaultError):
    """The blob did not authenticate: altered, truncated, bound to other associated data, or not sealed by this key."""

    def __init__(self, key_id: str, reason: str) -> None:
        self.key_id = key_id
        super().__init__(f"raw body under key {key_id!r} cannot be decrypted: {reason}")


def _encode_key(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).rstrip(b"=").decode("ascii")


def _decode_key(text: str, where: str) -> bytes:
    """base64url (or standard base64), padding optional. Errors name `where`, never the text."""
    if not _B64.fullmatch(text):
        raise ValueError(f"{where}: the key is not base64url (allowed: A-Z a-z 0-9 - _, optional '=' padding)")
    body = text.rstrip("=").replace("+", "-").replace("/", "_")
    try:
        key = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        raise ValueError(f"{where}: the key is not valid base64url (wrong length)") from None
    if len(key) != KEY_BYTES:
        raise ValueError(f"{where}: the key decodes to {len(key)} bytes; AES-256 needs exactly {KEY_BYTES}")
    return key


def _new_key_id(taken: Iterable[str]) -> str:
    taken = set(taken)
    key_id = "k" + datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    while key_id in taken:  # two rotations within a second
        key_id = "k" + datetime.now(UTC).strftime("%Y%m%d%H%M%S") + "-" + secrets.token_hex(2)
    return key_id


class RawKeyring:
    """The current key (used to encrypt) and older keys (still able to decrypt), by key id.

    Immutable: `rotated()` returns a new keyring. `repr()` shows key ids only."""

    __slots__ = ("_ciphers", "_keys", "current_id")

    current_id: str

    def __init__(self, keys: Iterable[tuple[str, bytes]]) -> None:
        """`keys`: (key id, 32 raw bytes) pairs, the current one first."""
        self._keys: dict[str, bytes] = {}
        for n, (key_id, key) in enumerate(keys, start=1):
            if not isinstance(key_id, str) or not _KEY_ID.fullmatch(key_id):
                raise ValueError(f"key {n}: a key id is 1-64 characters of A-Z a-z 0-9 . _ -")
            if key_id in self._keys:
                raise ValueError(f"key {n}: key id {key_id!r} appears twice")
            if not isinstance(key, bytes | bytearray) or len(key) != KEY_BYTES:
                size = len(key) if isinstance(key, bytes | bytearray) else type(key).__name__
                raise ValueError(f"key {n} ({key_id!r}): AES-256 needs exactly {KEY_BYTES} bytes, got {size}")
            self._keys[key_id] = bytes(key)
        if not self._keys:
            raise ValueError("a raw keyring needs at least one key")
        self.current_id = next(iter(self._keys))
        self._ciphers = {key_id: AESGCM(key) for key_id, key in self._keys.items()}

    @property
    def key_ids(self) -> tuple[str, ...]:
        """All key ids, the current one first."""
        return tuple(self._keys)

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._keys

    def __repr__(self) -> str:
        return f"RawKeyring(current_id={self.current_id!r}, key_ids={self.key_ids!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RawKeyring):
            return NotImplemented
        return list(self._keys.items()) == list(other._keys.items())

    __hash__ = None  # type: ignore[assignment]

    def encrypt(self, plaintext: bytes, *, associated_data: bytes = b"") -> tuple[str, bytes]:
        """Seal under the current key: (key id, nonce || ciphertext || tag). Pass the same associated data to
        `decrypt`."""
        nonce = os.urandom(NONCE_BYTES)
        return self.current_id, nonce + self._ciphers[self.current_id].encrypt(nonce, plaintext, associated_data)

    def decrypt(self, key_id: str, blob: bytes, *, associated_data: bytes = b"") -> bytes:
        """Open a blob sealed by `encrypt` under `key_id`. Raises KeyMissing or DecryptionFailed (both VaultError)."""
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise KeyMissing(key_id, self._keys)
        if len(blob) < NONCE_BYTES + TAG_BYTES:
            raise DecryptionFailed(key_id, f"{len(blob)} bytes is shorter than nonce and tag")
        view = memoryview(blob)
        try:
            return cipher.decrypt(view[:NONCE_BYTES], view[NONCE_BYTES:], associated_data)
        except InvalidTag:
            raise DecryptionFailed(
                key_id, "authentication failed (altered or truncated, other associated data, or another key)"
            ) from None

    @classmethod
    def from_setting(cls, value: str, *, source: str = SETTING) -> RawKeyring:
        """Parse `kid:base64url-key[,kid:base64url-key...]` (the first is current). `source` names the setting or
        file in error messages, which refer to entries by position and never show a key or key id."""
        entries = [entry.strip() for entry in value.split(",")]
        if not any(entries):
            raise ValueError(f"{source} is empty; {_FORMAT}")
        keys: list[tuple[str, bytes]] = []
        seen: dict[str, int] = {}
        for n, entry in enumerate(entries, start=1):
            where = f"{source} entry {n}"
            if not entry:
                raise ValueError(f"{where} is empty (a stray comma?); {_FORMAT}")
            key_id, sep, key_text = entry.partition(":")
            key_id, key_text = key_id.strip(), key_text.strip()
            if not sep:
                raise ValueError(f"{where} has no ':' between key id and key; {_FORMAT}")
            if not _KEY_ID.fullmatch(key_id):
                raise ValueError(f"{where}: the key id must be 1-64 characters of A-Z a-z 0-9 . _ -")
            if key_id in seen:
                raise ValueError(f"{where} has the same key id as entry {seen[key_id]}")
            seen[key_id] = n
            if not key_text:
                raise ValueError(f"{where} has no key after ':'; {_FORMAT}")
            keys.append((key_id, _decode_key(key_text, where)))
        return cls(keys)

    def to_setting(self) -> str:
        """The value for UNIFY_RAW_KEYS (secret: it holds every key)."""
        return ",".join(f"{key_id}:{_encode_key(key)}" for key_id, key in self._keys.items())

    def rotated(self) -> RawKeyring:
        """A new keyring: a new random current key (id `k` + UTC yyyymmddHHMMSS) first, every old key kept."""
        return RawKeyring([(_new_key_id(self._keys), AESGCM.generate_key(bit_length=256)), *self._keys.items()])


def generate_keyring() -> RawKeyring:
    """A keyring with one new random key."""
    return RawKeyring([(_new_key_id(()), AESGCM.generate_key(bit_length=256))])


def _read_key_file(path: Path) -> RawKeyring:
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    value = ",".join(line for line in lines if line and not line.startswith("#"))
    return RawKeyring.from_setting(value, source=f"key file {path}")


def load_or_create_keyring(path: Path) -> tuple[RawKeyring, bool]:
    """The keyring in `path`, or, if there is no such file, a new one written there: (keyring, created).

    The new file is written to a temporary file (mode 0600) in the same directory, flushed, then hard-linked into
    place, which fails if the file appeared meanwhile: concurrent starters never overwrite each other's key, the
    losers read the winner's file. Missing parent directories are created with mode 0700."""
    path = Path(path)
    if path.exists():
        return _read_key_file(path), False
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    keyring = generate_keyring()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            if hasattr(os, "fchmod"):
                os.fchmod(f.fileno(), 0o600)
            f.write(keyring.to_setting() + "\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return _read_key_file(path), False
        _fsync_dir(path.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return keyring, True


def _fsync_dir(directory: Path) -> None:
    """Make the new directory entry durable (POSIX; a no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def replace_key_file(path: Path, keyring: RawKeyring) -> None:
    """Write `keyring` over the key file at `path` atomically (0600 temporary file, fsync, rename)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(keyring.to_setting() + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
