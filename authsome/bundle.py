"""CI bundles: chosen connections, sealed under a key of their own, carried in two CI secrets.

`authsome ci export` seals the chosen connections (their tokens, the OAuth
client each needs to refresh, and the definition when it is a custom one)
with AES-256-GCM under a fresh random key. The job gets two values:
`AUTHSOME_BUNDLE` (the sealed bundle) and `AUTHSOME_MASTER_KEY` (its key,
which is also the job's vault key). Nothing else.

In the job, `home_for` turns the bundle into a private home (0700, in the
temporary directory, one per bundle): every authsome command of the job then
uses it, so a token refreshed by one command is the token the next one uses.

Rotating refresh tokens (X revokes the whole grant when an old one is reused)
make a bundle a fork of a grant. So an exported connection is handed over: the
workstation marks it (`exported_at`) and no longer uses or refreshes it; log in
a dedicated connection for CI (`authsome login x --connection ci`). A job
that rotated the token leaves the bundle's copy spent: `spent` tells which,
and the CLI says so with the remedy. `--access-token-only` bundles carry no
refresh token at all: no fork, and the workstation keeps using the
connection, for jobs shorter than the token's life.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import secrets
import shutil
import stat
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from authsome import paths
from authsome.errors import AuthsomeError, NotConnected, UsageError, VaultError
from authsome.models import ClientCredentials, Connection
from authsome.providers import Registry, trust
from authsome.vault import Vault
from authsome.vault.crypto import KEY_ENV, MasterKey, key_id

FORMAT = "authsome-bundle/1"
PREFIX = "asb1"
ENV = "AUTHSOME_BUNDLE"


class BundleError(VaultError):
    code = "bundle_invalid"


@dataclass(frozen=True)
class Selected:
    provider: str
    connection: str


@contextmanager
def exported(vault: Vault, registry: Registry, selection: list[Selected], *,
             access_token_only: bool = False) -> Iterator[tuple[str, str, list[Selected]]]:
    """(AUTHSOME_BUNDLE, AUTHSOME_MASTER_KEY, the connections handed over) for the selected connections.

    Without --access-token-only, each connection with a refresh token is read
    and marked handed over in one step under its lock: a refresh by another
    process cannot slip in between and leave the bundle holding a spent token.
    If anything fails before the caller has given the values out (a later
    connection, the output), the marks are taken back: a bundle nobody got
    forks nothing, and the export can simply be run again.
    """
    providers = _checked(vault, registry, selection, access_token_only)
    stamp = time.time()
    handed: list[Selected] = []
    try:
        entries = [_entry(vault, item, provider, stamp, handed, access_token_only)
                   for item, provider in zip(selection, providers)]
        key = secrets.token_bytes(32)
        nonce = secrets.token_bytes(12)
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        payload = json.dumps({"format": FORMAT, "created_at": time.time(), "entries": entries}).encode()
        sealed = AESGCM(key).encrypt(nonce, payload, FORMAT.encode())
        text = f"{PREFIX}.{key_id(key)}.{base64.urlsafe_b64encode(nonce + sealed).decode().rstrip('=')}"
        yield text, base64.b64encode(key).decode(), list(handed)
    except BaseException:
        for item in handed:
            vault.update_connection(item.provider, item.connection,
                                    lambda c: c.with_changes(exported_at=None) if c is not None and c.exported_at == stamp else c)
        raise


def _entry(vault: Vault, item: Selected, provider, stamp: float, handed: list[Selected], access_token_only: bool) -> dict:
    """One connection's part of the bundle, read (and marked handed over) under its lock."""
    taken: list[Connection] = []

    def take(current):
        if current is None or current.exported_at is not None:
            raise UsageError(f"Connection '{item.connection}' of '{provider.name}' changed while it was exported.",
                             "run the export again")
        taken.append(current.with_changes(refresh_token=None) if access_token_only else current)
        if access_token_only or not current.refresh_token:
            return current
        handed.append(item)
        return current.with_changes(exported_at=stamp)

    vault.update_connection(item.provider, item.connection, take)
    conn = taken[0]
    client = vault.get_client(provider.name) if provider.auth_type == "oauth2" and conn.refresh_token else None
    return {
        "provider": provider.name,
        "connection": conn.to_dict(),
        "client": client.to_dict() if client else None,
        "definition": provider.raw if provider.source == "custom" else None,
    }


def _checked(vault: Vault, registry: Registry, selection: list[Selected], access_token_only: bool) -> list:
    """Every selected connection can be exported (checked before any is handed over)."""
    providers = []
    for i, item in enumerate(selection):
        if item in selection[:i]:
            raise UsageError(f"{item.provider}={item.connection} is named twice.", "name each connection once")
        provider = registry.get(item.provider)
        trust.check(vault, provider, [item.connection])
        conn = vault.get_connection(provider.name, item.connection)
        if conn is None:
            raise NotConnected(provider.name, item.connection)
        if conn.exported_at is not None:
            raise UsageError(f"Connection '{conn.name}' of '{provider.name}' was already handed to CI; its refresh token "
                             "lives there, so this machine cannot export it again.",
                             f"log it in again first: authsome login {provider.name} --connection {conn.name} --force")
        if conn.status() != "connected":
            raise UsageError(f"Connection '{conn.name}' of '{provider.name}' is {conn.status()}; a job could not use it.",
                             f"log in again: authsome login {provider.name} --connection {conn.name} --force")
        if access_token_only and provider.auth_type == "oauth2" and not conn.access_token:
            raise UsageError(f"Connection '{conn.name}' of '{provider.name}' has no access token to export.")
        providers.append(provider)
    return providers


