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
import re
import threading
import time
from collections.abc import Iterator
from typing import Hashable
import psycopg
from psycopg.conninfo import conninfo_to_dict

from authsome.errors import StoreNotReady, StoreUnavailable, UsageError, VaultLocked, WrongKey

log = logging.getLogger("authsome.store")

SCHEMA_VERSION = 1
CHANNEL = "authsome_records"
CONNECT_TIMEOUT = 5  # seconds
# A peer that vanished (a partition, a host gone) is noticed within seconds, not at TCP's own
# timeout of minutes; the server ends any statement after a minute.
SOCKET = {"connect_timeout": CONNECT_TIMEOUT, "keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2,
          "keepalives_count": 3, "tcp_user_timeout": 10_000, "options": "-c statement_timeout=60000"}
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


def parsed(url: str) -> dict[str, str]:
    """The URL's parameters as libpq reads them (the only reading that counts); a UsageError, never an echo."""
    rest = url.split("://", 1)[-1].split("/", 1)[0]
    if rest.count("@") > 1:
        raise UsageError("The store URL has more than one '@' before the host (not shown: it may hold a password).",
                         "write an @ inside a user name or password as %40")
    try:
        return conninfo_to_dict(url)
    except (psycopg.Error, ValueError):
        raise UsageError("The store URL is not one PostgreSQL can read (not shown: it may hold a password).",
                         "use postgresql://USER@HOST[:PORT]/DATABASE") from None


def redacted(url: str) -> str:
    """The URL as messages show it: user, host, port and database; never a password or other parameters."""
    params = parsed(url)
    user, host = params.get("user"), params.get("host") or "localhost"
    host = f"[{host}]" if ":" in host else host
    port = f":{params['port']}" if params.get("port") else ""
    return f"postgresql://{user + '@' if user else ''}{host}{port}/{params.get('dbname', '')}"


def has_password(url: str) -> bool:
    params = parsed(url)
    return "password" in params or "sslpassword" in params


def _secret_pieces(url: str) -> list[str]:
    """Every spelling of the URL's password: as libpq decodes it, and as written (userinfo, query)."""
    params = parsed(url)
    pieces = [params.get("password") or "", params.get("sslpassword") or "", url]
    rest = url.split("://", 1)[-1]
    userinfo = rest.rsplit("@", 1)[0] if "@" in rest else ""
    pieces.append(userinfo.partition(":")[2])
    for m in re.finditer(r"(?:^|[?&])password=([^&#]*)", rest.partition("?")[2]):
        pieces.append(m.group(1))
    return sorted({p for p in pieces if p}, key=len, reverse=True)


