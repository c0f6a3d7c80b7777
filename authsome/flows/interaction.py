"""What a login flow needs from whoever runs it, and the options it runs with.

Flows never touch the terminal: the CLI hands them an `Interaction` that
opens browsers, prints URLs, prompts, and reads pasted redirects. Tests hand
them their own.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

from authsome.envnames import env_prefix
from authsome.flows.form_server import DEFAULT_PORT

DEFAULT_TIMEOUT = 300.0


@dataclass(frozen=True)
class LoginOptions:
    connection: str = "default"
    scopes: tuple[str, ...] | None = None
    no_browser: bool = False
    base_url: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    port: int = DEFAULT_PORT
    reset_client: bool = False  # ask for the OAuth client again instead of using the stored one


class Interaction(Protocol):
    def open_browser(self, url: str) -> bool:
        """Try to open `url` in a browser; False when none could be opened."""

    def show_url(self, url: str, purpose: str) -> None:
        """Show a URL the person must open themselves (on a line of its own)."""

    def can_prompt(self) -> bool:
        """True when a person at a terminal can answer prompts."""

    def prompt(self, label: str, *, secret: bool, hint: str | None = None) -> str:
        """Ask for one value; secrets without echo."""

    def pasted_lines(self) -> Iterator[str] | None:
        """Lines pasted into the terminal (a redirect URL over SSH), or None."""

    def notice(self, text: str) -> None:
        """A progress or warning line."""

    def device_code(self, user_code: str, verification_uri: str, complete_uri: str | None, expires_in: float) -> None:
        """Show the device-code instructions."""

    def waiting(self, remaining: float) -> None:
        """Called while polling, with the seconds left; render a live indicator."""

    def done_waiting(self) -> None:
        """Polling ended (either way)."""


def client_from_env(provider_name: str, env: Mapping[str, str] | None = None) -> tuple[str, str | None] | None:
    """(client_id, client_secret) from `<NAME>_CLIENT_ID` / `<NAME>_CLIENT_SECRET`, for CI."""
    env = os.environ if env is None else env
    prefix = env_prefix(provider_name)
    client_id = env.get(f"{prefix}_CLIENT_ID", "").strip()
    if not client_id:
        return None
    return client_id, (env.get(f"{prefix}_CLIENT_SECRET", "").strip() or None)
