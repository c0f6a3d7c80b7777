"""`authsome run -- CMD`: run a program with placeholders and the injecting proxy."""

from __future__ import annotations

import argparse
import sys

from authsome import paths, render
from authsome.cli.common import registry, vault

EPILOG = """\
what the command gets:
  HTTP(S)_PROXY     http://authsome:<random>@127.0.0.1:<port> (only it can use the proxy)
  <PROVIDER>_...    authsome-proxy-managed placeholders for every exported credential
  SSL_CERT_FILE, REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE, GIT_SSL_CAINFO
                    a bundle of your trusted roots plus this run's CA
  NODE_EXTRA_CA_CERTS, DENO_CERT   this run's CA; NODE_USE_ENV_PROXY=1

Requests over HTTPS to a provider's own API hosts get the real credential; every
other host is tunnelled untouched. A 401 refreshes the token and re-sends once.
The exit status is the command's (128+N when signal N ended it).

examples:
  authsome run -- python my_agent.py
  authsome run --connection x=work -- curl https://api.twitter.com/2/users/me
  authsome run --resolve api.twitter.com:443:127.0.0.1:8443 -- ./staging-test.sh
  authsome run --ui web -- python my_agent.py          # watch the requests in mitmproxy's web UI
  authsome run --ui console -- python my_agent.py      # ... or in its console, in this terminal
  authsome run --deny-unmatched --allow-host pypi.org -- ./agent.sh   # only routed hosts and pypi.org

--deny-unmatched holds for programs that use the proxy; one that opens its own
sockets is out of its reach (run it in a network namespace or container for that).
"""


def register(sub) -> None:
    p = sub.add_parser(
        "run",
        help="run a command whose API requests get credentials injected",
        description="Run CMD with placeholder credentials and a local proxy that swaps them for the\n"
        "real ones, only on requests to each provider's own API hosts.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _proxy_options(p, ui_help="watch the traffic in mitmproxy's web UI on 127.0.0.1 (URL printed on stderr) or its "
                              "console in this terminal (the command's output then goes to a file)")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD [ARGS...]")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "proxy",
        help="run the injecting proxy alone; commands join it with `authsome attach`",
        description="Run the proxy `authsome run` would start, without a command: for agents that need\n"
        "a terminal of their own. Start them in another terminal with `authsome attach -- CMD`.\n"
        "Ctrl-C (or q in the console) stops the proxy.",
        epilog=PROXY_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _proxy_options(p, ui_help="watch the traffic in mitmproxy's web UI on 127.0.0.1 or its console in this terminal")
    p.set_defaults(func=cmd_proxy)

    p = sub.add_parser(
        "attach",
        help="run a command with the environment of a running `authsome proxy`",
        description="Run CMD with exactly the environment `authsome run` would give it, served by a proxy\n"
        "started with `authsome proxy`. RUN (or its first characters) picks the proxy when\n"
        "more than one of this home runs.",
        epilog=ATTACH_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="authsome attach [-h] [RUN] -- CMD [ARGS...]",
    )
    p.add_argument("words", nargs=argparse.REMAINDER, metavar="[RUN] -- CMD [ARGS...]")
    p.set_defaults(func=cmd_attach)


PROXY_EPILOG = """examples:
  authsome proxy                      # then, in another terminal: authsome attach -- claude
  authsome proxy --ui console         # watch the attached commands' requests here
  authsome proxy --connection x=work --deny-unmatched

The environment for attached commands (the proxy's URL with its password, the CA
bundles, the placeholders) is kept in a 0600 file in the run's directory under
$AUTHSOME_HOME, removed when the proxy stops; nothing secret is printed.
Exits 0 when stopped (Ctrl-C, SIGTERM, quitting the console), 7 when the proxy failed.
"""

ATTACH_EPILOG = """examples:
  authsome attach -- python my_agent.py        # the one proxy of this home
  authsome attach 3f2a -- curl https://api.twitter.com/2/users/me

The exit status is CMD's. When the proxy stops, attached commands get connection errors.
"""


def _proxy_options(p, *, ui_help: str) -> None:
    p.add_argument("--connection", "-c", metavar="PROVIDER=NAME", action="append", default=[],
                   help="use this connection of PROVIDER (repeatable; default: each provider's 'default')")
    p.add_argument("--deny-unmatched", action="store_true",
                   help="refuse (403) connections and requests to hosts no provider routes (an allow-list for the command)")
    p.add_argument("--allow-host", metavar="HOST", action="append", default=[],
                   help="with --deny-unmatched, let HOST (exact, or *.domain) through untouched (repeatable)")
    p.add_argument("--ui", choices=("web", "console"), help=ui_help)
    p.add_argument("--resolve", metavar="HOST:PORT:ADDR:PORT", action="append", default=[],
                   help="connect to ADDR:PORT for HOST:PORT, keeping the name for TLS and routing (like curl)")


