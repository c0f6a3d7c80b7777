"""A store shared by machines: the vault's sealed records in one PostgreSQL table.

    AUTHSOME_STORE=postgresql://authsome@db.internal/authsome

The server holds what the local files hold: ciphertext sealed on the client
with the master key (the record's id bound in as associated data), the ids,
versions and times. It never sees a token, a key or the master key.

One refresh across machines: `locked(id)` opens a transaction, takes a
transaction-scoped advisory lock on the record's id (rows that do not exist
yet have nothing to lock) and the row lock, and reads the record; the caller
decides (a refresh calls the token endpoint while the lock is held, and every
other machine waits for it); the write is an UPDATE conditioned on the
version read, then `pg_notify` announces the record's new revision, and
COMMIT releases the locks. A holder that dies mid-transaction loses its
connection, and PostgreSQL rolls back and releases the locks at once; one that
hangs is ended by `idle_in_transaction_session_timeout`, set above the token
call's own time limit.

Running proxies follow through `stamp(id)`: a thread LISTENs for the
revisions other machines announce, and reads every revision again after a
reconnect (notifications are not durable). While the database is down the
last known revisions stand, so a proxy keeps the token it holds.

psycopg is imported here only, and this module only when a store is configured.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from typing import Hashable
from urllib.parse import unquote, urlsplit

import psycopg

from authsome.errors import VaultError, VaultLocked

log = logging.getLogger("authsome.store")

SCHEMA_VERSION = 1
CHANNEL = "authsome_records"
CONNECT_TIMEOUT = 5  # seconds
LOCK_TIMEOUT = 30.0
# Above the token endpoint's own time limit (authsome.flows.oauth_client.TIMEOUT, 30 s): a refresh that
# got its answer must be able to commit it; a frozen holder is ended after this.
IDLE_IN_TRANSACTION = 75
SCHEMA = [
    """CREATE TABLE IF NOT EXISTS authsome_meta (
           key text PRIMARY KEY,
           value text NOT NULL)""",
    """CREATE SEQUENCE IF NOT EXISTS authsome_revision""",
    """CREATE TABLE IF NOT EXISTS authsome_records (
           id text PRIMARY KEY,
           version bigint NOT NULL,
           revision bigint NOT NULL,
           data bytea NOT NULL,
           updated_at timestamptz NOT NULL DEFAULT now())""",
]


class StoreUnavailable(VaultError):
    code = "store_unavailable"


class StoreNotReady(VaultError):
    code = "store_not_ready"


def redacted(url: str) -> str:
    """The URL as messages show it: no password, no query (which may carry one)."""
    parts = urlsplit(url)
    user = unquote(parts.username or "")
    host = parts.hostname or "localhost"
    host = f"[{host}]" if ":" in host else host
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # not a number: libpq will say so when it connects
        port = ""
    return f"postgresql://{user + '@' if user else ''}{host}{port}{parts.path or '/'}"


def has_password(url: str) -> bool:
    parts = urlsplit(url)
    return parts.password is not None or "password=" in parts.query


class PostgresRecords:
    shared = True

    def __init__(self, url: str):
        self.url = url
        self.location = redacted(url)
        self._idle: list[psycopg.Connection] = []
        self._idle_lock = threading.Lock()
        self._watch: _Watcher | None = None
        self._watch_lock = threading.Lock()

    # -- connections -----------------------------------------------------------

    def _connect(self) -> psycopg.Connection:
        try:
            conn = psycopg.connect(self.url, connect_timeout=CONNECT_TIMEOUT, autocommit=True,
                                   application_name="authsome")
        except psycopg.Error as exc:
            raise self._unavailable(exc) from None
        return conn

    def _unavailable(self, exc: BaseException) -> StoreUnavailable:
        reason = " ".join(str(exc).split()).rstrip(".?") or type(exc).__name__
        parts = urlsplit(self.url)
        if parts.password:
            reason = reason.replace(parts.password, "***")
        return StoreUnavailable(
            f"The store {self.location} cannot be used: {reason}.",
            "check that the database is up and reachable from here (`authsome store status`); "
            "records are not changed while it is away",
        )

    @contextlib.contextmanager
    def _session(self) -> Iterator[psycopg.Connection]:
        """A connection of this process's small pool, returned only when it is idle and sound."""
        with self._idle_lock:
            conn = self._idle.pop() if self._idle else None
        if conn is not None:
            try:  # the server may have restarted or dropped it since
                conn.execute("SELECT 1")
            except psycopg.Error:
                conn.close()
                conn = None
        if conn is None:
            conn = self._connect()
        try:
            yield conn
        except psycopg.errors.UndefinedTable:
            raise StoreNotReady(f"The store {self.location} has no authsome tables yet.",
                                "create them once with `authsome store init`") from None
        except psycopg.errors.LockNotAvailable:
            raise VaultLocked("Timed out waiting for a record's lock in the store.",
                              "another machine holds it; try again when it finishes") from None
        except psycopg.Error as exc:
            raise self._unavailable(exc) from None
        finally:
            if not conn.closed and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
                with self._idle_lock:
                    self._idle.append(conn)
            else:
                conn.close()

    def close(self) -> None:
        with self._idle_lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
        if self._watch is not None:
            self._watch.stop()

    # -- the schema ------------------------------------------------------------

    def init(self) -> tuple[int, bool]:
        """Create or upgrade the tables (idempotent). Returns (schema version, whether anything was created)."""
        with self._session() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('authsome-schema', 0))")
            existed = conn.execute("SELECT to_regclass('authsome_records') IS NOT NULL").fetchone()[0]
            for statement in SCHEMA:
                conn.execute(statement)
            row = conn.execute("SELECT value FROM authsome_meta WHERE key = 'schema_version'").fetchone()
            found = int(row[0]) if row else 0
            if found > SCHEMA_VERSION:
                raise StoreNotReady(f"The store {self.location} has schema version {found}, newer than this "
                                    f"authsome knows ({SCHEMA_VERSION}).", "upgrade authsome on this machine")
            conn.execute("INSERT INTO authsome_meta (key, value) VALUES ('schema_version', %s) "
                         "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value", (str(SCHEMA_VERSION),))
        return SCHEMA_VERSION, not existed

    def schema_version(self) -> int | None:
        """The schema version in the database (None: `store init` never ran)."""
        with self._session() as conn:
            if not conn.execute("SELECT to_regclass('authsome_meta') IS NOT NULL").fetchone()[0]:
                return None
            row = conn.execute("SELECT value FROM authsome_meta WHERE key = 'schema_version'").fetchone()
            return int(row[0]) if row else None

    # -- records ---------------------------------------------------------------

    def describe(self, rid: str) -> str:
        return f"{rid} in {self.location}"

    def read(self, rid: str) -> bytes | None:
        with self._session() as conn:
            row = conn.execute("SELECT data FROM authsome_records WHERE id = %s", (rid,)).fetchone()
        return bytes(row[0]) if row else None

    def ids(self) -> list[str]:
        with self._session() as conn:
            return [r[0] for r in conn.execute("SELECT id FROM authsome_records ORDER BY id")]

    def revisions(self) -> dict[str, int]:
        with self._session() as conn:
            return dict(conn.execute("SELECT id, revision FROM authsome_records").fetchall())

    @contextlib.contextmanager
    def locked(self, rid: str, timeout: float = LOCK_TIMEOUT) -> Iterator[_Slot]:
        with self._session() as conn, conn.transaction():
            conn.execute(f"SET LOCAL lock_timeout = {int(timeout * 1000)}")
            conn.execute(f"SET LOCAL idle_in_transaction_session_timeout = {IDLE_IN_TRANSACTION * 1000}")
            conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (rid,))
            row = conn.execute("SELECT data, version FROM authsome_records WHERE id = %s FOR UPDATE",
                               (rid,)).fetchone()
            slot = _Slot(conn, rid, bytes(row[0]) if row else None, row[1] if row else 0)
            yield slot
        if slot.revision is not None and self._watch is not None:
            self._watch.saw(rid, slot.revision)  # this process sees its own write at once

    def stamp(self, rid: str) -> Hashable | None:
        return self.follow().revision(rid)

    def follow(self, wait: float = 0) -> _Watcher:
        """Start following other machines' writes (once); `wait`: up to that long until it listens."""
        with self._watch_lock:
            if self._watch is None:
                self._watch = _Watcher(self)
                self._watch.start()
        if wait:
            self._watch.listening.wait(wait)
        return self._watch


