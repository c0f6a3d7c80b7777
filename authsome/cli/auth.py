"""`authsome login | logout | revoke | whoami`: connections and who holds them."""

from __future__ import annotations

import argparse
import os
import sys

from authsome import render
from authsome.cli.common import (
    add_connection,
    add_json,
    ask_yes,
    can_ask,
    connection_of,
    in_ci,
    registry,
    seconds,
    vault,
)
from authsome.errors import DefinitionUnconfirmed, LoginError, NeedsInteraction, UsageError

FLOWS = ("pkce", "device_code", "dcr_pkce", "api_key")


def register(sub) -> None:
    p = sub.add_parser(
        "login",
        help="log in to a provider and store the credentials",
        description="Log in to PROVIDER and store the credentials encrypted in the vault.\n"
        "OAuth2 providers open the browser (or print the URL with --no-browser); API-key\n"
        "providers ask for the key in the local form, a hidden prompt, standard input, or\n"
        "the definition's environment variable (for CI). Secrets are never accepted as arguments.",
        epilog="examples:\n  authsome login x\n  authsome login x --connection work --scopes tweet.read,users.read\n"
        "  authsome login x --no-browser                     # over SSH: open the URL elsewhere, paste the redirect\n"
        "  printf '%s' \"$KEY\" | authsome login openai      # key from stdin\n\n"
        "the redirect URI to register with an OAuth app:\n  http://127.0.0.1:7998/auth/callback/oauth\n\n"
        "environment:\n  <NAME>_CLIENT_ID, <NAME>_CLIENT_SECRET   the OAuth client in CI (X_CLIENT_ID for x)\n"
        "  the definition's env_var (OPENAI_API_KEY)  the API key in CI\n"
        "  CI=true, or no terminal                    fail at once instead of waiting (unless --no-browser)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("provider", metavar="PROVIDER")
    add_connection(p)
    p.add_argument("--scopes", metavar="A,B", help="comma-separated scopes instead of the definition's defaults")
    p.add_argument("--flow", choices=FLOWS, help="login flow (default: the definition's flow)")
    p.add_argument("--force", action="store_true", help="replace an existing connection without asking")
    p.add_argument("--default", action="store_true", help="make this connection the provider's default")
    p.add_argument("--reset-client", action="store_true",
                   help="ask for the OAuth client ID and secret again instead of reusing the stored ones "
                        "(kept once the login works; other connections stay)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser; print the URL and accept a pasted redirect")
    p.add_argument("--base-url", metavar="URL", help="https URL of a self-hosted instance (GitHub Enterprise, GitLab self-managed); its API hosts then receive the token instead of the public ones")
    p.add_argument("--timeout", metavar="SECONDS", type=seconds, default=300.0,
                   help="how long to wait for the browser or the device approval (default: 300)")
    add_json(p)
    p.set_defaults(func=cmd_login)

    p = sub.add_parser(
        "logout",
        help="remove one connection",
        description="Revoke the connection's tokens at the provider where it supports revocation,\n"
        "then delete the connection locally. A failed remote revocation is a warning.",
        epilog="examples:\n  authsome logout x\n  authsome logout x --connection work",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("provider", metavar="PROVIDER")
    add_connection(p)
    add_json(p)
    p.set_defaults(func=cmd_logout)

    p = sub.add_parser(
        "revoke",
        help="remove every connection and the stored client credentials of a provider",
        description="Log out of every connection of PROVIDER and delete its stored client credentials\n"
        "(the client_id/client_secret typed into the login form, or the registered client).\n"
        "Asks first on a terminal; elsewhere it needs --yes.",
        epilog="examples:\n  authsome revoke x\n  authsome revoke x --yes     # in a script",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("provider", metavar="PROVIDER")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    add_json(p)
    p.set_defaults(func=cmd_revoke)

    p = sub.add_parser(
        "default",
        help="show or set which connection of a provider is used when none is named",
        description="Show the default connection of PROVIDER, or make CONNECTION the default: the one\n"
        "`get`, `export`, `logout` and `run` use without --connection (at first, the one named 'default').",
        epilog="examples:\n  authsome login x --connection work\n  authsome default x work\n  authsome default x",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("provider", metavar="PROVIDER")
    p.add_argument("connection", metavar="CONNECTION", nargs="?")
    add_json(p)
    p.set_defaults(func=cmd_default)

    p = sub.add_parser(
        "whoami",
        help="show the home, the key source and the connected accounts",
        description="Show where authsome keeps its data, where the master key comes from, and every stored connection.",
        epilog="examples:\n  authsome whoami\n  authsome whoami --json | jq '.connections'",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_json(p)
    p.set_defaults(func=cmd_whoami)


def cmd_login(args) -> int:
    from authsome.providers import deployment

    provider = registry().get(args.provider)
    args.connection = connection_of(args, provider.name)
    args.base_url = deployment.check_login(provider, args.base_url)
    flow = args.flow or provider.flow
    if (flow == "api_key") != (provider.auth_type == "api_key"):
        raise UsageError(f"'{provider.name}' does not support the '{flow}' flow.", f"run `authsome inspect {provider.name}`")
    from authsome.providers import trust

    trust.check(vault(), provider)  # a stored client secret would go to the definition's token endpoint
    try:
        trust.require_confirmed(vault(), provider)  # a planted file must not get the first credential
    except DefinitionUnconfirmed:
        from authsome.cli.providers import ask_first_use

        if not ask_first_use(provider):
            raise
    if args.reset_client and flow == "api_key":
        raise UsageError(f"'{provider.name}' uses an API key; --reset-client applies to OAuth clients.")
    existing = vault().get_connection(provider.name, args.connection)
    if existing is not None and existing.status() == "connected" and not (args.force or args.reset_client):
        _confirm_replace(provider, existing)
    if flow == "api_key":
        if args.scopes:
            raise UsageError(f"'{provider.name}' uses an API key; --scopes does not apply.")
        conn = _login_api_key(provider, args)
    else:
        conn = _login_oauth(provider, flow, args)
    stored = vault().put_connection(trust.stamped(provider, conn))
    if args.default:
        vault().set_default_connection(provider.name, stored.name)
    if flow != "api_key":
        wanted = _requested_scopes(provider, args)
        missing = [s for s in wanted if stored.scopes and s not in stored.scopes]
        if missing:
            render.note(f"warning: {provider.display_name} granted fewer scopes than requested; missing: {', '.join(missing)}")
    if args.json:
        render.as_json({"provider": stored.provider, "connection": stored.name, "status": stored.status(),
                        "scopes": list(stored.scopes), "expires_at": stored.expires_at})
    else:
        render.out(f"connected {provider.name} ({stored.name})")
    return 0


def _confirm_replace(provider, existing) -> None:
    """Replacing a working connection: ask on a terminal, else require --force."""
    what = f"'{provider.name}' already has a connected '{existing.name}' connection"
    detail = ", ".join(x for x in (existing.account and f"account {existing.account}",
                                   existing.scopes and f"scopes {' '.join(existing.scopes)}") if x)
    if can_ask():
        if ask_yes(f"{what}{f' ({detail})' if detail else ''}. Replace it?"):
            return
        raise UsageError("Not replaced; the connection is unchanged.", "use --connection NAME to add another account")
    raise UsageError(f"{what}.", "add --force to replace it, or --connection NAME for another account")


def _requested_scopes(provider, args) -> tuple[str, ...]:
    if args.scopes is not None:
        return tuple(s.strip() for s in args.scopes.split(",") if s.strip())
    return provider.oauth.scopes if provider.oauth else ()


def _headless() -> str | None:
    """Why nobody can complete an interactive login here, or None."""
    if in_ci():
        return "CI=true"
    if not sys.stdin.isatty():
        return "no terminal"
    return None


def _login_oauth(provider, flow: str, args):
    from authsome import flows
    from authsome.cli.terminal import TerminalInteraction
    from authsome.flows.interaction import LoginOptions

    oauth = provider.oauth
    if flow == "device_code" and not oauth.supports_device_code:
        raise UsageError(f"'{provider.name}' does not support the device flow.", f"run `authsome login {provider.name}`")
    if flow == "dcr_pkce" and not oauth.supports_dcr:
        raise UsageError(f"'{provider.name}' does not support dynamic client registration.", f"run `authsome login {provider.name}`")
    reason = _headless()
    if reason and flow != "device_code" and not args.no_browser:
        alt = " or --flow device_code" if oauth.supports_device_code else ""
        raise NeedsInteraction(
            f"Nothing here can complete a browser login ({reason}), so authsome does not wait.",
            f"run `authsome login {provider.name} --no-browser`{alt} and finish the login from a browser elsewhere",
        )
    scopes = None
    if args.scopes is not None:
        scopes = tuple(s.strip() for s in args.scopes.split(",") if s.strip())
        if not scopes:
            raise UsageError("--scopes is empty.", "give comma-separated scopes, for example --scopes tweet.read,users.read")
    opts = LoginOptions(
        connection=args.connection,
        scopes=scopes,
        no_browser=args.no_browser,
        base_url=args.base_url,
        timeout=args.timeout,
        port=_login_port(),
        reset_client=args.reset_client,
    )
    return flows.login(provider, flow, vault(), opts, TerminalInteraction())


def _login_port() -> int:
    from authsome.flows.form_server import DEFAULT_PORT

    value = os.environ.get("AUTHSOME_LOGIN_PORT")
    if not value:
        return DEFAULT_PORT
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise UsageError("AUTHSOME_LOGIN_PORT is not a port number.")
    return int(value)


def _login_api_key(provider, args):
    """The key from (in order) its env_var, piped stdin, the local form, a hidden prompt."""
    from authsome.flows import api_key

    values = api_key.from_env(provider, os.environ)
    if values is None and not sys.stdin.isatty():
        values = _piped_values(provider)
    if values is None:
        reason = _headless()
        if reason:
            env = provider.api_key.env_var if provider.api_key else None
            raise NeedsInteraction(
                f"No API key for '{provider.name}' and nobody to ask ({reason}).",
                f"set {env} or pipe the key on stdin" if env else "pipe the key on stdin",
            )
        if not args.no_browser:
            from authsome.cli.terminal import TerminalInteraction

            values = api_key.collect_with_form(provider, TerminalInteraction(), port=_login_port(), timeout=args.timeout)
    if values is None:
        values = {}
        for f in api_key.fields(provider):
            if f.hint:
                render.note(f.hint)
            values[f.name] = render.hidden_prompt(f.label) if f.secret else input(f"{f.label}: ")
    return api_key.build_connection(provider, values, args.connection)


def _piped_values(provider) -> dict[str, str]:
    """Values piped on stdin: one per line, in the order `authsome inspect` lists them, and nothing more."""
    from authsome.flows import api_key
    from authsome.providers.patterns import MAX_INPUT

    fields = api_key.fields(provider)
    hint = f"pipe the key alone: printf '%s' \"$KEY\" | authsome login {provider.name}"
    values = {}
    for f in fields:
        line = sys.stdin.readline(MAX_INPUT + 2)
        if len(line.rstrip("\r\n")) > MAX_INPUT:
            raise LoginError(f"The {f.label} on standard input is longer than {MAX_INPUT} characters.", hint)
        values[f.name] = line.strip()
    if not values.get("api_key"):
        raise LoginError("No API key arrived on standard input.", hint)
    if sys.stdin.read(MAX_INPUT).strip():
        wanted = "one line" if len(fields) == 1 else f"{len(fields)} lines ({', '.join(f.label for f in fields)})"
        raise LoginError(f"Standard input holds more than {wanted}; a key is never cut to its first line.", hint)
    return values


def cmd_logout(args) -> int:
    from authsome.connections import logout

    provider = registry().get(args.provider)
    args.connection = connection_of(args, provider.name)
    removed, warnings = logout(vault(), provider, args.connection)
    for w in warnings:
        render.note(f"warning: {w}")
    if args.json:
        render.as_json({"provider": provider.name, "connection": args.connection, "removed": removed,
                        "warnings": warnings})
    elif removed:
        render.out(f"logged out of {provider.name} ({args.connection})")
    else:
        render.out(f"{provider.name} has no connection '{args.connection}'; nothing to do")
    return 0


def cmd_revoke(args) -> int:
    from authsome.connections import revoke_all
    from authsome.vault import check_provider_name

    from authsome.errors import ProviderError

    name = check_provider_name(args.provider)
    try:
        provider = registry().get(name)
    except ProviderError:
        provider = None  # the definition is gone or broken: still delete the local records
    v = vault()
    held = v.connection_names(name)
    if provider is None and not held and v.get_client(name) is None:
        registry().get(name)  # neither a definition nor records: the provider's own error
    if not args.yes:
        what = f"{len(held)} connection(s) of '{name}' ({', '.join(held) or 'none'}) and its stored client"
        if not can_ask():
            raise UsageError(f"`revoke` deletes {what}; it asks first, and nobody can answer here.",
                             f"add --yes: authsome revoke {name} --yes")
        if not ask_yes(f"Delete {what}?"):
            raise UsageError("Nothing was deleted.", f"`authsome logout {name} --connection NAME` removes one connection")
    removed, client, warnings = revoke_all(v, provider, name)
    for w in warnings:
        render.note(f"warning: {w}")
    if args.json:
        render.as_json({"provider": name, "connections_removed": removed, "client_removed": client,
                        "warnings": warnings})
    else:
        render.out(f"removed {len(removed)} connection(s) of {name}" + (" and its client credentials" if client else ""))
    return 0


def cmd_default(args) -> int:
    from authsome.connections import missing
    from authsome.vault import check_connection_name

    provider = registry().get(args.provider)
    v = vault()
    if args.connection is not None:
        name = check_connection_name(args.connection)
        if name not in v.connection_names(provider.name):
            raise missing(v, provider.name, name)
        v.set_default_connection(provider.name, name)
    current = v.default_connection(provider.name)
    if args.json:
        render.as_json({"provider": provider.name, "default": current, "connections": v.connection_names(provider.name)})
    else:
        render.out(current)
    return 0


def cmd_whoami(args) -> int:
    from authsome import paths

    v = vault()
    entries = v.list_connections()
    key = v.key if entries or (paths.home() / "master.key").exists() or "AUTHSOME_MASTER_KEY" in os.environ else None
    conns = [
        {"provider": e.provider, "connection": e.name,
         "status": e.connection.status() if e.connection else "error",
         "account": e.connection.account if e.connection else None}
        for e in entries
    ]
    data = {
        "home": str(paths.home()),
        "master_key": {"source": key.source, "location": key.location} if key else None,
        "connections": conns,
    }
    if args.json:
        render.as_json(data)
        return 0
    render.key_values([
        ("home", data["home"]),
        ("master key", f"{key.source} ({key.location})" if key else "not created yet"),
    ])
    if conns:
        render.out("")
        render.table(["PROVIDER", "CONNECTION", "STATUS", "ACCOUNT"],
                     [(c["provider"], c["connection"], c["status"], c["account"] or "-") for c in conns])
    else:
        render.out("no connections yet; run `authsome login PROVIDER`")
    return 0
