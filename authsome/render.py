"""Everything that draws on the terminal: tables, JSON, prompts, messages.

The only module that imports rich, and only when a table is drawn, so
`authsome --help` and `authsome get` stay fast.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO


def out(text: str = "", stream: TextIO | None = None) -> None:
    print(text, file=stream or sys.stdout)


def err(text: str) -> None:
    print(text, file=sys.stderr)


def note(text: str) -> None:
    """Progress and notices: stderr, so stdout stays data."""
    print(text, file=sys.stderr)


def printable(text: Any) -> str:
    """`text` safe for a terminal: control characters (escape sequences) and bidi overrides escaped.

    For values others chose (a host, a path a program sent): printed raw,
    they could move the cursor, rewrite the screen or reorder what follows.
    """
    out = []
    for ch in str(text):
        code = ord(ch)
        if code < 0x20 or 0x7F <= code < 0xA0 or 0x202A <= code <= 0x202E or 0x2066 <= code <= 0x2069 \
                or code in (0x200E, 0x200F, 0x061C):
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)


def as_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=False, default=str))


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, title: str | None = None) -> None:
    if not sys.stdout.isatty():
        # Plain aligned columns: stable for pipes, grep and tests.
        cells = [list(map(str, headers))] + [["" if c is None else str(c) for c in r] for r in rows]
        widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
        for row in cells:
            print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
        return
    from rich.console import Console
    from rich.table import Table

    tbl = Table(title=title, header_style="bold")
    for h in headers:
        tbl.add_column(h)
    for r in rows:
        tbl.add_row(*["" if c is None else str(c) for c in r])
    Console().print(tbl)


def key_values(pairs: Sequence[tuple[str, Any]]) -> None:
    width = max((len(k) for k, _ in pairs), default=0)
    for k, v in pairs:
        if isinstance(v, (list, tuple)):
            v = " ".join(map(str, v)) if v else "-"
        print(f"{k.ljust(width)}  {'-' if v in (None, '') else v}")


def hidden_prompt(label: str) -> str:
    """Read a secret without echo at a terminal, or one line from piped stdin."""
    if sys.stdin.isatty():
        import getpass

        return getpass.getpass(f"{label}: ")
    return sys.stdin.readline().rstrip("\r\n")