class PostgresRecords:
    shared = True

    def __init__(self, url: str):
        self.url = url
        self.location = redacted(url)  # a UsageError for a URL libpq cannot read
        self._idle: list[psycopg.Connection] = []
        self._idle_lock = threading.Lock()
        self._watch: _Watcher | None = None
        self._watch_lock = threading.Lock()

    # -- connections -----------------------------------------------------------

    def _connect(self, application_name: str = "authsome") -> psycopg.Connection:
        import os

        given = parsed(self.url)
        settings = {k: v for k, v in {"application_name": application_name, **SOCKET}.items() if k not in given}
        options = given.get("options") or os.environ.get("PGOPTIONS")
        if options and "statement_timeout" not in options:
            settings["options"] = f"{options} {SOCKET['options']}"
        elif options:
            settings.pop("options", None)
            settings["options"] = options
        try:
            return psycopg.connect(self.url, autocommit=True, **settings)
        except psycopg.Error as exc:
            raise self._unavailable(exc) from None

    def _unavailable(self, exc: BaseException) -> StoreUnavailable:
        reason = " ".join(str(exc).split()).rstrip(".?") or type(exc).__name__
        for piece in _secret_pieces(self.url):
            reason = reason.replace(piece, "***")
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

    def claim_key(self, kid: str) -> None:
        """Refuse a master key other than the store's. The store's key is the one its records are sealed
        with, else the first key used with it (claimed atomically, so two new machines cannot both win)."""
        from authsome.vault.crypto import sealed_kid

        with self._session() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('authsome-key', 0))")
            row = conn.execute("SELECT value FROM authsome_meta WHERE key = 'key_id'").fetchone()
            stored = row[0] if row else None
            if stored is None:
                for (data,) in conn.execute("SELECT data FROM authsome_records LIMIT 20"):
                    stored = sealed_kid(bytes(data)) or stored
                    if stored:
                        break
                conn.execute("INSERT INTO authsome_meta (key, value) VALUES ('key_id', %s)", (stored or kid,))
        if stored is not None and stored != kid:
            raise WrongKey(f"The store {self.location} is sealed with a different master key (id {stored}) than "
                           f"this machine's (id {kid}).",
                           "use the team's key: set AUTHSOME_MASTER_KEY (or master.key in the home) to it")

    def key_id(self) -> str | None:
        with self._session() as conn:
            row = conn.execute("SELECT value FROM authsome_meta WHERE key = 'key_id'").fetchone()
        return row[0] if row else None

    def set_key(self, old: str, new: str) -> None:
        """A rotation is done: the store's key is now `new` (if it was `old`, or is `new` already)."""
        with self._session() as conn:
            cur = conn.execute("UPDATE authsome_meta SET value = %s WHERE key = 'key_id' AND value IN (%s, %s)",
                               (new, old, new))
            if cur.rowcount == 0:
                conn.execute("INSERT INTO authsome_meta (key, value) VALUES ('key_id', %s) ON CONFLICT DO NOTHING",
                             (new,))
                if (self.key_id() or new) != new:
                    raise WrongKey(f"The store {self.location} was given another master key meanwhile.",
                                   "check who else rotates it; nothing more was changed")

    # -- records ---------------------------------------------------------------

    def describe(self, rid: str) -> str:
        return f"{rid} in {self.location}"

    def read(self, rid: str) -> bytes | None:
        with self._session() as conn:
            row = conn.execute("SELECT data FROM authsome_records WHERE id = %s", (rid,)).fetchone()
        return bytes(row[0]) if row else None

    def versioned(self, rid: str) -> tuple[bytes, int] | None:
        """The record and the version kept beside it (for a connection, also inside it)."""
        with self._session() as conn:
            row = conn.execute("SELECT data, version FROM authsome_records WHERE id = %s", (rid,)).fetchone()
        return (bytes(row[0]), row[1]) if row else None

    def ids(self) -> list[str]:
        with self._session() as conn:
            return [r[0] for r in conn.execute("SELECT id FROM authsome_records ORDER BY id")]

    def revision_of(self, rid: str) -> int | None:
        with self._session() as conn:
            row = conn.execute("SELECT revision FROM authsome_records WHERE id = %s", (rid,)).fetchone()
        return row[0] if row else None

    @contextlib.contextmanager
    def locked(self, rid: str, timeout: float = LOCK_TIMEOUT) -> Iterator[_Slot]:
        """The record under its lock; what the caller writes is applied, announced and committed on the way out.

        Two locks: the transaction's advisory lock (with the row lock), and a
        *lease*, a session advisory lock held on a second connection for as long
        as the write may take. Should the transaction's connection be lost while
        a token call runs (a cut, a restart of one backend, the idle limit), the
        transaction's locks go, but the lease stays with this live process: no
        other machine refreshes with the refresh token just spent, while this one
        applies its write once more on a new connection (if the record is still
        as it was read). A process that dies loses both connections, so the
        others go on at once.
        """
        deadline = time.monotonic() + timeout
        with self._session() as lease, self._session() as conn:
            while True:
                conn.execute("BEGIN")
                try:
                    left = max(1, int((deadline - time.monotonic()) * 1000))
                    conn.execute(f"SET LOCAL lock_timeout = {left}")
                    conn.execute(f"SET LOCAL idle_in_transaction_session_timeout = {IDLE_IN_TRANSACTION * 1000}")
                    conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (rid,))
                    if lease.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 1))", (rid,)).fetchone()[0]:
                        break
                except BaseException:
                    with contextlib.suppress(psycopg.Error):
                        conn.execute("ROLLBACK")
                    raise
                # Another writer lost its transaction but lives, and may still save what it got: wait for it.
                conn.execute("ROLLBACK")
                if time.monotonic() >= deadline:
                    raise VaultLocked("Timed out waiting for a record's lock in the store.",
                                      "another machine is saving it; try again when it finishes")
                time.sleep(0.1)
            try:
                try:
                    row = conn.execute("SELECT data, version, revision FROM authsome_records WHERE id = %s FOR UPDATE",
                                       (rid,)).fetchone()
                    slot = _Slot(rid, bytes(row[0]) if row else None, row[1] if row else 0, row[2] if row else 0)
                    yield slot
                except BaseException:
                    with contextlib.suppress(psycopg.Error):
                        conn.execute("ROLLBACK")
                    raise
                try:
                    slot.apply(conn)
                    conn.execute("COMMIT")
                except psycopg.Error as exc:
                    # Lost with its connection (a restart, a cut, the idle-in-transaction limit): applied again.
                    if slot.change is None or not (conn.closed or conn.broken):
                        raise
                    self._apply_again(slot, exc)
            finally:
                try:
                    lease.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 1))", (rid,))
                except psycopg.Error:
                    lease.close()  # a lease never goes back to the pool still held
        if slot.revision is not None and self._watch is not None:
            self._watch.saw(rid, slot.revision)  # this process sees its own write at once

    def _apply_again(self, slot: _Slot, lost: Exception) -> None:
        """Apply `slot`'s change once more, under the lock again, if the record is still as it was read
        (its revision is never reused); a first COMMIT that went through but whose answer was lost is
        recognised by the record holding the change already."""
        try:
            with self._session() as conn, conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (slot.rid,))
                try:
                    slot.apply(conn)
                except VaultLocked:
                    row = conn.execute("SELECT data, revision FROM authsome_records WHERE id = %s",
                                       (slot.rid,)).fetchone()
                    written = slot.change == "delete" and row is None or \
                        row is not None and isinstance(slot.change, tuple) and bytes(row[0]) == slot.change[0]
                    if not written:
                        raise
                    slot.revision = row[1] if row is not None else slot.revision
        except (StoreUnavailable, VaultLocked) as exc:
            raise StoreUnavailable(
                f"The store {self.location} was lost while {slot.rid} was being saved, and it could not be saved "
                f"again ({exc.message.rstrip('.')}). A refreshed token may be lost with it.",
                "check the database; if the provider then refuses the connection, log in again",
            ) from None
        log.warning("%s: saved on a new connection after the first was lost (%s)", slot.rid,
                    self._unavailable(lost).message)

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
    """What `locked` read, and the change the caller asks for (applied by `locked`, under the lock)."""

    def __init__(self, rid: str, data: bytes | None, version: int, read_revision: int = 0):
        self.rid, self.data, self.version, self.read_revision = rid, data, version, read_revision
        self.change: tuple[bytes, int] | None | str = None  # (data, version), "delete", or None
        self.revision: int | None = None  # once applied: the record's new revision (0: deleted)

    def write(self, data: bytes, version: int) -> None:
        self.change = (data, version)

    def delete(self) -> None:
        self.change = "delete" if self.data is not None else None

    def apply(self, conn: psycopg.Connection) -> None:
        if self.change is None:
            return
        if self.change == "delete":
            cur = conn.execute("DELETE FROM authsome_records WHERE id = %s AND revision = %s",
                               (self.rid, self.read_revision))
            if cur.rowcount == 0:
                raise VaultLocked(f"{self.rid} changed in the store while its lock was held; it was left as it is.",
                                  "another writer ignores authsome's lock; try again")
            revision = conn.execute("SELECT nextval('authsome_revision')").fetchone()[0]
            self._announce(conn, -revision)
            return
        data, version = self.change
        if self.data is None:
            cur = conn.execute(
                "INSERT INTO authsome_records (id, version, revision, data) VALUES "
                "(%s, %s, nextval('authsome_revision'), %s) ON CONFLICT (id) DO NOTHING RETURNING revision",
                (self.rid, version, data))
        else:
            cur = conn.execute(
                "UPDATE authsome_records SET data = %s, version = %s, revision = nextval('authsome_revision'), "
                "updated_at = now() WHERE id = %s AND version = %s AND revision = %s RETURNING revision",
                (data, version, self.rid, self.version, self.read_revision))
        row = cur.fetchone()
        if row is None:  # written since it was read, by someone ignoring the lock: theirs is kept
            raise VaultLocked(f"{self.rid} changed in the store while its lock was held; it was left as it is.",
                              "another writer ignores authsome's lock; try again")
        self._announce(conn, row[0])

    def _announce(self, conn: psycopg.Connection, revision: int) -> None:
        """NOTIFY "REVISION ID" (a negative revision: deleted); delivered when the transaction commits."""
        self.revision = revision
        conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, f"{revision} {self.rid}"))