def open_bundle(text: str, key_text: str | None) -> dict:
    """The bundle's content; BundleError (exit 5) for a wrong key, a damaged or a truncated bundle."""
    hint = "copy both values from the same `authsome ci export` into the CI secrets again"
    if not key_text or not key_text.strip():
        raise BundleError(f"{ENV} is set but {KEY_ENV} is missing or empty.", hint)
    try:
        key = base64.b64decode(key_text.strip(), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise BundleError(f"{KEY_ENV} is not base64 of 32 bytes.", hint)
    parts = text.strip().split(".")
    if len(parts) != 3 or parts[0] != PREFIX:
        raise BundleError(f"{ENV} is not an authsome bundle (or it was cut short).", hint)
    if parts[1] != key_id(key):
        raise BundleError(f"{ENV} was sealed with another key than this {KEY_ENV}.", hint)
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    try:
        raw = base64.urlsafe_b64decode(parts[2] + "=" * (-len(parts[2]) % 4))
        payload = AESGCM(key).decrypt(raw[:12], raw[12:], FORMAT.encode())
        data = json.loads(payload)
    except (binascii.Error, ValueError, InvalidTag, IndexError):
        raise BundleError(f"{ENV} is damaged or truncated: it does not open.", hint) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise BundleError(f"{ENV} is not an authsome bundle this version reads.", hint)
    return data


def home_for(text: str, key_text: str | None) -> Path:
    """The job's private home for this bundle, made from it on first use and reused by later commands."""
    data = open_bundle(text, key_text)
    digest = hashlib.sha256(text.strip().encode()).hexdigest()[:16]
    root = Path(tempfile.gettempdir()) / f"authsome-ci-{os.getuid()}-{digest}"
    if _usable(root):
        return root
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}-"))
    try:
        _fill(staging, data, MasterKey(base64.b64decode(key_text.strip()), "env", KEY_ENV))
        try:
            os.rename(staging, root)
        except OSError:  # another command of the job made it first
            if not _usable(root):
                raise AuthsomeError(f"Cannot use {root} as the job's home.", "remove it, then run the job again") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return root


def _usable(root: Path) -> bool:
    try:
        st = os.lstat(root)
    except FileNotFoundError:
        return False
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or stat.S_IMODE(st.st_mode) & 0o077:
        raise AuthsomeError(f"{root} exists but is not a private directory of yours; it will not hold the job's tokens.",
                            "remove it, or set TMPDIR to a directory of your own")
    return True


def _fill(home: Path, data: dict, key: MasterKey) -> None:
    os.chmod(home, paths.DIR_MODE)
    for name in ("providers", "vault"):
        (home / name).mkdir(mode=paths.DIR_MODE)
    vault = Vault(home / "vault", key=key)
    registry = Registry(user_dir=home / "providers")
    for entry in data.get("entries", []):
        name = entry["provider"]
        if entry.get("definition") is not None:
            paths.atomic_write(home / "providers" / f"{name}.json", json.dumps(entry["definition"], indent=2).encode())
        provider = registry.get(name)
        if provider.source == "custom":
            vault.put_confirmed_definition(name, trust.snapshot(provider))
        conn = Connection.from_dict({**entry["connection"], "exported_at": None})
        vault.put_connection(trust.stamped(provider, conn))
        if vault.default_connection(name) not in vault.connection_names(name):
            vault.set_default_connection(name, conn.name)  # the job's default: what was exported (x=ci)
        if entry.get("client"):
            vault.put_client(trust.stamped(provider, ClientCredentials.from_dict(entry["client"])))


def outcome(home: Path, text: str, key_text: str) -> tuple[list[Selected], list[Selected]]:
    """(spent, refused): connections whose refresh token rotated in this job (the bundle's copy would be
    refused next time), and those the provider refused (the bundle's copy was used before)."""
    data = open_bundle(text, key_text)
    vault = Vault(home / "vault", key=MasterKey(base64.b64decode(key_text.strip()), "env", KEY_ENV))
    spent, refused = [], []
    for entry in data.get("entries", []):
        original = entry["connection"]
        try:
            now = vault.get_connection(entry["provider"], original["name"])
        except AuthsomeError:
            continue
        if now is None:
            continue
        item = Selected(entry["provider"], original["name"])
        if now.state == "invalid":
            refused.append(item)
        elif original.get("refresh_token") and now.refresh_token != original["refresh_token"]:
            spent.append(item)
    return spent, refused
