"""The home directory, file modes, atomic writes and the cross-process lock.

Every path authsome touches is derived from `home()`. The home is 0700 and
every file written through this module is 0600 from the moment it exists
(created with that mode, never chmod-ed afterwards).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from authsome.errors import AuthsomeError, VaultLocked

DIR_MODE = 0o700
FILE_MODE = 0o600
TMP_PREFIX = ".tmp-"


def home() -> Path:
    """`$AUTHSOME_HOME`, or `~/.authsome`."""
    env = os.environ.get("AUTHSOME_HOME")
    return Path(env).expanduser() if env else Path.home() / ".authsome"


HOME_HINT = "point AUTHSOME_HOME at a directory of your own (it is created 0700), or unset it for ~/.authsome"
# What a home holds; a loose directory with anything else in it is not authsome's to tighten.
HOME_ENTRIES = {"providers", "vault", "master.key", ".master-key.lock", "audit.log", "audit.log.1", "runs", "cache", "output", "store", "master.key.new"}


def ensure_dir(path: Path) -> Path:
    """Create `path` (and parents) with mode 0700; tighten an existing one of ours that others can open."""
    try:
        if path.exists() and not path.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, "it is a file, not a directory")
        path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        if path.stat().st_mode & 0o077:
            path.chmod(DIR_MODE)
        if not os.access(path, os.W_OK | os.X_OK):
            raise PermissionError(errno.EACCES, "Permission denied")
    except OSError as exc:
        raise AuthsomeError(f"Cannot use the directory {path}: {exc.strerror or 'not usable'}.", HOME_HINT) from None
    return path


def ensure_home() -> Path:
    """The home with its fixed sub-directories, created on first use.

    An existing directory that others can open is tightened only when it
    holds nothing but authsome's own files: `AUTHSOME_HOME=/tmp` must not
    turn /tmp into a 0700 directory.
    """
    root = home()
    try:
        mode = root.stat().st_mode if root.is_dir() else 0
        loose = mode & 0o077
        foreign = loose and set(os.listdir(root)) - HOME_ENTRIES
    except OSError as exc:
        raise AuthsomeError(f"Cannot use the directory {root}: {exc.strerror}.", HOME_HINT) from None
    if mode & (0o1000 | 0o002):  # sticky or world-writable: a shared directory (/tmp, /var/tmp, /dev/shm)
        raise AuthsomeError(f"AUTHSOME_HOME ({root}) is a shared directory anyone can write into; it will not be "
                            "made private.", HOME_HINT)
    if foreign:
        raise AuthsomeError(f"AUTHSOME_HOME ({root}) is a directory others can open, holding files that are not "
                            "authsome's; it will not be made private.", HOME_HINT)
    ensure_dir(root)
    ensure_dir(root / "providers")
    ensure_dir(root / "vault")
    return root


def providers_dir() -> Path:
    return home() / "providers"


def vault_dir() -> Path:
    return home() / "vault"


def atomic_write(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so readers see the old or the new file, never a mix.

    The temporary file is created 0600 with O_EXCL in the same directory,
    flushed to disk, renamed over the target, and the directory entry synced:
    a crash (even kill -9) leaves either the old content or the new.
    """
    directory = path.parent
    tmp = directory / f"{TMP_PREFIX}{path.name}.{os.urandom(6).hex()}"  # as secrets.token_hex, without its imports
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_private(path: Path, data: bytes) -> None:
    """Write a 0600 file atomically, creating its 0700 parent if needed."""
    ensure_dir(path.parent)
    atomic_write(path, data)


@contextlib.contextmanager
def file_lock(path: Path, timeout: float = 30.0) -> Iterator[None]:
    """Hold an exclusive advisory lock on `path` (created 0600) across processes.

    flock locks die with their process, so a killed holder never leaves the
    lock stuck. Waits up to `timeout` seconds, then raises VaultLocked.
    """
    ensure_dir(path.parent)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
    try:
        deadline = time.monotonic() + timeout
        delay = 0.002
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() >= deadline:
                    raise VaultLocked(
                        f"Timed out waiting for the lock {path.name}.",
                        "another authsome process holds it; try again when it finishes",
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.05)
        yield
    finally:
        os.close(fd)
