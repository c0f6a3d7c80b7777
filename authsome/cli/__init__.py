"""The command line: parse, dispatch, render. The only error boundary.

`main(argv) -> int` never raises: library errors become one `error:` line,
one `hint:` line and the exit code from `authsome.errors.ExitCode`; a
traceback is printed only with --verbose. Each command group lives in its
own module and registers its sub-parsers here.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from authsome import __version__
from authsome.errors import AuthsomeError, ExitCode

DESCRIPTION = """\
authsome keeps your API credentials in an encrypted local vault and hands
agents placeholders instead of secrets. Log in once per provider; run the
agent under `authsome run` and the real token is injected on the wire, only
toward that provider's own API host.

commands:
  providers    list, inspect, register, trust, remove
  credentials  login, default, get, export, logout, revoke
  agents       run, proxy, attach, log, ci export
  teams        store use, init, status, push, pull, rekey
  mcp          mcp add, mcp config (remote MCP servers)
  diagnostics  whoami, doctor, completion
"""

EPILOG = """\
examples:
  authsome login x                        log in to X (opens the browser)
  authsome get x --field status           connected | not_connected | expired | invalid
  authsome run -- python my_agent.py      run an agent; it sees placeholders only
  eval "$(authsome export x --format env)"  export real tokens into this shell

exit codes:
  0 ok   1 error   2 usage   3 provider   4 credential   5 vault
  6 login   7 proxy   130 interrupted; `run` exits with the child's status

