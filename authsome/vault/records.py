"""Where sealed records live: the interface every store implements, and the local files.

A store keeps opaque bytes under record ids and knows nothing of keys or
tokens; `Vault` seals and opens. Record ids name what a record is:

    connection:<provider>/<name>   a sealed Connection
    client:<provider>              the sealed ClientCredentials
    definition:<provider>          the sealed definition the user confirmed
    default:<provider>             the name of the provider's default connection (not sealed: a name)

Every change goes through `locked(id)`, which holds the record's lock across
processes (and, for a shared store, across machines) while the caller reads,
decides and writes. `stamp(id)` is cheap enough for an event loop: it changes
whenever the record does, so a reader can keep what it decrypted until then.

The local store (the default) is one file per record under
`$AUTHSOME_HOME/vault/<provider>/`, each with its own lock file, so writers
of different records never contend and a damaged file cannot take the others
down. `authsome.vault.postgres` is the shared one.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Hashable, Protocol

from authsome import paths

PROVIDER_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
CONN_PREFIX, SUFFIX = "conn.", ".json"
FILES = {"client": "client.json", "definition": "definition.json", "default": "default-connection"}
KINDS = ("connection", *FILES)


def record_id(kind: str, provider: str, name: str | None = None) -> str:
    return f"{kind}:{provider}/{name}" if kind == "connection" else f"{kind}:{provider}"


def split_id(rid: str) -> tuple[str, str, str | None]:
    """("connection", "x", "default") for "connection:x/default"; ("client", "x", None) for "client:x"."""
    kind, _, rest = rid.partition(":")
    provider, _, name = rest.partition("/")
    return kind, provider, name or None


class Slot(Protocol):
    """One record while its lock is held: what it held when the lock was taken, and how to change it."""

    data: bytes | None
    version: int  # the store's version of the record (0: none yet)

    def write(self, data: bytes, version: int) -> None: ...
    def delete(self) -> None: ...


class Records(Protocol):
    location: str  # where records live, as status and errors name it (never a password)
    shared: bool  # other machines write here too

    def read(self, rid: str) -> bytes | None: ...
    def versioned(self, rid: str) -> tuple[bytes, int] | None: ...  # the version kept beside it (0: none)
    def ids(self) -> list[str]: ...
    def locked(self, rid: str, timeout: float) -> contextlib.AbstractContextManager[Slot]: ...
    def stamp(self, rid: str) -> Hashable | None: ...
    def describe(self, rid: str) -> str: ...


class FileRecords:
    """Records as 0600 files in a 0700 directory, replaced atomically, each behind its own flock."""

    shared = False

    def __init__(self, root: Path):
        self.root = root
        self.location = str(root)
        self._paths: dict[str, Path] = {}  # a vault has a handful of records; `stamp` runs on every request

    def path(self, rid: str) -> Path:
        found = self._paths.get(rid)
        if found is None:
            kind, provider, name = split_id(rid)
            leaf = f"{CONN_PREFIX}{name}{SUFFIX}" if kind == "connection" else FILES[kind]
            found = self._paths[rid] = self.root / provider / leaf
        return found

    def describe(self, rid: str) -> str:
        return str(self.path(rid))

    def read(self, rid: str) -> bytes | None:
        try:
            return self.path(rid).read_bytes()
        except FileNotFoundError:
            return None

    def versioned(self, rid: str) -> tuple[bytes, int] | None:
        data = self.read(rid)
        return (data, 0) if data is not None else None  # files keep the version inside the record only

    def ids(self) -> list[str]:
        try:
            providers = sorted(e for e in os.listdir(self.root) if PROVIDER_NAME.match(e))
        except FileNotFoundError:
            return []
        out = []
        for provider in providers:
            try:
                names = sorted(os.listdir(self.root / provider))
            except OSError:
                continue  # not a directory, or gone
            by_file = {leaf: kind for kind, leaf in FILES.items()}
            for n in names:
                if n in by_file:
                    out.append(record_id(by_file[n], provider))
                elif n.startswith(CONN_PREFIX) and n.endswith(SUFFIX):
                    out.append(record_id("connection", provider, n[len(CONN_PREFIX):-len(SUFFIX)]))
        return out

    def stamp(self, rid: str) -> Hashable | None:
        try:
            st = os.stat(self.path(rid))
        except FileNotFoundError:
            return None
        # ctime too: nobody can set it, and inode numbers are reused by atomic replaces.
        return st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino

    @contextlib.contextmanager
    def locked(self, rid: str, timeout: float) -> Iterator[Slot]:
        path = self.path(rid)
        with paths.file_lock(path.parent / f".{path.name}.lock", timeout=timeout):
            yield _FileSlot(path, self.read(rid))


class _FileSlot:
    version = 0  # files keep the version inside the sealed record only

    def __init__(self, path: Path, data: bytes | None):
        self.path, self.data = path, data

    def write(self, data: bytes, version: int) -> None:
        paths.ensure_dir(self.path.parent)
        paths.atomic_write(self.path, data)

    def delete(self) -> None:
        self.path.unlink(missing_ok=True)
