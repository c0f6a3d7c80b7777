"""Helpers shared by the command modules: the registry, the vault, common flags."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported on first use: `authsome --help` needs neither
    from authsome.providers import Registry
    from authsome.vault import Vault


@functools.cache
def registry() -> Registry:
    from authsome import paths
    from authsome.providers import Registry

    paths.ensure_home()
    return Registry()


@functools.cache
def vault() -> Vault:
    from authsome.vault import Vault

    return Vault.open()


def reset() -> None:
    """Forget cached handles (tests change AUTHSOME_HOME between in-process runs)."""
    registry.cache_clear()
    vault.cache_clear()


def add_json(parser, help: str = "print machine-readable JSON") -> None:
    parser.add_argument("--json", action="store_true", help=help)


def add_connection(parser) -> None:
    parser.add_argument(
        "--connection",
        "-c",
        metavar="NAME",
        default=None,
        help="which account of the provider (default: the provider's default connection, "
             "named 'default' unless set with `authsome default`)",
    )


def connection_of(args, provider: str) -> str:
    """The connection the command acts on: --connection, else the provider's default."""
    from authsome.connections import connection_name

    return connection_name(vault(), provider, args.connection)


def seconds(text: str) -> float:
    """An argparse type: a finite, positive number of seconds (not nan, not inf), at most a day."""
    import argparse
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of seconds") from None
    if not math.isfinite(value) or not 0 < value <= 86400:
        raise argparse.ArgumentTypeError(f"'{text}' must be a number of seconds between 0 and 86400")
    return value


def in_ci() -> bool:
    """CI=true (or 1): nobody will answer, so nothing waits for an answer."""
    import os

    return os.environ.get("CI", "").lower() in ("true", "1")


def can_ask() -> bool:
    """A person can answer a question here: a terminal on both ends, and not CI (CI=true never waits)."""
    import sys

    return not in_ci() and sys.stdin.isatty() and sys.stderr.isatty()


def ask_yes(question: str) -> bool:
    """Ask `question` on the terminal ([y/N] is added); only y or yes is a yes."""
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


def inside_run() -> bool:
    """Under `authsome run` (or `attach`), which sets AUTHSOME_RUN=1: a speed bump for agents, not a boundary."""
    import os

    return os.environ.get("AUTHSOME_RUN") == "1"


def refuse_inside_run(what: str, why: str | None = None, hint: str = "run it in your own shell") -> None:
    """`what` is refused inside `authsome run` (`why`: the reason, after a colon)."""
    if inside_run():
        from authsome.errors import UsageError

        raise UsageError(f"{what} is refused inside `authsome run`{f': {why}' if why else ''}.", hint)