data lives in $AUTHSOME_HOME (default ~/.authsome). `authsome COMMAND -h` for details.
"""


class Parser(argparse.ArgumentParser):
    """argparse that reports usage errors through our error boundary.

    Option names are shown (with a suggestion for a typo); values and other
    stray words never are: a user may have pasted a secret where no argument
    belongs.
    """

    def error(self, message: str):  # type: ignore[override]
        import difflib
        import re

        from authsome.errors import UsageError

        if message.startswith("unrecognized arguments: "):
            words = message[len("unrecognized arguments: "):].split()
            options = [_option_name(w) for w in words if w.startswith("-") and w != "-"]
            if options:
                known = [o for a in self._actions for o in a.option_strings]
                close = difflib.get_close_matches(options[0], known, n=1)
                shown = options[0] if re.fullmatch(r"--?[a-z][a-z-]*", options[0]) else "(not shown)"
                raise UsageError(f"Unknown option {shown} for `{self.prog}`"
                                 + (f"; did you mean {close[0]}?" if close else "."), f"run `{self.prog} --help`")
            raise UsageError(
                f"`{self.prog}` got arguments it does not take (not shown, in case one is a secret).",
                "secrets are never passed as arguments: use the login form, the prompt, stdin or the env var; "
                f"see `{self.prog} --help`",
            )
        choice = re.match(r"argument (\S+): invalid choice: (['\"])(.*)\2 \(choose from (.*)\)", message)
        if choice:
            given, allowed = choice.group(3), re.findall(r"'?([\w-]+)'?", choice.group(4))
            close = difflib.get_close_matches(given, allowed, n=1)
            shown = f"'{given}'" if close else "(value not shown)"  # a near miss of a known word is no secret
            suggestion = f"; did you mean {close[0]}?" if close else "."
            if choice.group(1) != "COMMAND":
                suggestion = f"; it takes {', '.join(allowed)}" + (f" (did you mean {close[0]}?)" if close else ".")
            what = "command" if choice.group(1) == "COMMAND" else f"value for {choice.group(1)}"
            raise UsageError(f"Unknown {what} {shown}{suggestion}", f"run `{self.prog} --help`")
        raise UsageError(_withheld(message), f"run `{self.prog} --help`")


GIVEN: list[str] = []  # the words of this command line (main sets them): argparse quotes them in its messages


def _withheld(message: str) -> str:
    """argparse's own message, with every value the user gave taken out ("ignored explicit argument 'VALUE'",
    "invalid int value: 'VALUE'", "ambiguous option: --f=VALUE could match ...")."""
    import re

    from authsome.errors import secret_like

    message = re.sub(r"'[^']*'|\"[^\"]*\"", "(value not shown)", message)
    for word in GIVEN:
        if word.startswith("--"):
            parts = [word.partition("=")[2]]
        elif word.startswith("-"):
            parts = [word[2:]]
        else:
            parts = [word] if secret_like(word) or "'" in word or '"' in word else []
        for part in parts:
            if part and part in message:
                message = message.replace(part, "(value not shown)")
    return message[0].upper() + message[1:] + "."


def _option_name(word: str) -> str:
    """The option of a stray word, without a value stuck to it (`--key=VALUE`, `-kVALUE`)."""
    if word.startswith("--"):
        return word.split("=", 1)[0]
    return word[:2]


def build_parser() -> argparse.ArgumentParser:
    from authsome.cli import auth, ci, completion, creds, doctor, log, mcp, providers, run, store

    parser = Parser(
        prog="authsome",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"authsome {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="print tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for module in (providers, auth, creds, run, ci, store, mcp, log, doctor, completion):
        module.register(sub)
    for name, command in sub.choices.items():  # `authsome login -v ...` as well as `authsome -v login ...`
        command.add_argument("-v", "--verbose", action="store_true", help="print tracebacks for errors")
        command.set_defaults(command_name=name)  # `run` keeps its own `command` (the words after --)
    return parser


def _verbose(argv: list[str]) -> bool:
    """-v/--verbose anywhere before `--` (after it, the words belong to the command `run` starts)."""
    own = argv[: argv.index("--")] if "--" in argv else argv
    return any(a in ("-v", "--verbose") for a in own)


SECRET_SUFFIXES = ("_SECRET", "_API_KEY", "_KEY", "_TOKEN", "_PASSWORD")  # client secrets, keys `login` reads


def _protect_early() -> None:
    """Secrets in this process's environment: zero them in the block others read, and close the process,
    before anything else (a process left behind by an earlier step of a CI job may be watching). The
    interpreter's start-up, tens of milliseconds, comes before this and stays open: see the README."""
    import os

    names = {"AUTHSOME_MASTER_KEY", "AUTHSOME_BUNDLE", "AUTHSOME_STORE"} | {n for n in os.environ
                                                                          if n.endswith(SECRET_SUFFIXES)}
    if names & set(os.environ):
        from authsome import hardening

        hardening.protect(names)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    GIVEN[:] = argv
    verbose = _verbose(argv)
    _protect_early()
    try:
        from authsome.cli import common

        common.reset()
        _install_resolve()
        bundle_home = _install_bundle()
        parser = build_parser()
        args, extra = parser.parse_known_args(argv)
        if extra:  # reported by the command's own parser, which knows its option names
            commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
            (commands.get(getattr(args, "command_name", None)) or parser).error("unrecognized arguments: " + " ".join(extra))
        if not getattr(args, "func", None):
            parser.print_help()
            return ExitCode.USAGE if argv else ExitCode.OK
        try:
            result = args.func(args)
        finally:
            if bundle_home is not None and getattr(args, "command_name", None) in ("run", "get", "export"):
                _say_if_spent(bundle_home)
        return int(result or 0)
    except AuthsomeError as exc:
        return _report(exc, verbose, as_json=_wants_json(argv))
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except EOFError:
        print("error: No input: the prompt was closed (Ctrl-D, or standard input ended).", file=sys.stderr)
        print("hint: run the command again and answer the prompt, or pipe the value in", file=sys.stderr)
        return ExitCode.USAGE
    except OSError as exc:
        if verbose:
            raise
        # The file and the system's reason: names, never values.
        where = f" {exc.filename}" if exc.filename else ""
        print(f"error: Cannot use{where}: {exc.strerror or type(exc).__name__}.", file=sys.stderr)
        print("hint: check that AUTHSOME_HOME is a writable directory you own (`authsome doctor` checks it)",
              file=sys.stderr)
        return ExitCode.ERROR
    except BrokenPipeError:
        return ExitCode.OK
    except Exception as exc:  # the boundary: no traceback unless asked
        if verbose:
            raise
        # Only the type: an unexpected message could carry a value we must not show.
        print(f"error: internal error ({type(exc).__name__})", file=sys.stderr)
        print("hint: run again with --verbose for the traceback", file=sys.stderr)
        return ExitCode.ERROR