class _Slot:
    def __init__(self, conn: psycopg.Connection, rid: str, data: bytes | None, version: int):
        self.conn, self.rid, self.data, self.version = conn, rid, data, version
        self.revision: int | None = None  # set once written (0: deleted)

    def write(self, data: bytes, version: int) -> None:
        if self.data is None:
            cur = self.conn.execute(
                "INSERT INTO authsome_records (id, version, revision, data) "
                "VALUES (%s, %s, nextval('authsome_revision'), %s) RETURNING revision", (self.rid, version, data))
        else:
            cur = self.conn.execute(
                "UPDATE authsome_records SET data = %s, version = %s, revision = nextval('authsome_revision'), "
                "updated_at = now() WHERE id = %s AND version = %s RETURNING revision",
                (data, version, self.rid, self.version))
        row = cur.fetchone()
        if row is None:  # someone wrote without the lock: keep theirs, and say so
            raise VaultLocked(f"{self.rid} changed in the store while its lock was held.",
                              "another writer ignores authsome's lock; try again")
        self._announce(row[0])

    def delete(self) -> None:
        if self.data is not None:
            self.conn.execute("DELETE FROM authsome_records WHERE id = %s", (self.rid,))
            self._announce(0)

    def _announce(self, revision: int) -> None:
        self.revision = revision
        self.conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, f"{revision} {self.rid}"))