class _Watcher(threading.Thread):
    """The revisions of every record, kept current by LISTEN and re-read after every reconnect."""

    def __init__(self, records: PostgresRecords):
        super().__init__(name="authsome-store-watch", daemon=True)
        self.records = records
        self._revisions: dict[str, int] | None = None  # id -> revision (negative: deleted)
        self._saw_lock = threading.Lock()
        self.listening = threading.Event()
        self.problem: str | None = None

    def revision(self, rid: str) -> Hashable | None:
        revisions = self._revisions
        if revisions is None:  # not listening yet: a stamp equal to nothing, so the record is read afresh
            return object()
        revision = revisions.get(rid)
        return revision if revision is not None and revision > 0 else None

    def saw(self, rid: str, revision: int) -> None:
        """A record's revision as announced (negative: deleted at that revision); older news is ignored."""
        with self._saw_lock:
            revisions = self._revisions
            if revisions is None:
                return
            if abs(revision) <= abs(revisions.get(rid, 0)):
                return
            revisions[rid] = revision

    def run(self) -> None:
        delay = 0.2
        while True:
            conn = None
            try:
                conn = self.records._connect("authsome-watch")
                conn.execute(f"LISTEN {CHANNEL}")
                # After LISTEN: a change committed from here on is either in this read or notified.
                revisions = dict(conn.execute("SELECT id, revision FROM authsome_records").fetchall())
                with self._saw_lock:
                    self._revisions = revisions
                self.listening.set()
                if self.problem is not None:
                    log.warning("the store %s is reachable again", self.records.location)
                    self.problem = None
                delay = 0.2
                while True:
                    for note in conn.notifies(timeout=30):
                        # Anyone who may connect can NOTIFY: a notification only names a record to read
                        # again, its revision is taken from the table, never from the message.
                        rid = note.payload.partition(" ")[2][:300]
                        revision = self.records.revision_of(rid)  # another connection: this one is listening
                        with self._saw_lock:
                            if self._revisions is not None:
                                if revision is None:
                                    self._revisions.pop(rid, None)
                                else:
                                    self._revisions[rid] = revision
                    conn.execute("SELECT 1")  # a quiet spell still proves the connection alive
            except Exception as exc:
                problem = exc.message if isinstance(exc, StoreUnavailable) else self.records._unavailable(exc).message
                if problem != self.problem:
                    log.warning("%s Tokens held now are used until they expire; a refresh needs the store.",
                                problem)
                    self.problem = problem
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.close()
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
