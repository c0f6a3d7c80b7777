"""The master key and AES-256-GCM sealing of vault records.

A sealed record is a small JSON envelope:
    {"format": "authsome-vault/1", "kid": "<key id>", "nonce": "<b64>", "ciphertext": "<b64>"}
The record's identity ("connection:x/default") is the associated data, so a
file copied or renamed onto another record fails authentication. The key id
(a hash of the key) lets a wrong key be told apart from a damaged file.

Key lookup order: AUTHSOME_MASTER_KEY (base64 of 32 bytes), then an OS
keyring with a usable backend, then the 0600 file `master.key` in the home.
A new key is made only for a vault without sealed records: with records,
a missing key is an error that says how to restore it, never a fresh key
that would open none of them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from authsome import paths
from authsome.errors import KeyInvalid, KeyMissing, VaultCorrupt, WrongKey

FORMAT = "authsome-vault/1"
KEY_ENV = "AUTHSOME_MASTER_KEY"
KEYRING_ENV = "AUTHSOME_KEYRING"  # "0" disables the OS keyring
KEYRING_SERVICE = "authsome"
KEY_FILE = "master.key"
NONCE_BYTES = 12

KeySource = Literal["env", "keyring", "file"]


@dataclass(frozen=True, repr=False)
class MasterKey:
    key: bytes
    source: KeySource
    location: str

    @property
    def kid(self) -> str:
        return key_id(self.key)

    def __repr__(self) -> str:  # never show the key itself
        return f"MasterKey(source={self.source!r}, kid={self.kid!r})"


def sealed_kid(data: bytes) -> str | None:
    """The key id a sealed record names, without opening it (None: not a readable envelope)."""
    try:
        envelope = json.loads(data)
        return envelope.get("kid") if isinstance(envelope, dict) and envelope.get("format") == FORMAT else None
    except ValueError:
        return None


def key_id(key: bytes) -> str:
    return hashlib.sha256(b"authsome-key-id\0" + key).hexdigest()[:16]


def _decode_key(text: str, origin: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise KeyInvalid(
            f"The master key from {origin} is not base64 of 32 bytes.",
            "use the key this vault was created with; a new vault's key can be generated with: "
            'python -c "import os,base64;print(base64.b64encode(os.urandom(32)).decode())"',
        )
    return key


def _usable_keyring():
    """The keyring module's backend, or None when no real backend exists."""
    if os.environ.get(KEYRING_ENV, "1") == "0":
        return None
    try:
        import keyring
        from keyring.backends import chainer, fail
    except Exception:
        return None
    try:
        backend = keyring.get_keyring()
    except Exception:
        return None
    if isinstance(backend, fail.Keyring):
        return None
    if isinstance(backend, chainer.ChainerBackend) and not backend.backends:
        return None
    if getattr(backend, "priority", 0) <= 0:
        return None
    return backend


def load_master_key(home: Path, *, may_create: bool = True) -> MasterKey:
    """Find the master key, creating one on first use.

    A key is created only when none exists anywhere and `may_create` (the
    vault holds no sealed record); an existing key file is honoured even
    when a keyring backend appears later, so the vault is never orphaned by
    a newly installed keyring.
    """
    env_value = os.environ.get(KEY_ENV)
    if env_value is not None:
        if not env_value.strip():
            raise KeyInvalid(f"{KEY_ENV} is set but empty.",
                             f"set it to this vault's key (a CI secret that did not arrive?), or unset it to use "
                             f"the OS keyring or {KEY_FILE}")
        return MasterKey(_decode_key(env_value, KEY_ENV), "env", KEY_ENV)

    key_file = home / KEY_FILE
    account = str(home.resolve())
    backend = _usable_keyring()
    if backend is not None:
        try:
            stored = backend.get_password(KEYRING_SERVICE, account)
        except Exception:
            stored = None
            backend = None
        if stored:
            return MasterKey(_decode_key(stored, "the OS keyring"), "keyring", f"keyring:{KEYRING_SERVICE}")

    if key_file.exists():
        return MasterKey(_read_key_file(key_file), "file", str(key_file))
    if not may_create:
        raise KeyMissing(
            f"The vault in {home / 'vault'} holds sealed records, but no master key was found "
            f"({KEY_ENV} is unset, the OS keyring has none, {key_file} does not exist).",
            f"restore {KEY_FILE} from the backup you made with the vault, or set {KEY_ENV}; "
            "a new key would open none of these records",
        )

    # Two first commands at once must agree on one key: the keyring overwrites, so
    # creation is serialised, and everything is looked up again once the lock is held.
    paths.ensure_dir(home)
    with paths.file_lock(home / ".master-key.lock"):
        if backend is not None:
            try:
                stored = backend.get_password(KEYRING_SERVICE, account)
            except Exception:
                stored, backend = None, None
            if stored:
                return MasterKey(_decode_key(stored, "the OS keyring"), "keyring", f"keyring:{KEYRING_SERVICE}")
        if key_file.exists():
            return MasterKey(_read_key_file(key_file), "file", str(key_file))
        new_key = secrets.token_bytes(32)
        encoded = base64.b64encode(new_key).decode()
        if backend is not None:
            try:
                backend.set_password(KEYRING_SERVICE, account, encoded)
                stored = backend.get_password(KEYRING_SERVICE, account)
                if stored:  # what the keyring now holds is the key, whoever wrote it
                    return MasterKey(_decode_key(stored, "the OS keyring"), "keyring", f"keyring:{KEYRING_SERVICE}")
            except Exception:
                pass  # fall back to the key file
        return MasterKey(_create_key_file(key_file, encoded), "file", str(key_file))


