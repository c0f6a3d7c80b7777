"""Keep `authsome run`'s own process closed to the child it starts.

The child runs as the same user, so by default it may read its parent's
memory (`/proc/$PPID/mem`: decrypted records, the master key) and initial
environment (`/proc/$PPID/environ`: `AUTHSOME_MASTER_KEY`, client secrets,
API keys the user exported), or attach a debugger. Two measures:

- `close_to_children`: prctl(PR_SET_DUMPABLE, 0). The kernel then treats the
  process like a set-uid one: other processes of the user cannot open its
  /proc memory or environment files nor ptrace it, and it dumps no core.
  The child is not affected (dumpability is reset by execve).
- `scrub_environ_block`: overwrites the values of the given variables in the
  environment block the kernel shows as /proc/PID/environ (to root as well),
  once authsome no longer needs the copy there; Python's own `os.environ`
  keeps them, inside the now unreadable memory.

What stays possible: root (or a process with CAP_SYS_PTRACE) reads any
memory; so does a debugger the user attached before the run. Linux only:
elsewhere these do nothing. Kept free of other authsome imports (a test runs
it under the system Python as an unprivileged user).
"""

from __future__ import annotations

import ctypes
import os
import sys

PR_SET_DUMPABLE = 4
PR_GET_DUMPABLE = 3


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def close_to_children() -> bool:
    """Make this process non-dumpable; True when the kernel agreed."""
    if not sys.platform.startswith("linux"):
        return False
    libc = _libc()
    return libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0 and libc.prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0


def _environ_bounds() -> tuple[int, int] | None:
    try:
        with open("/proc/self/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return None
    # Fields after the command name (which may hold spaces and parentheses);
    # env_start and env_end are fields 50 and 51 of stat(5).
    fields = stat[stat.rindex(b")") + 2:].split()
    try:
        start, end = int(fields[50 - 3]), int(fields[51 - 3])
    except (IndexError, ValueError):
        return None
    return (start, end) if 0 < start < end else None


def scrub_environ_block(names) -> list[str]:
    """Zero the values of `names` in this process's initial environment block; return those found."""
    if not sys.platform.startswith("linux"):
        return []
    bounds = _environ_bounds()
    if bounds is None:
        return []
    start, end = bounds
    block = ctypes.string_at(start, end - start)
    wanted = {n.encode() for n in names}
    found = []
    offset = 0
    for entry in block.split(b"\0"):
        name, sep, value = entry.partition(b"=")
        if sep and name in wanted and value:
            ctypes.memset(start + offset + len(name) + 1, 0, len(value))
            found.append(name.decode())
        offset += len(entry) + 1
    return found


def exposed_in_ancestors(names) -> list[tuple[str, int, str]]:
    """(name, pid, command) for each of `names` that a parent process still holds in its environment block.

    The child can read those too: they run as the same user and are not
    protected (a shell that was started with AUTHSOME_MASTER_KEY, a CI step).
    """
    if not sys.platform.startswith("linux"):
        return []
    wanted = {n.encode() for n in names}
    found = []
    pid = os.getppid()
    for _ in range(64):  # a chain of ancestors, up to init
        if pid <= 1:
            break
        try:
            with open(f"/proc/{pid}/environ", "rb") as fh:
                block = fh.read()
            with open(f"/proc/{pid}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            break
        for entry in block.split(b"\0"):
            name, sep, value = entry.partition(b"=")
            if sep and name in wanted and value.strip(b"\0"):
                found.append((name.decode(), pid, stat[stat.index(b"(") + 1:stat.rindex(b")")].decode(errors="replace")))
        pid = int(stat[stat.rindex(b")") + 2:].split()[1])
    return found


def protect(secret_names) -> None:
    """Both measures, for a process about to start a child it does not trust."""
    scrub_environ_block([n for n in secret_names if n in os.environ])  # reads /proc/self/stat: first
    close_to_children()