def _authsome_logs_to_stderr() -> None:
    """authsome's own warnings during a run (an invalid connection, a failed refresh) go to stderr."""
    import logging

    class Prefixed(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            return f"authsome: {record.getMessage()}"

    logger = logging.getLogger("authsome")
    logger.setLevel(logging.WARNING)
    logger.propagate = False
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(Prefixed())
        logger.addHandler(handler)


def _prepared(args, *, ui_needs_terminal: str):
    """The options `run` and `proxy` share, checked: (bindings, PROVIDER=NAME pairs, allowed hosts)."""
    from authsome import bindings, resolve
    from authsome.errors import UsageError
    from authsome.providers.routes import RouteError, parse_allowed_host

    if args.allow_host and not args.deny_unmatched:
        raise UsageError("--allow-host only matters with --deny-unmatched.", "add --deny-unmatched, or drop --allow-host")
    try:
        allowed = [parse_allowed_host(h) for h in args.allow_host]
    except RouteError as exc:
        raise UsageError(f"--allow-host {exc}.", "give a host name such as pypi.org, or *.example.com") from None
    if args.ui == "console" and not (sys.stdout.isatty() and sys.stdin.isatty()):
        raise UsageError("--ui console needs a terminal, and standard "
                         f"{'output' if not sys.stdout.isatty() else 'input'} is not one.", ui_needs_terminal)
    if args.resolve:
        resolve.install(args.resolve)
    selection = bindings.parse_selection(args.connection)
    active = bindings.load(vault(), registry(), selection, warn=lambda text: render.note(f"authsome: {text}"))
    return active, [f"{k}={v}" for k, v in selection.items()], allowed


def cmd_run(args) -> int:
    from authsome import runner
    from authsome.errors import UsageError

    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise UsageError("No command to run.", "put the command after --, for example: authsome run -- python my_agent.py")
    active, connections, allowed = _prepared(
        args, ui_needs_terminal="run it in a terminal; with output to a file or pipe, use --ui web (or no --ui)")
    if not active:
        render.note("authsome: no connected provider; the command runs without credentials")
    _authsome_logs_to_stderr()

    def announce(proxy) -> None:
        if proxy.web_url:
            render.note(f"authsome: mitmproxy web UI at {proxy.web_url}")

    return runner.run(command, active, vault(), connections=connections,
                      deny_unmatched=args.deny_unmatched, allow_hosts=allowed, ui=args.ui, on_ready=announce,
                      say=lambda text: render.note(f"authsome: {text}"))


def cmd_proxy(args) -> int:
    from authsome import runner

    active, connections, allowed = _prepared(
        args, ui_needs_terminal="run it in a terminal, or use --ui web (or no --ui)")
    if not active:
        render.note("authsome: no connected provider; attached commands run without credentials")
    _authsome_logs_to_stderr()
    others = bool(runner.live_proxies(paths.home()))  # then attach must name this one

    def announce(session) -> None:
        which = f"{session.run_id} " if others else ""
        lines = [f"proxy {session.run_id} serves on 127.0.0.1:{session.proxy.port}"
                 + (f" ({', '.join(b.key for b in active)})" if active else ""),
                 f"in another terminal: authsome attach {which}-- CMD", "Ctrl-C stops it"]
        if session.proxy.web_url:
            lines.insert(1, f"mitmproxy web UI at {session.proxy.web_url}")
        if args.ui == "console":
            session.proxy.say("authsome: " + "; ".join(lines[:2]) + "; q quits.")
        else:
            for line in lines:
                render.note(f"authsome: {line}")

    status = runner.serve(active, vault(), connections=connections,
                          deny_unmatched=args.deny_unmatched, allow_hosts=allowed, ui=args.ui, on_ready=announce)
    if status == 0:
        render.note("authsome: proxy stopped")
    return status


def cmd_attach(args) -> int:
    from authsome import runner
    from authsome.errors import UsageError

    words = list(args.words)
    if "--" not in words:
        raise UsageError("`authsome attach` needs -- before the command.",
                         "for example: authsome attach -- python my_agent.py (or authsome attach RUN -- CMD)")
    split = words.index("--")
    before, command = words[:split], words[split + 1:]
    if len(before) > 1 or (before and before[0].startswith("-")):
        raise UsageError("`authsome attach` takes at most a RUN before --.", "for example: authsome attach 3f2a -- CMD")
    if not command:
        raise UsageError("No command to attach.", "put it after --, for example: authsome attach -- python my_agent.py")
    _authsome_logs_to_stderr()
    home = paths.ensure_home()  # refuses a home others can write, as every command that trusts its files does
    runner.attach(command, runner.find_proxy(home, before[0] if before else None))
    return 0  # not reached: attach replaces this process with the command
