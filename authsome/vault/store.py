"""Encrypted records on disk: one file per record, one lock per record.

Layout under `$AUTHSOME_HOME/vault/`:
    <provider>/conn.<connection>.json    a sealed Connection
    <provider>/client.json               the sealed ClientCredentials
    <provider>/.<record file>.lock       the cross-process lock for that record

One file per record means writers of different connections never contend,
and a damaged record cannot take the others down with it. Updates go
through `update_connection`: lock, re-read, apply, atomic write.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from authsome import paths
from authsome.errors import UsageError, VaultCorrupt, VaultError, WrongKey, given
from authsome.models import ClientCredentials, Connection
from authsome.vault.crypto import MasterKey, load_master_key, open_sealed, seal, sealed_kid

PROVIDER_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
CONNECTION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
CONN_PREFIX, SUFFIX = "conn.", ".json"
CLIENT_FILE = "client.json"
DEFAULT_FILE = "default-connection"  # the name of the provider's default connection, when not "default"
DEFINITION_FILE = "definition.json"  # the sealed custom definition the user confirmed (`providers.trust`)
DEFAULT_NAME = "default"


def check_provider_name(name: str) -> str:
    if not PROVIDER_NAME.match(name):
        raise UsageError(
            f"'{name}' is not a valid provider name.",
            "names are lower-case letters, digits and dashes; run `authsome list`",
        )
    return name


def check_connection_name(name: str) -> str:
    if not CONNECTION_NAME.match(name):
        raise UsageError(
            f"{given(name)} is not a valid connection name.",
            "use letters, digits, '.', '_' and '-' (at most 64), for example --connection work",
        )
    return name


@dataclass(frozen=True)
class ConnectionEntry:
    """A listed record: the connection, or the error that kept it from loading."""

    provider: str
    name: str
    connection: Connection | None
    error: VaultError | None = None


class Vault:
    def __init__(self, root: Path, key: MasterKey | None = None):
        self.root = root
        self._key = key
        self._one_key_checked = False

    @classmethod
    def open(cls) -> Vault:
        return cls(paths.ensure_home() / "vault")

    @property
    def key(self) -> MasterKey:
        # Loaded on first use: listing a fresh vault needs no key. A new key is
        # made only for a vault without records (it could open none of them).
        if self._key is None:
            self._key = load_master_key(self.root.parent, may_create=not self.record_files())
        return self._key

    def record_files(self) -> list[Path]:
        """Every sealed record on disk (connections and clients of every provider)."""
        out = []
        for provider in self.providers_with_records():
            directory = self.root / provider
            try:
                names = os.listdir(directory)
            except OSError:
                continue
            out += [directory / n for n in sorted(names)
                    if n in (CLIENT_FILE, DEFINITION_FILE) or (n.startswith(CONN_PREFIX) and n.endswith(SUFFIX))]
        return out

    def foreign_records(self) -> list[Path]:
        """Records sealed with another master key than this vault's current one."""
        out = []
        for path in self.record_files():
            try:
                kid = sealed_kid(path.read_bytes())
            except OSError:
                continue
            if kid is not None and kid != self.key.kid:
                out.append(path)
        return out

    def _check_one_key(self) -> None:
        """Refuse to write when records are sealed with another key: the vault would hold two."""
        if self._one_key_checked:
            return
        foreign = self.foreign_records()
        if foreign:
            raise WrongKey(
                f"{len(foreign)} record(s) of this vault (such as {foreign[0]}) are sealed with another master key "
                f"than the one from {self.key.location}; writing with it would leave the vault under two keys.",
                "use the key this vault was created with (`authsome doctor` lists what it cannot open)",
            )
        self._one_key_checked = True

    # -- paths ---------------------------------------------------------------

    def connection_path(self, provider: str, name: str) -> Path:
        check_provider_name(provider)
        check_connection_name(name)
        return self.root / provider / f"{CONN_PREFIX}{name}{SUFFIX}"

    def default_path(self, provider: str) -> Path:
        return self.root / check_provider_name(provider) / DEFAULT_FILE

    def definition_path(self, provider: str) -> Path:
        return self.root / check_provider_name(provider) / DEFINITION_FILE

    def client_path(self, provider: str) -> Path:
        return self.root / check_provider_name(provider) / CLIENT_FILE

    @staticmethod
    def _lock_path(record: Path) -> Path:
        return record.parent / f".{record.name}.lock"

    # -- low level -----------------------------------------------------------

    def _read(self, path: Path, record_id: str) -> dict | None:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        plaintext = open_sealed(self.key, record_id, data, path)
        try:
            return json.loads(plaintext)
        except ValueError:
            raise VaultCorrupt(f"Vault record {path} holds invalid data.") from None

    def _write(self, path: Path, record_id: str, payload: dict) -> None:
        self._check_one_key()
        paths.ensure_dir(path.parent)
        paths.atomic_write(path, seal(self.key, record_id, json.dumps(payload).encode()))

    # -- connections ---------------------------------------------------------

    def get_connection(self, provider: str, name: str = "default") -> Connection | None:
        data = self._read(self.connection_path(provider, name), _conn_id(provider, name))
        return Connection.from_dict(data) if data is not None else None

    def update_connection(
        self,
        provider: str,
        name: str,
        change: Callable[[Connection | None], Connection | None],
        *,
        timeout: float = 30.0,
    ) -> Connection | None:
        """Read-modify-write one connection under its cross-process lock.

        `change` receives the current record (re-read after the lock is held)
        and returns the new one, or the same object to leave it alone, or None
        to delete it. A record that cannot be read raises before `change` runs,
        so a damaged file is never overwritten.
        """
        path = self.connection_path(provider, name)
        with paths.file_lock(self._lock_path(path), timeout=timeout):
            current = self.get_connection(provider, name)
            updated = change(current)
            if updated is current:
                return current
            if updated is None:
                path.unlink(missing_ok=True)
                return None
            version = current.version if current else 0
            updated = updated.with_changes(
                provider=provider, name=name, version=version + 1, updated_at=time.time()
            )
            self._write(path, _conn_id(provider, name), updated.to_dict())
            return updated

    def put_connection(self, connection: Connection) -> Connection:
        result = self.update_connection(connection.provider, connection.name, lambda _old: connection)
        assert result is not None
        return result

    def delete_connection(self, provider: str, name: str = "default") -> bool:
        path = self.connection_path(provider, name)
        with paths.file_lock(self._lock_path(path)):
            existed = path.exists()
            path.unlink(missing_ok=True)
        return existed

    def connection_names(self, provider: str) -> list[str]:
        directory = self.root / check_provider_name(provider)
        try:
            names = os.listdir(directory)
        except FileNotFoundError:
            return []
        return sorted(
            n[len(CONN_PREFIX) : -len(SUFFIX)]
            for n in names
            if n.startswith(CONN_PREFIX) and n.endswith(SUFFIX)
        )

    def default_connection(self, provider: str) -> str:
        """The connection commands use when none is named: the one set with `authsome default`, else "default"."""
        try:
            name = self.default_path(provider).read_text().strip()
        except OSError:
            return DEFAULT_NAME
        return name if CONNECTION_NAME.match(name) and name in self.connection_names(provider) else DEFAULT_NAME

    def set_default_connection(self, provider: str, name: str) -> None:
        check_connection_name(name)
        path = self.default_path(provider)
        if name == DEFAULT_NAME:
            path.unlink(missing_ok=True)
            return
        paths.ensure_dir(path.parent)
        paths.atomic_write(path, name.encode() + b"\n")

    def providers_with_records(self) -> list[str]:
        try:
            entries = os.listdir(self.root)
        except FileNotFoundError:
            return []
        return sorted(e for e in entries if PROVIDER_NAME.match(e) and (self.root / e).is_dir())

    def list_connections(self, provider: str | None = None) -> list[ConnectionEntry]:
        """Every stored connection; unreadable ones are reported, not raised."""
        providers = [provider] if provider else self.providers_with_records()
        out: list[ConnectionEntry] = []
        for prov in providers:
            for name in self.connection_names(prov):
                try:
                    out.append(ConnectionEntry(prov, name, self.get_connection(prov, name)))
                except VaultError as exc:
                    out.append(ConnectionEntry(prov, name, None, exc))
        return out

    # -- the confirmed definition ---------------------------------------------

    def get_confirmed_definition(self, provider: str) -> dict | None:
        path = self.definition_path(provider)
        data = self._read(path, _definition_id(provider))
        return data.get("definition") if data is not None else None

    def put_confirmed_definition(self, provider: str, definition: dict) -> None:
        path = self.definition_path(provider)
        with paths.file_lock(self._lock_path(path)):
            self._write(path, _definition_id(provider), {"definition": definition, "confirmed_at": time.time()})

    def delete_confirmed_definition(self, provider: str) -> None:
        self.definition_path(provider).unlink(missing_ok=True)

    # -- client credentials --------------------------------------------------

    def get_client(self, provider: str) -> ClientCredentials | None:
        data = self._read(self.client_path(provider), _client_id(provider))
        return ClientCredentials.from_dict(data) if data is not None else None

    def put_client(self, client: ClientCredentials) -> None:
        path = self.client_path(client.provider)
        with paths.file_lock(self._lock_path(path)):
            self._write(path, _client_id(client.provider), client.to_dict())

    def delete_client(self, provider: str) -> bool:
        path = self.client_path(provider)
        with paths.file_lock(self._lock_path(path)):
            existed = path.exists()
            path.unlink(missing_ok=True)
        return existed


def _definition_id(provider: str) -> str:
    return f"definition:{provider}"


def _conn_id(provider: str, name: str) -> str:
    return f"connection:{provider}/{name}"


def _client_id(provider: str) -> str:
    return f"client:{provider}"
