"""Where a home's records live, and moving them: `authsome store use | init | status | push | pull`.

The service layer over `authsome.vault`: the local files of the home are
the default store; a shared PostgreSQL store is chosen with AUTHSOME_STORE or
saved in the home (`use`). Both hold the same sealed records under the same
master key, so copying between them moves ciphertext and never decrypts for
the server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from authsome import paths
from authsome.errors import UsageError, VaultCorrupt, VaultError, WrongKey
from authsome.vault import Vault
from authsome.vault.crypto import KEY_ENV, KEY_FILE, load_master_key
from authsome.vault.records import split_id
from authsome.vault.store import STORE_ENV, STORE_FILE, store_url

NO_STORE_HINT = "choose one first: `authsome store use postgresql://USER@HOST/DB`, or set AUTHSOME_STORE"


def use(home: Path, url: str) -> str | None:
    """Save the store this home uses (`local`: its own files again). Returns the URL as shown, or None."""
    url = url.strip()
    if url in ("local", "files"):
        (home / STORE_FILE).unlink(missing_ok=True)
        return None
    if not url.startswith(("postgresql://", "postgres://")):
        raise UsageError("A store is a postgresql:// URL, or `local` for this home's own files.",
                         "for example: authsome store use postgresql://authsome@db.internal/authsome")
    from authsome.vault import postgres

    if postgres.has_password(url):
        raise UsageError(
            "The URL holds a password: on a command line every process can read it, and saved it would sit "
            "in a file outside the vault.",
            "give it to PostgreSQL's client instead (~/.pgpass, PGPASSFILE or PGPASSWORD), or put the whole URL "
            "in AUTHSOME_STORE (a CI secret)")
    paths.write_private(home / STORE_FILE, url.encode() + b"\n")
    return postgres.redacted(url)


def shared(home: Path) -> Vault:
    """The home's shared store, or a UsageError when it has none."""
    if store_url(home) is None:
        raise UsageError("This home keeps its records in its own files; no shared store is chosen.", NO_STORE_HINT)
    return Vault.for_home(home)


def init(vault: Vault) -> tuple[int, bool]:
    return vault.records.init()  # type: ignore[attr-defined]


@dataclass
class Status:
    location: str
    shared: bool
    source: str  # where the choice came from: AUTHSOME_STORE, the home's store file, or the default
    schema: int | None = None
    problem: dict | None = None  # the store could not be used: the error
    counts: dict[str, int] = field(default_factory=dict)
    key: dict | None = None
    opens: int = 0
    foreign: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    unused_local: int = 0  # records in the home's files, not used while a shared store is chosen
    store_key: str | None = None  # the id of the key a shared store is sealed with

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


def status(home: Path) -> Status:
    import os

    vault = Vault.for_home(home)
    source = STORE_ENV if STORE_ENV in os.environ else (str(home / STORE_FILE) if (home / STORE_FILE).exists()
                                                         else "default")
    out = Status(vault.records.location, vault.records.shared, source)
    if vault.records.shared:
        out.unused_local = len(Vault(home / "vault").record_ids())
    try:
        if vault.records.shared:
            out.schema = vault.records.schema_version()  # type: ignore[attr-defined]
            if out.schema is None:
                return out
        ids = vault.record_ids()
        for rid in ids:
            kind = split_id(rid)[0]
            out.counts[kind] = out.counts.get(kind, 0) + 1
        sealed = ids
        if not sealed and not (home / KEY_FILE).exists() and KEY_ENV not in os.environ:
            return out  # no key yet, and nothing a key would have to open
        key = load_master_key(home, may_create=False)  # not `vault.key`: that refuses another key before listing
        vault = Vault(vault.root, key, vault.records)
        out.key = {"source": key.source, "location": key.location, "id": key.kid}
        if vault.records.shared:
            out.store_key = vault.records.key_id()  # type: ignore[attr-defined]
            if out.store_key not in (None, key.kid):
                out.problem = WrongKey(f"The store is sealed with a different master key (id {out.store_key}) "
                                       f"than this machine's (id {key.kid}).",
                                       "use the team's key: set AUTHSOME_MASTER_KEY to it").to_dict()
        for rid in sealed:
            try:
                vault.sealed_record(rid)
                out.opens += 1
            except WrongKey:
                out.foreign.append(rid)
            except VaultCorrupt:
                out.unreadable.append(rid)
    except VaultError as exc:
        out.problem = exc.to_dict()
    return out


