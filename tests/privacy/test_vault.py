"""Raw-body encryption: AES-256-GCM under rotating key ids. No database."""

from __future__ import annotations

import base64
import os
import stat
import sys
import threading
from pathlib import Path

import pytest

from unify.privacy.vault import (
    DecryptionFailed,
    KeyMissing,
    RawKeyring,
    VaultError,
    generate_keyring,
    load_or_create_keyring,
)

ROUTE = b"/v1/webhooks/twilio/sms"
CARD = b"4111111111111111"
PHONE = b"+14155550123"
BODY = b'{"From": "' + PHONE + b'", "Body": "my card is ' + CARD + b' exp 12/29"}'
KEY_A = bytes(range(32))
KEY_B = bytes(range(100, 132))


def _b64(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).rstrip(b"=").decode()


def test_round_trip() -> None:
    keyring = generate_keyring()
    key_id, blob = keyring.encrypt(BODY, associated_data=ROUTE)
    assert key_id == keyring.current_id
    assert len(blob) == 12 + len(BODY) + 16
    assert keyring.decrypt(key_id, blob, associated_data=ROUTE) == BODY
    assert keyring.decrypt(*keyring.encrypt(b"")) == b""


def test_ciphertext_hides_the_body_and_nonces_differ() -> None:
    keyring = generate_keyring()
    _, blob = keyring.encrypt(BODY)
    _, again = keyring.encrypt(BODY)
    for secret in (CARD, PHONE, b"my card", CARD[-4:] + b" exp"):
        assert secret not in blob
    assert blob[:12] != again[:12]
    assert blob != again


def test_unknown_key_id_is_key_missing() -> None:
    keyring = generate_keyring()
    _, blob = keyring.encrypt(BODY)
    with pytest.raises(KeyMissing, match="'nope'") as caught:
        keyring.decrypt("nope", blob)
    assert caught.value.key_id == "nope"
    assert isinstance(caught.value, VaultError)
    other = generate_keyring()  # a different key under the same id does not authenticate
    with pytest.raises(DecryptionFailed):
        other.decrypt(other.current_id, RawKeyring([(other.current_id, KEY_A)]).encrypt(BODY)[1])


@pytest.mark.parametrize("position", [0, 5, 12, 40, -1])
def test_tampered_blob_is_decryption_failed(position: int) -> None:
    keyring = generate_keyring()
    key_id, blob = keyring.encrypt(BODY, associated_data=ROUTE)
    tampered = bytearray(blob)
    tampered[position] ^= 0x01
    with pytest.raises(DecryptionFailed) as caught:
        keyring.decrypt(key_id, bytes(tampered), associated_data=ROUTE)
    assert isinstance(caught.value, VaultError)


@pytest.mark.parametrize("cut", [0, 5, 27, 28, -1])
def test_truncated_blob_is_decryption_failed(cut: int) -> None:
    keyring = generate_keyring()
    key_id, blob = keyring.encrypt(BODY)
    with pytest.raises(DecryptionFailed):
        keyring.decrypt(key_id, blob[:cut])


def test_associated_data_must_match() -> None:
    keyring = generate_keyring()
    key_id, blob = keyring.encrypt(BODY, associated_data=ROUTE)
    with pytest.raises(DecryptionFailed):
        keyring.decrypt(key_id, blob, associated_data=b"/v1/webhooks/other")
    with pytest.raises(DecryptionFailed):
        keyring.decrypt(key_id, blob)
    key_id, blob = keyring.encrypt(BODY)
    with pytest.raises(DecryptionFailed):
        keyring.decrypt(key_id, blob, associated_data=ROUTE)


def test_rotation_encrypts_with_the_new_key_and_old_keys_still_decrypt() -> None:
    old = generate_keyring()
    old_id, old_blob = old.encrypt(BODY, associated_data=ROUTE)
    new = old.rotated()
    assert new.current_id != old_id
    assert new.key_ids == (new.current_id, old_id)
    assert new.current_id.startswith("k")
    assert new.decrypt(old_id, old_blob, associated_data=ROUTE) == BODY
    new_id, new_blob = new.encrypt(BODY, associated_data=ROUTE)
    assert new_id == new.current_id
    with pytest.raises(KeyMissing):
        old.decrypt(new_id, new_blob, associated_data=ROUTE)
    twice = new.rotated()  # within the same second: still a distinct id
    assert len(set(twice.key_ids)) == 3
    assert twice.key_ids[1:] == new.key_ids
    assert old.key_ids == (old_id,)  # rotation returns a new keyring


