"""`authsome log`: what the proxy did, from the audit log."""

from __future__ import annotations

import argparse
import json

from authsome import render


def register(sub) -> None:
    p = sub.add_parser(
        "log",
        help="show the audit log of proxied requests",
        description="Show what `authsome run` proxied: one line per request (method, host, path, status,\n"
        "provider, and whether a credential was injected or refreshed) and per tunnelled host.\n"
        "Header values, bodies and query values are never recorded.",
        epilog="examples:\n  authsome log -n 50\n  authsome log --follow          # Ctrl-C ends it\n"
        "  authsome log --json | jq 'select(.injected != [])'",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("-n", type=int, default=20, metavar="N", help="show the last N records (default: 20; 0 for all)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing new records (Ctrl-C stops)")
    p.set_defaults(func=cmd_log)


def _line(r: dict) -> str:
    """One record as a line; every value a program chose (host, path, errors) has its control characters escaped."""
    return render.printable(_plain_line(r))


def _plain_line(r: dict) -> str:
    when = str(r.get("ts") or "")[:19].replace("T", " ")
    event = r.get("event")
    if event in ("tunnel", "denied"):
        return f"{when}  {event:<7} {r.get('host')}:{r.get('port')}"
    notes = []
    if r.get("host_header"):
        notes.append(f"Host header: {r['host_header']}")
    if r.get("injected"):
        notes.append(f"injected {r.get('provider')}/{r.get('connection')}")
    if r.get("refreshed"):
        notes.append("refreshed")
    if r.get("retried"):
        notes.append("retried")
    if r.get("problem"):
        notes.append(f"problem: {r['problem']}")
    if r.get("error"):
        notes.append(f"error: {r['error']}")
    status = r.get("status") or "-"
    return f"{when}  {status!s:<7} {r.get('method')} {r.get('scheme')}://{r.get('host')}{r.get('path')}  {'; '.join(notes)}".rstrip()


def cmd_log(args) -> int:
    from authsome import audit, paths
    from authsome.errors import UsageError

    if args.n < 0:
        raise UsageError("-n must be 0 or more.")
    paths.ensure_home()  # a log is only worth reading from a home that is ours
    records, offset = audit.read_with_offset(last=args.n or None)
    try:  # a reader may press Ctrl-C as soon as it sees a line, and a full pipe buffer shows lines early
        for record in records:
            render.out(json.dumps(record) if args.json else _line(record))
        if args.follow:
            import sys

            sys.stdout.flush()
            for record in audit.follow(offset=offset):
                render.out(json.dumps(record) if args.json else _line(record))
                sys.stdout.flush()
    except KeyboardInterrupt:
        if not args.follow:
            raise
        return 0  # Ctrl-C is how --follow ends
    return 0
