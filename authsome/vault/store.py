"""The vault: records sealed with the master key, kept in a store (local files, or PostgreSQL).

`Vault` seals and opens; the store (`authsome.vault.records`) keeps bytes
under record ids and holds each record's lock. Every update goes through
`update_connection`: lock, re-read, apply, write. Which store a home uses is
`AUTHSOME_STORE`, else the URL saved with `authsome store use`, else its
own files (`select`).
"""

from __future__ import annotations

import functools
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
from authsome.vault.records import PROVIDER_NAME, FileRecords, Records, record_id, split_id

CONNECTION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
DEFAULT_NAME = "default"
STORE_ENV = "AUTHSOME_STORE"
STORE_FILE = "store"  # in the home: the store URL saved with `authsome store use`


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
    def __init__(self, root: Path, key: MasterKey | None = None, records: Records | None = None):
        self.root = root  # $AUTHSOME_HOME/vault; the key file lives beside it
        self.records: Records = records if records is not None else FileRecords(root)
        self._key = key
        self._one_key_checked = False

    @classmethod
    def open(cls) -> Vault:
        return cls.for_home(paths.ensure_home())

    @classmethod
    def for_home(cls, home: Path) -> Vault:
        """The vault of `home`, in the store it is configured to use."""
        url = store_url(home)
        if url is None:
            return cls(home / "vault")
        try:
            from authsome.vault import postgres
        except ImportError:
            raise VaultError(f"{STORE_ENV} (or `authsome store use`) names a PostgreSQL store, and the PostgreSQL "
                             "driver is not installed.", "install it: pip install 'authsome[postgres]'") from None
        return cls(home / "vault", records=postgres.PostgresRecords(url))

    @property
    def home(self) -> Path:
        return self.root.parent

    @property
    def key(self) -> MasterKey:
        # Loaded on first use: listing a fresh vault needs no key. A new key is
        # made only for a vault without records (it could open none of them).
        if self._key is None:
            key = load_master_key(self.home, may_create=not self.records.ids())
            if self.records.shared:  # one key per store: its records' key, or the first one used with it
                self.records.claim_key(key.kid)  # type: ignore[attr-defined]
            self._key = key  # only once the store took it: a refused key is refused again next time
        return self._key

    def foreign_records(self) -> list[str]:
        """Records sealed with another master key than this vault's current one (as errors name them)."""
        out = []
        for rid in self.records.ids():
            data = self.records.read(rid)
            kid = sealed_kid(data) if data is not None else None
            if kid is not None and kid != self.key.kid:
                out.append(self.records.describe(rid))
        return out

    def check_one_key(self) -> None:
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

    # -- low level -----------------------------------------------------------

    def _open(self, rid: str, data: bytes | None) -> dict | None:
        if data is None:
            return None
        plaintext = open_sealed(self.key, rid, data, self.records.describe(rid))
        try:
            return json.loads(plaintext)
        except ValueError:
            raise VaultCorrupt(f"Vault record {self.records.describe(rid)} holds invalid data.") from None

    def _read(self, rid: str) -> dict | None:
        return self._open(rid, self.records.read(rid))

    def _sealed(self, rid: str, payload: dict) -> bytes:
        self.check_one_key()
        return seal(self.key, rid, json.dumps(payload).encode())

    def _put(self, rid: str, payload: dict) -> None:
        sealed = self._sealed(rid, payload)
        with self.records.locked(rid, timeout=30.0) as slot:
            slot.write(sealed, slot.version + 1)

    def _delete(self, rid: str) -> bool:
        with self.records.locked(rid, timeout=30.0) as slot:
            existed = slot.data is not None
            slot.delete()
        return existed

    def stamp(self, provider: str, name: str) -> object | None:
        """Changes whenever the connection's record does (None: there is none); cheap, for every request."""
        return self.records.stamp(_conn_id(provider, name))

    # -- whole records (copies between stores of one key) -------------------

    def record_ids(self) -> list[str]:
        return self.records.ids()

    def sealed_record(self, rid: str) -> tuple[bytes, dict | None] | None:
        """A record as stored, and what it holds; raises when it does not open."""
        data = self.records.read(rid)
        return self.opened(rid, data) if data is not None else None

    def opened(self, rid: str, data: bytes) -> tuple[bytes, dict | None]:
        """(the sealed record, what it holds); a default pointer of earlier versions (a plain name) comes back
        sealed, as every store keeps it now."""
        if split_id(rid)[0] == "default" and sealed_kid(data) is None:
            payload = {"connection": data.decode(errors="replace").strip()}
            return self._sealed(rid, payload), payload
        return data, self._open(rid, data)

    def import_record(self, rid: str, data: bytes, payload: dict | None, *, force: bool = False) -> str:
        """Store a record sealed with this vault's key elsewhere: copied, replaced, same, or kept.

        A connection replaces this vault's copy only when it is a newer state
        of the same login (same creation time, higher version), other
        records only with `force`; a copy here that does not open raises and
        is left alone.
        """
        kind = split_id(rid)[0]
        self.check_one_key()
        with self.records.locked(rid, timeout=30.0) as slot:
            if slot.data == data:
                return "same"
            if slot.data is not None and not force:
                if kind != "connection":
                    return "kept"
                ours, theirs = self._open(rid, slot.data) or {}, payload or {}
                # Newer means the same login (its creation time) refreshed more often: a version
                # counter starts again at a new login, so another login is never "newer".
                if ours.get("created_at") != theirs.get("created_at") or \
                        int(ours.get("version") or 0) >= int(theirs.get("version") or 0):
                    return "kept"
            existed = slot.data is not None
            version = int((payload or {}).get("version") or 0) if kind == "connection" else slot.version + 1
            slot.write(data, max(version, 1))
            return "replaced" if existed else "copied"

    def reseal(self, rid: str, new: MasterKey) -> bool:
        """Seal one record with `new` under its lock (False: nothing to do); it must open with this vault's key."""
        with self.records.locked(rid, timeout=30.0) as slot:
            if slot.data is None or sealed_kid(slot.data) in (None, new.kid):
                return False
            plaintext = open_sealed(self.key, rid, slot.data, self.records.describe(rid))
            slot.write(seal(new, rid, plaintext), slot.version)
            return True

    def drop_record(self, rid: str, data: bytes) -> bool:
        """Delete a record, if it still is exactly `data` (False: it changed meanwhile, so it stays)."""
        with self.records.locked(rid, timeout=30.0) as slot:
            if slot.data != data:
                return False
            slot.delete()
            return True

    # -- connections ---------------------------------------------------------

    def get_connection(self, provider: str, name: str = "default") -> Connection | None:
        rid = _conn_id(provider, name)
        row = self.records.versioned(rid)
        return self._connection(rid, *row) if row is not None else None

    def _connection(self, rid: str, data: bytes, version: int) -> Connection:
        """A sealed connection, checked against the version its store keeps beside it (0: none kept)."""
        conn = Connection.from_dict(self._open(rid, data) or {})
        if version and conn.version != version:
            raise VaultCorrupt(f"Vault record {self.records.describe(rid)} holds version {conn.version} of the "
                               f"connection where the store says {version}: it was rolled back or altered. "
                               "It was left untouched.", "restore it from a backup, or log in again")
        return conn

    def update_connection(
        self,
        provider: str,
        name: str,
        change: Callable[[Connection | None], Connection | None],
        *,
        timeout: float = 30.0,
    ) -> Connection | None:
        """Read-modify-write one connection under its lock (across processes, and machines for a shared store).

        `change` receives the current record (re-read after the lock is held)
        and returns the new one, or the same object to leave it alone, or None
        to delete it. A record that cannot be read raises before `change` runs,
        so a damaged record is never overwritten.
        """
        rid = _conn_id(provider, name)
        with self.records.locked(rid, timeout=timeout) as slot:
            current = self._connection(rid, slot.data, slot.version) if slot.data is not None else None
            updated = change(current)
            if updated is current:
                return current
            if updated is None:
                slot.delete()
                return None
            version = current.version if current else 0
            updated = updated.with_changes(
                provider=provider, name=name, version=version + 1, updated_at=time.time()
            )
            slot.write(self._sealed(rid, updated.to_dict()), version + 1)
            return updated

    def put_connection(self, connection: Connection) -> Connection:
        result = self.update_connection(connection.provider, connection.name, lambda _old: connection)
        assert result is not None
        return result

    def delete_connection(self, provider: str, name: str = "default") -> bool:
        return self._delete(_conn_id(provider, name))

    def connection_names(self, provider: str) -> list[str]:
        check_provider_name(provider)
        return sorted(n for kind, p, n in map(split_id, self.records.ids())
                      if kind == "connection" and p == provider and n and CONNECTION_NAME.match(n))

    def default_connection(self, provider: str) -> str:
        """The connection commands use when none is named: the one set with `authsome default`, else "default".

        Sealed like every record, so a shared store cannot point it elsewhere;
        a home's files may still hold the plain name earlier versions wrote.
        """
        rid = record_id("default", check_provider_name(provider))
        data = self.records.read(rid)
        if not data:
            return DEFAULT_NAME
        if sealed_kid(data) is not None:
            name = str((self._open(rid, data) or {}).get("connection") or DEFAULT_NAME)
        else:
            name = data.decode(errors="replace").strip() if not self.records.shared else DEFAULT_NAME
        return name if CONNECTION_NAME.match(name) and name in self.connection_names(provider) else DEFAULT_NAME

    def set_default_connection(self, provider: str, name: str) -> None:
        check_connection_name(name)
        rid = record_id("default", check_provider_name(provider))
        sealed = self._sealed(rid, {"connection": name}) if name != DEFAULT_NAME else b""
        with self.records.locked(rid, timeout=30.0) as slot:
            if name == DEFAULT_NAME:
                slot.delete()
            else:
                slot.write(sealed, slot.version + 1)

    def providers_with_records(self) -> list[str]:
        return sorted({p for _, p, _ in map(split_id, self.records.ids()) if PROVIDER_NAME.match(p)})

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
        data = self._read(_definition_id(provider))
        return data.get("definition") if data is not None else None

    def put_confirmed_definition(self, provider: str, definition: dict) -> None:
        self._put(_definition_id(provider), {"definition": definition, "confirmed_at": time.time()})

    def delete_confirmed_definition(self, provider: str) -> None:
        self._delete(_definition_id(provider))

    # -- client credentials --------------------------------------------------

    def get_client(self, provider: str) -> ClientCredentials | None:
        data = self._read(_client_id(provider))
        return ClientCredentials.from_dict(data) if data is not None else None

    def put_client(self, client: ClientCredentials) -> None:
        self._put(_client_id(client.provider), client.to_dict())

    def delete_client(self, provider: str) -> bool:
        return self._delete(_client_id(provider))


def store_url(home: Path) -> str | None:
    """The shared store this home uses: AUTHSOME_STORE, else the URL saved in the home, else None (its files)."""
    url = os.environ.get(STORE_ENV)
    if url is None:
        try:
            url = (home / STORE_FILE).read_text().strip()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise VaultError(f"Cannot read {home / STORE_FILE}: {exc.strerror}.",
                             "check its owner and mode, or remove it to use this machine's own files") from None
    url = url.strip()
    if url in ("", "local", "files"):
        return None
    if not url.startswith(("postgresql://", "postgres://")):
        raise UsageError(f"{STORE_ENV} must be a postgresql:// URL (or 'local'); this one is not (not shown: it may "
                         "hold a password).",
                         "for example AUTHSOME_STORE=postgresql://authsome@db.internal/authsome")
    return url


def _definition_id(provider: str) -> str:
    return record_id("definition", check_provider_name(provider))


@functools.lru_cache(maxsize=256)  # on every proxied request (`stamp`): the names are checked once
def _conn_id(provider: str, name: str) -> str:
    return record_id("connection", check_provider_name(provider), check_connection_name(name))


def _client_id(provider: str) -> str:
    return record_id("client", check_provider_name(provider))