def _read_key_file(path: Path) -> bytes:
    try:
        text = path.read_text()
    except OSError as exc:
        raise KeyInvalid(f"Cannot read the master key file {path}: {exc.strerror}.",
                         f"check its owner and mode (it should be yours, 0600): ls -l {path}") from None
    return _decode_key(text, str(path))


def _create_key_file(path: Path, encoded: str) -> bytes:
    """Create the key file exactly once, even when many processes race.

    Each racer writes its own temporary file and hard-links it into place;
    link() fails when the name exists, so every process ends up with the
    winner's key.
    """
    paths.ensure_dir(path.parent)
    tmp = path.parent / f"{paths.TMP_PREFIX}{path.name}.{secrets.token_hex(6)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, paths.FILE_MODE)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(encoded + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
    finally:
        os.unlink(tmp)
    return _read_key_file(path)


PENDING_FILE = "master.key.new"  # a rotation's new key, until every record is sealed with it


def pending_key(home: Path) -> MasterKey:
    """The key a rotation seals with: the one an interrupted rotation left, else a new one (saved first)."""
    path = home / PENDING_FILE
    if not path.exists():
        _create_key_file(path, base64.b64encode(secrets.token_bytes(32)).decode())
    return MasterKey(_read_key_file(path), "file", str(path))


def install_key(home: Path, old: MasterKey, new: MasterKey) -> str:
    """Make `new` this home's key where `old` came from; returns where it now is (env: nowhere, say so)."""
    if old.source == "keyring":
        backend = _usable_keyring()
        if backend is None:
            raise KeyMissing("The OS keyring that held the master key is not usable now.",
                             f"the new key is in {home / PENDING_FILE}; keep it safe, then set {KEY_ENV} to it")
        backend.set_password(KEYRING_SERVICE, str(home.resolve()), base64.b64encode(new.key).decode())
        where = f"keyring:{KEYRING_SERVICE}"
    elif old.source == "file":
        paths.atomic_write(home / KEY_FILE, base64.b64encode(new.key).decode().encode() + b"\n")
        where = str(home / KEY_FILE)
    else:
        return KEY_ENV  # the caller prints it: only the user can change the environment
    (home / PENDING_FILE).unlink(missing_ok=True)
    return where


def encoded(key: MasterKey) -> str:
    return base64.b64encode(key.key).decode()


def seal(key: MasterKey, record_id: str, plaintext: bytes) -> bytes:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = secrets.token_bytes(NONCE_BYTES)
    ciphertext = AESGCM(key.key).encrypt(nonce, plaintext, _aad(record_id))
    envelope = {
        "format": FORMAT,
        "kid": key.kid,
        "nonce": base64.b64encode(nonce).decode(),
        "ciphertext": base64.b64encode(ciphertext).decode(),
    }
    return json.dumps(envelope).encode() + b"\n"


def open_sealed(key: MasterKey, record_id: str, data: bytes, path: Path) -> bytes:
    """Decrypt a sealed record; a damaged file and a wrong key raise distinct errors."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    def corrupt(reason: str) -> VaultCorrupt:
        return VaultCorrupt(
            f"Vault record {path} is unreadable: {reason}. It was left untouched.",
            "restore it from a backup, or delete that file and log in again",
        )

    try:
        envelope = json.loads(data)
        if not isinstance(envelope, dict) or envelope.get("format") != FORMAT:
            raise corrupt("not an authsome vault record")
        nonce = base64.b64decode(envelope["nonce"], validate=True)
        ciphertext = base64.b64decode(envelope["ciphertext"], validate=True)
        kid = envelope["kid"]
    except VaultCorrupt:
        raise
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise corrupt("the file is truncated or malformed") from None
    if kid != key.kid:
        raise WrongKey(
            f"Vault record {path} was sealed with a different master key than the one from {key.location}.",
            f"use the master key this vault was created with (checked: {KEY_ENV}, the OS keyring, {KEY_FILE})",
        )
    if len(nonce) != NONCE_BYTES:
        raise corrupt("the nonce is damaged")
    try:
        return AESGCM(key.key).decrypt(nonce, ciphertext, _aad(record_id))
    except InvalidTag:
        raise corrupt("authentication failed (the file was modified, damaged, or moved from another record)") from None


def _aad(record_id: str) -> bytes:
    return f"{FORMAT}\0{record_id}".encode()
