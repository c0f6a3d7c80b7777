"""The audit log: one JSON line per request the proxy saw, in $AUTHSOME_HOME/audit.log.

Records hold names, hosts, paths, status codes and decisions (injected,
refreshed, tunnelled, denied); never header values, bodies or query values
(only query parameter names).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

from authsome import paths

FILE = "audit.log"
MAX_BYTES = 10 * 1024 * 1024


def path(home: Path | None = None) -> Path:
    return (home or paths.home()) / FILE


def append(record: dict, home: Path | None = None) -> None:
    append_all([record], home)


def append_all(records: list[dict], home: Path | None = None) -> None:
    """Append whole lines, in one write (a reader never sees half of one, unless the disk fills)."""
    target = path(home)
    try:
        if target.stat().st_size > MAX_BYTES:
            os.replace(target, target.with_suffix(".log.1"))
    except FileNotFoundError:
        pass
    data = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records).encode()
    fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, paths.FILE_MODE)
    try:
        while data:
            data = data[os.write(fd, data):]
    finally:
        os.close(fd)


def read(home: Path | None = None, last: int | None = None) -> list[dict]:
    return read_with_offset(home, last)[0]


def read_with_offset(home: Path | None = None, last: int | None = None) -> tuple[list[dict], int]:
    """The last records, and the byte offset just after them (where `follow` picks up)."""
    try:
        data = path(home).read_bytes()
    except FileNotFoundError:
        return [], 0
    offset = data.rfind(b"\n") + 1  # a line still being written is left to `follow`
    records = []
    for line in data[:offset].decode(errors="replace").splitlines():
        record = _record(line)
        if record is not None:  # else a line cut short by a crash, or not ours: not a record, not counted
            records.append(record)
    return (records[-last:] if last else records), offset


def _record(line: str | bytes) -> dict | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def follow(home: Path | None = None, offset: int = 0, poll: float = 0.25) -> Iterator[dict]:
    """Records appended after byte `offset`, as they come (Ctrl-C stops)."""
    target = path(home)
    buffer = b""
    while True:
        try:
            with open(target, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                if size < offset:
                    offset = 0  # rotated
                fh.seek(offset)
                chunk = fh.read()
                offset += len(chunk)
        except FileNotFoundError:
            chunk = b""
        buffer += chunk
        *complete, buffer = buffer.split(b"\n")
        for line in complete:
            record = _record(line)
            if record is not None:
                yield record
        if not chunk:
            time.sleep(poll)
