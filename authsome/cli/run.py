"""`authsome run -- CMD`: run a program with placeholders and the injecting proxy."""

from __future__ import annotations

import argparse
import sys

from authsome import render
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
    p.add_argument("--connection", "-c", metavar="PROVIDER=NAME", action="append", default=[],
                   help="use this connection of PROVIDER (repeatable; default: each provider's 'default')")
    p.add_argument("--deny-unmatched", action="store_true",
                   help="refuse (403) connections and requests to hosts no provider routes (an allow-list for the command)")
    p.add_argument("--allow-host", metavar="HOST", action="append", default=[],
                   help="with --deny-unmatched, let HOST (exact, or *.domain) through untouched (repeatable)")
    p.add_argument("--ui", choices=("web",),
                   help="also serve mitmproxy's web UI on 127.0.0.1 to watch the traffic (URL printed on stderr)")
    p.add_argument("--resolve", metavar="HOST:PORT:ADDR:PORT", action="append", default=[],
                   help="connect to ADDR:PORT for HOST:PORT, keeping the name for TLS and routing (like curl)")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD [ARGS...]")
    p.set_defaults(func=cmd_run)


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


def cmd_run(args) -> int:
    from authsome import bindings, resolve, runner
    from authsome.errors import UsageError
    from authsome.providers.routes import RouteError, parse_allowed_host

    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise UsageError("No command to run.", "put the command after --, for example: authsome run -- python my_agent.py")
    if args.allow_host and not args.deny_unmatched:
        raise UsageError("--allow-host only matters with --deny-unmatched.", "add --deny-unmatched, or drop --allow-host")
    try:
        allowed = [parse_allowed_host(h) for h in args.allow_host]
    except RouteError as exc:
        raise UsageError(f"--allow-host {exc}.", "give a host name such as pypi.org, or *.example.com") from None
    if args.resolve:
        resolve.install(args.resolve)
    selection = bindings.parse_selection(args.connection)
    active = bindings.load(vault(), registry(), selection, warn=lambda text: render.note(f"authsome: {text}"))
    if not active:
        render.note("authsome: no connected provider; the command runs without credentials")
    _authsome_logs_to_stderr()

    def announce(proxy) -> None:
        if proxy.web_url:
            render.note(f"authsome: mitmproxy web UI at {proxy.web_url}")

    return runner.run(command, active, vault(), connections=[f"{k}={v}" for k, v in selection.items()],
                      deny_unmatched=args.deny_unmatched, allow_hosts=allowed, ui=args.ui, on_ready=announce)
