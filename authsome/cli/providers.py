"""`authsome list | inspect | register | remove`: the provider catalog."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path

from authsome import render
from authsome.cli.common import add_json, ask_yes, can_ask, inside_run, refuse_inside_run, registry, vault
from authsome.errors import UsageError


def register(sub) -> None:
    p = sub.add_parser(
        "list",
        help="list providers and their connections",
        description="List every provider (bundled and custom), one row per connection with its status,\n"
        "token expiry and account. Definition files that fail validation are reported with file, field and reason.",
        epilog="examples:\n  authsome list\n  authsome list --json | jq '.providers[] | select(.connections != [])'",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_json(p)
    p.set_defaults(func=cmd_list)

    p = sub.add_parser(
        "inspect",
        help="print a provider's effective definition as JSON",
        description="Print the effective definition (a custom file wins over the bundled one) as JSON.\n"
        "The output is a valid custom definition, so it can be edited and registered:",
        epilog="example:\n  authsome inspect x > ~/.authsome/providers/x.json   # then edit; `authsome list` shows custom",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("provider", metavar="PROVIDER")
    add_json(p, help="accepted for symmetry; the output is always JSON")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser(
        "register",
        help="validate and install a custom provider definition",
        description="Validate FILE against the provider schema and install it into $AUTHSOME_HOME/providers/.\n"
        "A custom definition with the name of a bundled provider overrides it.",
        epilog="example:\n  authsome register ./acme.json\n  authsome inspect x | jq '.oauth.scopes=[\"tweet.read\"]' | authsome register - --force",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", metavar="FILE", help="path to a JSON definition, or - for standard input")
    p.add_argument("--force", action="store_true", help="replace an existing custom definition")
    add_json(p)
    p.set_defaults(func=cmd_register)

    p = sub.add_parser(
        "trust",
        help="confirm a changed custom definition for the credentials stored under it",
        description="Show how PROVIDER's custom definition changed where stored credentials go (routes, OAuth\n"
        "endpoints, credential slots, exported names) since they were stored or last confirmed, and\n"
        "ask whether to use it. Until then `run`, refresh, login and logout refuse to use those\n"
        "credentials with it. Needs a terminal: a program cannot confirm this for you.",
        epilog="example:\n  authsome inspect x > ~/.authsome/providers/x.json   # then edit base_url\n  authsome trust x",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("provider", metavar="PROVIDER")
    p.set_defaults(func=cmd_trust)

    p = sub.add_parser(
        "remove",
        help="delete a custom provider definition",
        description="Delete the custom definition of PROVIDER. A bundled provider of the same name shows again.\n"
        "Stored connections are kept; use `authsome revoke PROVIDER` to delete them.",
        epilog="example:\n  authsome remove acme",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("provider", metavar="PROVIDER")
    add_json(p)
    p.set_defaults(func=cmd_remove)


def _expiry(ts: float | None) -> str:
    if ts is None:
        return "-"
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def cmd_list(args) -> int:
    from authsome.connections import summaries

    items, problems = summaries(registry(), vault())
    if args.json:
        render.as_json({
            "providers": [s.to_dict() for s in items],
            "problems": [p.to_dict() for p in problems],
        })
        return 0
    rows = []
    for s in items:
        source = "custom (invalid)" if s.problem else s.provider.source
        if not s.connections:
            rows.append((s.provider.name, source, s.provider.auth_type, "-", "not_connected", "-", "-"))
        for e in s.connections:  # one row per connection: its own status and expiry
            c = e.connection
            rows.append((s.provider.name, source, s.provider.auth_type, e.name, c.status() if c else "error",
                         _expiry(c.expires_at if c else None), (c.account if c else None) or "-"))
    render.table(["NAME", "SOURCE", "AUTH", "CONNECTION", "STATUS", "EXPIRES", "ACCOUNT"], rows)
    for p in problems:
        render.err(f"warning: {p.message}")
    return 0


def _stdout_is(path: Path) -> bool:
    try:
        out, target = os.fstat(sys.stdout.fileno()), path.stat()
    except (OSError, ValueError, AttributeError):
        return False
    return (out.st_dev, out.st_ino) == (target.st_dev, target.st_ino)


def cmd_inspect(args) -> int:
    reg = registry()
    # `authsome inspect x > ~/.authsome/providers/x.json`: the shell has already
    # truncated the user file we would read, so show the definition beneath it.
    if _stdout_is(reg.user_file(args.provider)):
        provider = reg.get_bundled(args.provider)
    else:
        provider = reg.get(args.provider)
    print(json.dumps(provider.raw, indent=2, ensure_ascii=False))
    return 0


MAX_DEFINITION = 256 * 1024  # bytes; the largest bundled definition is under 3 KiB


def _read_bounded(stream) -> bytes:
    data = stream.read(MAX_DEFINITION + 1)
    if len(data) > MAX_DEFINITION:
        raise UsageError(f"The definition is larger than {MAX_DEFINITION // 1024} KiB; that is no provider definition.",
                         "give the path of a JSON definition (see `authsome inspect x` for one)")
    return data


def cmd_register(args) -> int:
    if args.file == "-":
        if sys.stdin.isatty():
            render.note("reading the definition from standard input; end it with Ctrl-D")
        data, origin = _read_bounded(sys.stdin.buffer), "<stdin>"
    else:
        path = Path(args.file)
        try:
            with path.open("rb") as fh:
                data = _read_bounded(fh)
        except OSError as exc:
            raise UsageError(f"Cannot read {path}: {exc.strerror}.", "give the path of a JSON definition, or - for stdin") from None
        origin = str(path)
    from authsome.providers import trust

    provider, overrides = registry().register(data, origin, force=args.force)
    overlapping = registry().overlapping(provider)
    changed = trust.describe(vault(), provider)
    under_run = inside_run()
    if not under_run:  # registering is confirming, for the credentials logins will store
        trust.confirm_definition(vault(), provider)
    if args.json:
        render.as_json({"name": provider.name, "path": provider.path, "overrides_bundled": overrides,
                        "overlaps": [{"route": r, "provider": o} for r, o in overlapping], "needs_trust": bool(changed)})
    else:
        render.out(f"registered {provider.name} -> {provider.path}")
        if overrides:
            render.note(f"note: this custom definition overrides the bundled '{provider.name}'")
    for route, other in overlapping:
        render.note(f"warning: {route} is also routed by '{other}'; in a run where both are connected, "
                    f"choose with --connection")
    if under_run and not args.json:
        render.note(f"note: registered inside `authsome run`, so not confirmed: `authsome trust {provider.name}` "
                    "on a terminal confirms it")
    if changed and not args.json:
        _ask_trust(provider, changed)
    return 0


def _ask_trust(provider, changes) -> bool:
    """Show what changed for the stored credentials; on a terminal, ask. True when confirmed."""
    from authsome.providers import trust

    render.note(f"'{provider.name}' has stored credentials, and this definition changes where they go:")
    for field, old, new in changes:
        render.note(f"  {field}: {json.dumps(old)} -> {json.dumps(new)}")
    if not can_ask():
        render.note(f"They are not used with it until someone confirms on a terminal: `authsome trust {provider.name}`.")
        return False
    if not ask_yes(f"Use this definition for the credentials of '{provider.name}'?"):
        render.note("Not confirmed; the stored credentials stay unused with this definition.")
        return False
    render.note(f"confirmed for {', '.join(trust.confirm(vault(), provider))}")
    return True


def ask_first_use(provider) -> bool:
    """A custom definition nobody confirmed: show where it sends credentials; on a terminal, ask."""
    from authsome.providers import trust

    if inside_run() or not can_ask():
        return False
    render.note(f"'{provider.name}' comes from {provider.path}, which nobody confirmed. It sends credentials to:")
    for field, value in trust.destinations(provider):
        render.note(f"  {field}: {value}")
    for field, old, new in trust.differences(provider):
        render.note(f"  (the bundled definition has {field}: {json.dumps(old)}; this one {json.dumps(new)})")
    if not ask_yes(f"Use this definition for '{provider.name}'?"):
        return False
    trust.confirm(vault(), provider)
    return True


def cmd_trust(args) -> int:
    from authsome.providers import trust

    provider = registry().get(args.provider)
    refuse_inside_run("`authsome trust`", "the command there must not confirm where credentials go",
                      f"run `authsome trust {provider.name}` in your own terminal")
    changed = trust.describe(vault(), provider)
    if not changed and not trust.is_confirmed(vault(), provider):
        if ask_first_use(provider):
            render.out(f"confirmed {provider.name}")
            return 0
        raise UsageError(f"The custom definition of '{provider.name}' is not confirmed.",
                         f"run `authsome trust {provider.name}` yourself, in a terminal, and answer y")
    if not changed:
        render.out(f"nothing to confirm: the stored credentials of '{provider.name}' match its definition")
        return 0
    if not can_ask():
        _ask_trust(provider, changed)
        raise UsageError(f"Confirming a changed definition of '{provider.name}' needs a terminal.",
                         f"run `authsome trust {provider.name}` yourself, in a terminal")
    return 0 if _ask_trust(provider, changed) else 1


def cmd_remove(args) -> int:
    path = registry().remove(args.provider)
    bundled = registry().is_bundled(args.provider)
    if args.json:
        render.as_json({"name": args.provider, "removed": str(path), "bundled_visible": bundled})
    else:
        render.out(f"removed {path}")
        if bundled:
            render.note(f"note: the bundled definition of '{args.provider}' is in effect again")
    return 0