BUNDLE_ENV = "AUTHSOME_BUNDLE"  # authsome.bundle.ENV (a test checks they agree)


def _install_bundle():
    """In a CI job with AUTHSOME_BUNDLE set (and no AUTHSOME_HOME), the bundle's private home is the home."""
    import os

    if BUNDLE_ENV not in os.environ or os.environ.get("AUTHSOME_HOME"):
        return None  # the common case, decided without importing the bundle code (every command pays for it)
    from authsome import bundle

    if not os.environ[bundle.ENV].strip():
        raise bundle.BundleError(f"{bundle.ENV} is set but empty.",
                                 "a CI secret that did not arrive? copy it from `authsome ci export` again, or unset it")
    home = bundle.home_for(os.environ[bundle.ENV], os.environ.get("AUTHSOME_MASTER_KEY"))
    os.environ["AUTHSOME_HOME"] = str(home)
    from authsome.cli import common

    common.reset()
    return home


def _say_if_spent(home) -> None:
    import os

    from authsome import bundle

    spent, refused = bundle.outcome(home, os.environ[bundle.ENV], os.environ["AUTHSOME_MASTER_KEY"])
    for s, what in [(s, "rotated its refresh token in this job, so the bundle's copy is spent: a job that starts "
                        "from the bundle again will be refused (and the grant may be revoked)") for s in spent] + \
                   [(s, "was refused by the provider: the bundle's refresh token had already been used, by an "
                        "earlier job or by the workstation") for s in refused]:
        print(f"authsome: {s.provider}/{s.connection} {what}. On a workstation: authsome login {s.provider} "
              f"--connection {s.connection} --force, then authsome ci export {s.provider}={s.connection}, and update "
              "both secrets (or export --access-token-only for short jobs).", file=sys.stderr)


def _install_resolve() -> None:
    import os

    if os.environ.get("AUTHSOME_RESOLVE"):
        from authsome import resolve

        resolve.install(resolve.from_env())


def _wants_json(argv: Sequence[str]) -> bool:
    return "--json" in argv


def _report(exc: AuthsomeError, verbose: bool, *, as_json: bool) -> int:
    if verbose:
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    if as_json:
        import json

        print(json.dumps(exc.to_dict()), file=sys.stderr)
    else:
        print(f"error: {exc.message}", file=sys.stderr)
        print(f"hint: {exc.hint or _fallback_hint(exc)}", file=sys.stderr)
    return int(exc.exit_code)


def _fallback_hint(exc: AuthsomeError) -> str:
    """Every error ends with what to do next, even where the raiser had nothing specific to add."""
    return {
        ExitCode.USAGE: "see `authsome COMMAND --help`",
        ExitCode.PROVIDER: "run `authsome list` to see the providers and any broken definition files",
        ExitCode.CREDENTIAL: "run `authsome whoami` to see the connections, `authsome login PROVIDER` to add one",
        ExitCode.VAULT: "run `authsome doctor` for the vault and its key",
        ExitCode.LOGIN: "run the login again; `authsome login --help` lists its options",
        ExitCode.PROXY: "run `authsome doctor`, then try again with --verbose",
    }.get(exc.exit_code, "run again with --verbose for details")


def entry() -> None:
    """Console-script entry point.

    Leaves with os._exit once everything is flushed: after `authsome run`,
    interpreter teardown (mitmproxy's modules, the proxy thread's objects)
    costs 0.1-0.25 s and does nothing useful. Every file the command wrote is
    closed by then; the run's temporary files were removed in `finally`.
    """
    import os

    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        pass
    os._exit(code)