class _Watcher(threading.Thread):
    """The revisions of every record, kept current by LISTEN and re-read after every reconnect."""

    def __init__(self, records: PostgresRecords):
        super().__init__(name="authsome-store-watch", daemon=True)
        self.records = records
        self._revisions: dict[str, int] | None = None
        self.listening = threading.Event()
        self._stopping = threading.Event()
        self._conn: psycopg.Connection | None = None
        self.problem: str | None = None

    def revision(self, rid: str) -> Hashable | None:
        revisions = self._revisions
        if revisions is None:  # not listening yet: a stamp equal to nothing, so the record is read afresh
            return object()
        return revisions.get(rid)

    def saw(self, rid: str, revision: int) -> None:
        revisions = self._revisions
        if revisions is None:
            return
        if revision == 0:
            revisions.pop(rid, None)
        elif revision > revisions.get(rid, 0):
            revisions[rid] = revision

    def stop(self) -> None:
        self._stopping.set()
        conn = self._conn
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def run(self) -> None:
        delay = 0.2
        while not self._stopping.is_set():
            try:
                self._conn = conn = psycopg.connect(self.records.url, connect_timeout=CONNECT_TIMEOUT,
                                                    autocommit=True, application_name="authsome-watch")
                conn.execute(f"LISTEN {CHANNEL}")
                # After LISTEN: a change committed from here on is either in this read or notified.
                self._revisions = dict(conn.execute("SELECT id, revision FROM authsome_records").fetchall())
                self.listening.set()
                if self.problem is not None:
                    log.warning("the store %s is reachable again", self.records.location)
                    self.problem = None
                delay = 0.2
                while not self._stopping.is_set():
                    for note in conn.notifies(timeout=30):
                        revision, _, rid = note.payload.partition(" ")
                        self.saw(rid, int(revision))
                    conn.execute("SELECT 1")  # a quiet spell still proves the connection alive
            except Exception as exc:
                if self._stopping.is_set():
                    return
                problem = self.records._unavailable(exc).message
                if problem != self.problem:
                    log.warning("%s Tokens held now are used until they expire; a refresh needs the store.",
                                problem)
                    self.problem = problem
                with contextlib.suppress(Exception):
                    if self._conn is not None:
                        self._conn.close()
                self._stopping.wait(delay)
                delay = min(delay * 2, 5.0)