def test_setting_round_trip_first_is_current() -> None:
    setting = f"k2:{_b64(KEY_B)}, k1:{_b64(KEY_A)}"
    keyring = RawKeyring.from_setting(setting)
    assert keyring.current_id == "k2"
    assert keyring.key_ids == ("k2", "k1")
    assert keyring.to_setting() == f"k2:{_b64(KEY_B)},k1:{_b64(KEY_A)}"
    assert RawKeyring.from_setting(keyring.to_setting()) == keyring
    _, blob = RawKeyring([("k1", KEY_A)]).encrypt(BODY)
    assert keyring.decrypt("k1", blob) == BODY
    # standard base64 with padding, as `openssl rand -base64 32` prints it, is accepted too
    assert RawKeyring.from_setting("k1:" + base64.b64encode(KEY_B).decode()).to_setting() == f"k1:{_b64(KEY_B)}"


SECRET = _b64(KEY_A)


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("", "is empty"),
        ("  ", "is empty"),
        (SECRET, "entry 1 has no ':'"),
        (f"k1:{SECRET},", "entry 2 is empty"),
        (f"k1:{SECRET},,k0:{SECRET}", "entry 2 is empty"),
        (f"k1:{SECRET},k0:", "entry 2 has no key"),
        (f":{SECRET}", "entry 1: the key id"),
        (f"{SECRET}{SECRET}:{SECRET}", "entry 1: the key id"),  # too long
        (f"k 1:{SECRET}", "entry 1: the key id"),
        (f"k1:{SECRET[:20]}", "decodes to 15 bytes"),
        (f"k1:{SECRET}AAAA", "decodes to 35 bytes"),
        (f"k1:{SECRET[:-1]}", "decodes to 31 bytes"),
        (f"k1:{SECRET[:41]}", "not valid base64url"),
        (f"k1:{SECRET[:10]}!{SECRET[11:]}", "not base64url"),
        (f"k1:{SECRET}:x", "not base64url"),
        (f"k1:{SECRET},k1:{_b64(KEY_B)}", "entry 2 has the same key id as entry 1"),
    ],
)
def test_setting_errors_are_clear_and_never_show_key_material(setting: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        RawKeyring.from_setting(setting)
    text = str(caught.value)
    assert text.startswith("UNIFY_RAW_KEYS")
    for leak in (SECRET, SECRET[:10], SECRET[-10:], _b64(KEY_B)[:10]):
        assert leak not in text
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__ or caught.value.__context__ is None


def test_keyring_validates_keys_and_hides_them_in_repr() -> None:
    with pytest.raises(ValueError, match="32 bytes, got 16"):
        RawKeyring([("k1", bytes(16))])
    with pytest.raises(ValueError, match="at least one key"):
        RawKeyring([])
    with pytest.raises(ValueError, match="appears twice"):
        RawKeyring([("k1", KEY_A), ("k1", KEY_B)])
    keyring = RawKeyring([("k1", KEY_A)])
    assert SECRET not in repr(keyring)
    assert repr(keyring) == "RawKeyring(current_id='k1', key_ids=('k1',))"


def test_load_or_create_creates_a_private_file_once(tmp_path: Path) -> None:
    path = tmp_path / "data" / "raw-keys"
    created, was_created = load_or_create_keyring(path)
    assert was_created
    assert path.read_text() == created.to_setting() + "\n"
    if sys.platform != "win32":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["raw-keys"]  # no temporary file left behind

    loaded, was_created = load_or_create_keyring(path)
    assert not was_created
    assert loaded == created
    key_id, blob = created.encrypt(BODY, associated_data=ROUTE)
    assert loaded.decrypt(key_id, blob, associated_data=ROUTE) == BODY


def test_load_reads_an_operator_written_file(tmp_path: Path) -> None:
    path = tmp_path / "raw-keys"
    path.write_text(f"# rotated 2025-01-01\nk2:{_b64(KEY_B)}\n\nk1:{_b64(KEY_A)}\n")
    keyring, created = load_or_create_keyring(path)
    assert not created
    assert keyring.key_ids == ("k2", "k1")
    path.write_text(f"k1:{SECRET[:20]}\n")
    with pytest.raises(ValueError, match=r"key file .*raw-keys entry 1: the key decodes to 15 bytes") as caught:
        load_or_create_keyring(path)
    assert SECRET[:20] not in str(caught.value)


@pytest.mark.skipif(not hasattr(os, "link"), reason="needs hard links")
def test_concurrent_creators_agree_on_one_key(tmp_path: Path) -> None:
    path = tmp_path / "raw-keys"
    results: list[tuple[RawKeyring, bool]] = []
    start = threading.Barrier(8)

    def create() -> None:
        start.wait()
        results.append(load_or_create_keyring(path))

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(created for _, created in results) == 1
    assert all(keyring == results[0][0] for keyring, _ in results)
    assert RawKeyring.from_setting(path.read_text().strip()) == results[0][0]
