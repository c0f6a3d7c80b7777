"""`authsome mcp add | config`: remote MCP servers whose OAuth authsome owns."""

from __future__ import annotations

import argparse
import json

from authsome import render
from authsome.cli.common import add_connection, add_json, refuse_inside_run, registry, seconds, vault
from authsome.errors import UsageError

EPILOG = """\
examples:
  authsome mcp add notion https://mcp.notion.com/mcp      # discover, register, log in (opens the browser)
  authsome mcp add linear https://mcp.linear.app/mcp --no-browser
  authsome mcp add corp https://mcp.corp.example/mcp --client-id my-client
  authsome mcp config notion --client claude              # what to put in the client's configuration
  authsome run -- claude                                  # the client sees a placeholder, never the token

Discovery follows the MCP specification: the server's protected resource
metadata (RFC 9728), its authorization server's metadata (RFC 8414, then
OpenID Connect), dynamic client registration (RFC 7591) unless --client-id,
and PKCE S256 with the server's canonical URL as the RFC 8707 resource. The
result is an ordinary provider: `list`, `inspect`, `get`, `logout` and
`login NAME` work on it.
"""


def register(sub) -> None:
    p = sub.add_parser(
        "mcp",
        help="remote MCP servers: authsome owns their OAuth (`mcp add`, `mcp config`)",
        description="Add remote MCP servers (streamable HTTP, OAuth as the MCP specification defines it) as\n"
        "providers: one login, tokens in the vault, injected on the wire for that server only.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mcp = p.add_subparsers(dest="mcp_command", metavar="COMMAND", parser_class=type(p))
    a = mcp.add_parser("add", help="discover an MCP server's authorization, register, and log in",
                       description="Add the MCP server at URL as provider NAME and log in to it.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    a.add_argument("name", metavar="NAME", help="the provider name to use (lower-case letters, digits, dashes)")
    a.add_argument("url", metavar="URL", help="the MCP server's https URL (its streamable HTTP endpoint)")
    a.add_argument("--client-id", metavar="ID",
                   help="a client registered with the server's operator (default: dynamic client registration)")
    add_connection(a)
    a.add_argument("--scopes", metavar="A,B", help="comma-separated scopes (default: what the server lists)")
    a.add_argument("--force", action="store_true",
                   help="replace an existing definition or connection of that name without asking")
    a.add_argument("--no-browser", action="store_true",
                   help="do not open a browser; print the URL and accept a pasted redirect")
    a.add_argument("--timeout", metavar="SECONDS", type=seconds, default=300.0,
                   help="how long to wait for the browser (default: 300)")
    add_json(a)
    a.set_defaults(func=cmd_add)
    c = mcp.add_parser("config", help="print the configuration snippet a client needs for an added server",
                       description="Print the MCP configuration for NAME: its URL and, for clients that would\n"
                       "otherwise run their own OAuth, an Authorization header with the placeholder.\n"
                       "Run the client under `authsome run`; the real token is written on the wire.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("name", metavar="NAME")
    c.add_argument("--client", choices=("claude", "cursor", "generic"), default="generic",
                   help="claude: Claude Code's .mcp.json; cursor: ~/.cursor/mcp.json; generic: URL and header")
    c.set_defaults(func=cmd_config)
    p.set_defaults(func=lambda args: p.print_help() or 2)


def cmd_add(args) -> int:
    from authsome import mcp
    from authsome.cli import auth
    from authsome.models import ClientCredentials
    from authsome.providers import trust
    from authsome.vault import check_provider_name

    refuse_inside_run("`authsome mcp add`", "it would choose where a new credential goes")
    name = check_provider_name(args.name)
    if registry().is_bundled(name):
        raise UsageError(f"'{name}' is a bundled provider's name.", f"choose another, for example {name}-mcp")
    found = mcp.discover(args.url)
    definition = mcp.definition(name, found, client_id=args.client_id)
    _make_room(name, found.url, found.issuer, force=args.force)
    # `_make_room` refused what may not be replaced (before changing anything): the file may be written.
    provider, _ = registry().register(json.dumps(definition).encode(), found.url, force=True)
    trust.confirm_definition(vault(), provider)  # the user ran this command: this definition is theirs
    if args.client_id:
        vault().put_client(trust.stamped(provider, ClientCredentials(provider=name, client_id=args.client_id)))
    render.note(f"added {name}: {found.url}, authorization server {found.issuer}")
    login = argparse.Namespace(provider=name, connection=args.connection, scopes=args.scopes, flow=None,
                               force=args.force, default=False, reset_client=False, no_browser=args.no_browser,
                               base_url=None, timeout=args.timeout, json=args.json)
    return auth.cmd_login(login)


def _make_room(name: str, url: str, issuer: str, *, force: bool) -> None:
    """Refuse to put an MCP server over another definition of that name, unless --force; then its stored
    credentials go first (they were for the other definition's hosts, and must not follow the name).
    The same server with another authorization server: its credentials were that issuer's, so they go too."""
    from authsome import connections
    from authsome.errors import ProviderNotFound

    try:
        current = registry().get(name)
    except ProviderNotFound:
        return
    stored = vault().connection_names(name) or vault().get_client(name) is not None
    same_server = current.mcp_url == url
    if same_server and (current.oauth and current.oauth.issuer) == issuer:
        return  # the same server again: a new login, as `authsome login NAME` would do
    if not same_server and not force:
        what = f"the MCP server {current.mcp_url}" if current.mcp_url else "a custom provider"
        raise UsageError(f"'{name}' is already {what}" + (", with stored credentials." if stored else "."),
                         "choose another name, or add --force to replace it (its stored credentials are removed)")
    if stored:
        removed, _, warnings = connections.revoke_all(vault(), current, name)
        for warning in warnings:
            render.note(f"warning: {warning}")
        render.note(f"removed the credentials of the previous '{name}' ({', '.join(removed) or 'its client'})")


def cmd_config(args) -> int:
    from authsome import mcp

    provider = registry().get(args.name)
    if not provider.mcp_url:
        raise UsageError(f"'{provider.name}' is not an MCP server added with `authsome mcp add`.",
                         "add one: authsome mcp add NAME URL")
    render.out(mcp.client_config(provider.name, provider.mcp_url, args.client))
    render.note(f"run the client under `authsome run` (it then reaches {provider.mcp_url} through the proxy)")
    return 0
