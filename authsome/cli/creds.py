"""`authsome get | export`: read what the vault holds for a connection."""

from __future__ import annotations

import argparse
import datetime as dt

from authsome import render
from authsome.cli.common import add_connection, add_json, connection_of, refuse_inside_run, registry, vault
from authsome.errors import CredentialError, ExitCode, UsageError, given

SECRET_FIELDS = ("access_token", "refresh_token", "id_token", "api_key")
PLAIN_FIELDS = (
    "status", "provider", "connection", "auth_type", "account", "scopes", "expires_at",
    "token_type", "flow", "base_url", "created_at", "updated_at",
)


def register(sub) -> None:
    p = sub.add_parser(
        "get",
        help="show a connection (secrets redacted)",
        description="Show what the vault holds for one connection. Secrets are redacted unless\n"
        "--show-secret is given. A missing connection has status `not_connected`.",
        epilog="fields:\n  " + ", ".join(PLAIN_FIELDS) + "\n  secrets (need --show-secret): " + ", ".join(SECRET_FIELDS)
        + ", and API-key extra fields\n\nexamples:\n  authsome get x --field status          # connected\n"
        "  authsome get x --connection work --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("provider", metavar="PROVIDER")
    add_connection(p)
    p.add_argument("--field", "-f", metavar="F", help="print only this field's value")
    p.add_argument("--show-secret", action="store_true", help="print secret values instead of <redacted>")
    add_json(p)
    p.set_defaults(func=cmd_get)

    p = sub.add_parser(
        "export",
        help="print credentials as environment variables",
        description="Print the access tokens and API keys of a connection as environment variables.\n"
        "Refresh tokens are never exported. Without PROVIDER, every provider's connection is exported.\n"
        "Prefer `authsome run`, which gives the program placeholders instead of real secrets.",
        epilog="formats:\n  env    export NAME='value' lines, for eval in sh/bash/zsh\n"
        "  shell  NAME='value' lines without export (for `set -a; . file`)\n"
        "  json   an object of NAME: value\n\n"
        "example:\n  eval \"$(authsome export x --format env)\"",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("provider", metavar="PROVIDER", nargs="?")
    add_connection(p)
    p.add_argument("--format", choices=("env", "shell", "json"), default="env", help="output format (default: env)")
    p.set_defaults(func=cmd_export)


def _iso(ts: float | None) -> str | None:
    return None if ts is None else dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds")


def _refuse_inside_run(what: str) -> None:
    refuse_inside_run(what, "the command there works with placeholders", "run it in your own shell, outside `authsome run`")


def cmd_get(args) -> int:
    from authsome.connections import find, fresh, kept_here, missing

    if args.show_secret:
        _refuse_inside_run("Printing secrets")
    provider = registry().get(args.provider)
    args.connection = connection_of(args, provider.name)
    conn = find(vault(), provider.name, args.connection)
    if conn is not None and args.show_secret:
        kept_here(conn)
    extra_names = {f.name for f in (provider.api_key.extra_fields if provider.api_key else ())}
    secret = provider.secret_fields()
    if args.field:
        name = args.field
        if name not in PLAIN_FIELDS and name not in SECRET_FIELDS and name not in extra_names:
            raise UsageError(f"Unknown field {given(name)}.", "run `authsome get --help` for the list of fields")
        if conn is None:
            if name != "status":
                raise missing(vault(), provider.name, args.connection)
            value = "not_connected"
        else:
            is_secret = name in SECRET_FIELDS or name in secret
            if is_secret and not args.show_secret and _field(conn, name) is not None:
                raise UsageError(f"'{name}' is a secret.", "add --show-secret to print it")
            if is_secret and name == "access_token":
                conn = fresh(vault(), conn, provider)  # as `export` does: a printed token must still work
            value = _field(conn, name)
            if value in (None, "", []):
                raise CredentialError(f"Connection '{conn.name}' of '{provider.name}' has no {name}.",
                                      "run `authsome get --help` for the fields; "
                                      f"`authsome get {provider.name}` shows what the connection holds")
        if args.json:
            render.as_json({name: value})
        else:
            render.out(" ".join(value) if isinstance(value, list) else str(value))
        return ExitCode.CREDENTIAL if name == "status" and value != "connected" else 0

    if conn is None:
        data = {"provider": provider.name, "connection": args.connection, "status": "not_connected"}
        if args.json:
            render.as_json(data)
        else:
            render.key_values(list(data.items()))
            render.note(f"hint: run `authsome login {provider.name}" + ("" if args.connection == "default" else f" --connection {args.connection}") + "`")
        return ExitCode.CREDENTIAL

    data = conn.to_dict() if args.show_secret else conn.redacted(secret)
    data = {"provider": conn.provider, "connection": conn.name, "status": conn.status(),
            **{k: v for k, v in data.items() if k not in ("provider", "name", "status", "version", "definition")}}
    if args.json:
        render.as_json(data)
        return 0
    pairs = [(k, v) for k, v in data.items() if k not in ("extra", "state")]
    pairs = [(k, _iso(v) if k.endswith("_at") else v) for k, v in pairs if v not in (None, "", [], {})]
    pairs += [(f"extra.{k}", v) for k, v in data.get("extra", {}).items()]
    render.key_values(pairs)
    return 0


def _field(conn, name: str):
    if name == "status":
        return conn.status()
    if name == "connection":
        return conn.name
    if name == "scopes":
        return list(conn.scopes)
    if name.endswith("_at"):
        value = getattr(conn, name)
        return None if value is None else int(value)
    if hasattr(conn, name) and name != "extra":
        return getattr(conn, name)
    return conn.extra.get(name)


def cmd_export(args) -> int:
    from authsome.connections import export_values
    from authsome.exports import render as render_values

    _refuse_inside_run("Exporting real credentials")
    values = export_values(registry(), vault(), args.provider, args.connection)
    text = render_values(values, args.format)
    if text:
        render.out(text)
    elif not args.provider:
        render.note("note: no connected provider to export")
    return 0

