"""`authsome ci export`: hand connections to a CI job as two secrets."""

from __future__ import annotations

import argparse
import sys

from authsome import render
from authsome.cli.common import refuse_inside_run, registry, vault
from authsome.errors import UsageError

EPILOG = """\
examples:
  authsome login x --connection ci                  # a grant for CI alone
  authsome ci export x=ci                           # AUTHSOME_BUNDLE=... and AUTHSOME_MASTER_KEY=...
  authsome ci export x=ci --format github | sh      # into the repository's secrets with gh
  authsome ci export openai x=ci --access-token-only

in the job, with only those two variables set:
  authsome run --deny-unmatched -- python agent.py

A connection exported with its refresh token is handed over: this machine no
longer uses or refreshes it (a rotating grant, like X's, dies when both sides
refresh). A job that rotates the token spends the bundle's copy and says so;
--access-token-only bundles carry no refresh token, fork nothing, and last as
long as the access token.
"""


def register(sub) -> None:
    p = sub.add_parser(
        "ci",
        help="hand connections to CI jobs (`authsome ci export`)",
        description="Commands for running agents in CI with no secret but the two a bundle needs.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ci = p.add_subparsers(dest="ci_command", metavar="COMMAND", parser_class=type(p))
    e = ci.add_parser(
        "export",
        help="print AUTHSOME_BUNDLE and AUTHSOME_MASTER_KEY for the CI secret store",
        description="Seal the chosen connections (their tokens, the OAuth client each needs to refresh, and the\n"
        "definition when it is a custom one) under a fresh key, and print the two values a job needs.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    e.add_argument("connections", metavar="PROVIDER[=CONNECTION]", nargs="*",
                   help="what to export (CONNECTION: the provider's default when left out); with "
                   "--access-token-only, none means every provider's default connection")
    e.add_argument("--access-token-only", action="store_true",
                   help="no refresh tokens: the job works while the access tokens live, and this machine keeps the connections")
    e.add_argument("--format", choices=("env", "github"), default="env",
                   help="env: NAME=value lines; github: `gh secret set` commands that read the values from stdin")
    e.set_defaults(func=cmd_export)
    p.set_defaults(func=lambda args: p.print_help() or 2)


def _selection(items: list[str], access_token_only: bool):
    from authsome.bundle import Selected
    from authsome.connections import connection_name

    v = vault()
    out = []
    if not items:
        # Every default connection, but only when none is handed over: else this machine's own
        # connections would go to CI without anyone naming them.
        if not access_token_only:
            raise UsageError("Name the connections to export (exporting a refresh token hands the connection to CI).",
                             "for example: authsome ci export x=ci openai; or every default connection, "
                             "access tokens only: authsome ci export --access-token-only")
        for provider in v.providers_with_records():
            name = v.default_connection(provider)
            if name in v.connection_names(provider):
                out.append(Selected(provider, name))
        if not out:
            raise UsageError("No connection to export.", "log in first: authsome login PROVIDER")
        return out
    for item in items:
        provider, _, conn = item.partition("=")
        out.append(Selected(provider.strip(), connection_name(v, provider.strip(), conn.strip() or None)))
    return out


def cmd_export(args) -> int:
    from authsome import bundle

    refuse_inside_run("`authsome ci export`")
    selection = _selection(args.connections, args.access_token_only)
    with bundle.exported(vault(), registry(), selection, access_token_only=args.access_token_only) as (text, key, handed):
        if args.format == "github":
            for name, value in (("AUTHSOME_BUNDLE", text), ("AUTHSOME_MASTER_KEY", key)):
                render.out(f"gh secret set {name} <<'AUTHSOME_EOF'\n{value}\nAUTHSOME_EOF")
        else:
            render.out(f"AUTHSOME_BUNDLE={text}")
            render.out(f"AUTHSOME_MASTER_KEY={key}")
        sys.stdout.flush()  # out, or taken back
    names = ", ".join(f"{s.provider}/{s.connection}" for s in selection)
    render.note(f"exported {names}; keep both values in the CI secret store, nowhere else")
    for s in handed:
        render.note(f"note: {s.provider}/{s.connection} now belongs to CI: this machine no longer uses or refreshes it "
                    f"(`authsome login {s.provider} --connection {s.connection} --force` takes it back)")
    return 0