@dataclass
class Copied:
    rid: str
    outcome: str  # copied, replaced, same, kept, or the error code that kept it from being copied
    detail: str | None = None


def copy(home: Path, *, to_shared: bool, force: bool = False) -> list[Copied]:
    """Move connections and copy the other records between the home's files and its shared store.

    `to_shared`: push (files -> store), else pull (store -> files). A
    connection leaves the side it came from once the other holds it, so one
    rotating refresh token never lives in two places; one the other side
    keeps (a different login, or a newer state of it) stays where it is.
    """
    local, remote = Vault(home / "vault"), shared(home)
    src, dst = (local, remote) if to_shared else (remote, local)
    ids = src.record_ids()
    # One key for both: the one this home has, made only when neither side holds a record.
    key = load_master_key(home, may_create=not ids and not dst.record_ids())
    src, dst = Vault(src.root, key, src.records), Vault(dst.root, key, dst.records)
    if ids:
        if to_shared:
            remote.records.claim_key(key.kid)  # type: ignore[attr-defined]
        dst.check_one_key()  # a store under another key gets nothing: it would hold two
    out = []
    for rid in ids:
        moved: bytes | None = None
        try:
            # The source's lock is held throughout: a refresh there cannot slip in between the copy
            # and the removal, leaving the spent refresh token on one side and the new one on the other.
            with src.records.locked(rid, timeout=30.0) as slot:
                if slot.data is None:
                    continue
                data, payload = src.opened(rid, slot.data)
                outcome = dst.import_record(rid, data, payload, force=force)
                # A connection is moved, not copied: two live copies of a rotating refresh token fork the
                # grant (the provider revokes it when the older one is used).
                if split_id(rid)[0] == "connection" and outcome in ("copied", "replaced", "same"):
                    moved = data
                    slot.delete()
                    outcome = "moved"
            out.append(Copied(rid, outcome))
        except (WrongKey, VaultCorrupt) as exc:
            out.append(Copied(rid, exc.code, exc.message))
        except VaultError as exc:
            if moved is not None:  # the source kept it (its store went away): the copy is taken back
                dst.drop_record(rid, moved)
            out.append(Copied(rid, exc.code, exc.message))
    return out


def rekey(home: Path) -> tuple[int, str, str | None]:
    """Seal every record of the home's store with a new master key, then make it the home's key.

    Returns (records re-sealed, where the key now is, the new key when only
    the user can put it in place: AUTHSOME_MASTER_KEY, or other machines of a
    shared store). The new key is saved in the home before the first record
    changes, so an interrupted rotation is finished by running it again.
    """
    from authsome.vault import crypto

    shared_store = Vault.for_home(home)
    old = load_master_key(home, may_create=False)  # not `vault.key`: a rotation cut short left the store
    stores = [Vault(shared_store.root, old, shared_store.records)]  # claimed by the new key already
    if shared_store.records.shared:
        stores.append(Vault(home / "vault", old))  # this home's own files share the key: sealed anew too
    if not any(v.record_ids() for v in stores) and old.source != "env":
        raise UsageError("The store holds no records yet: there is nothing to seal with a new key.",
                         "a key can be rotated once there are records")
    new = crypto.pending_key(home)
    count = 0
    for vault in stores:
        for _ in range(3):  # again, for records another machine wrote with the old key meanwhile
            changed = sum(vault.reseal(rid, new) for rid in vault.record_ids())
            count += changed
            if not changed:
                break
    if shared_store.records.shared:
        shared_store.records.set_key(old.kid, new.kid)  # type: ignore[attr-defined]
    where = crypto.install_key(home, old, new)
    shown = crypto.encoded(new) if where == crypto.KEY_ENV or shared_store.records.shared else None
    return count, where, shown
