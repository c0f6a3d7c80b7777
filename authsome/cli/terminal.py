"""The terminal side of a login: browser, printed URLs, prompts, the waiting line."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

from authsome import render


def _browser_available() -> bool:
    if os.environ.get("BROWSER"):
        return True
    if sys.platform == "darwin" or os.name == "nt":
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


class TerminalInteraction:
    """Implements `authsome.flows.interaction.Interaction` for the CLI."""

    def __init__(self) -> None:
        self._live = sys.stderr.isatty()
        self._waiting_shown = False
        self._last_report = None

    def open_browser(self, url: str) -> bool:
        if not _browser_available():
            return False
        import webbrowser

        try:
            return bool(webbrowser.open(url, new=1))
        except webbrowser.Error:
            return False

    def show_url(self, url: str, purpose: str) -> None:
        render.note(f"Open this URL in a browser to {purpose}:")
        # The URL alone on its line, so it can be copied (or read by a script).
        render.note(url)
        render.note("Waiting for the browser. On another machine? Paste the URL you are redirected to here.")

    def can_prompt(self) -> bool:
        return sys.stdin.isatty()

    def prompt(self, label: str, *, secret: bool, hint: str | None = None) -> str:
        if hint:
            render.note(hint)
        if secret:
            return render.hidden_prompt(label)
        return input(f"{label}: ")

    def pasted_lines(self) -> Iterator[str] | None:
        stdin = sys.stdin
        if stdin is None or stdin.closed:
            return None
        return iter(stdin.readline, "")

    def notice(self, text: str) -> None:
        self._end_line()
        render.note(text)

    def device_code(self, user_code: str, verification_uri: str, complete_uri: str | None, expires_in: float) -> None:
        render.note(f"To log in, open {verification_uri} and enter the code:")
        render.note("")
        render.note(f"    {user_code}")
        render.note("")
        if complete_uri:
            render.note("Or open this URL, which carries the code:")
            render.note(complete_uri)
        render.note(f"The code expires in {int(expires_in // 60)} min {int(expires_in % 60)} s. Ctrl-C cancels.")

    def waiting(self, remaining: float) -> None:
        text = f"waiting for approval... {int(remaining) // 60:d}:{int(remaining) % 60:02d} left"
        if self._live:
            sys.stderr.write("\r" + text + "\x1b[K")
            sys.stderr.flush()
            self._waiting_shown = True
        elif self._last_report is None or self._last_report - remaining >= 30:
            self._last_report = remaining
            render.note(text)

    def done_waiting(self) -> None:
        self._end_line()

    def _end_line(self) -> None:
        if self._waiting_shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
            self._waiting_shown = False
