"""A terminal for tests: a tmux server of our own, driven with send-keys and read with capture-pane."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
from pathlib import Path


class Terminal:
    """One tmux session running `argv` (with `env` added) on a socket no other test shares.

    Every capture is kept in `captures`, so a test can check that none of
    them ever showed a value.
    """

    def __init__(self, workdir: Path, argv: list[str], env: dict[str, str], *, width: int = 200, height: int = 50):
        if shutil.which("tmux") is None:
            raise RuntimeError("tmux is not installed (scripts/setup installs it)")
        self.socket = f"authsome-test-{os.getpid()}-{time.monotonic_ns()}"
        self.status_file = workdir / "status"
        script = workdir / "terminal.sh"
        exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in {**env, "LANG": "C.UTF-8", "TERM": "tmux-256color"}.items())
        # As an interactive shell would, the script outlives a Ctrl-C meant for its command.
        script.write_text(f"trap : INT\n{exports}{shlex.join(argv)} 2>{shlex.quote(str(workdir / 'stderr'))}\n"
                          f"echo $? > {shlex.quote(str(self.status_file))}\nsleep 600\n")
        self.stderr_file = workdir / "stderr"
        self.captures: list[str] = []
        self._tmux("new-session", "-d", "-x", str(width), "-y", str(height), "sh", str(script))
        self._tmux("set-option", "-s", "escape-time", "0")  # else Escape and the next key arrive as one Alt key

    def _tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], check=True, capture_output=True, text=True,
                              timeout=10).stdout

    def keys(self, *keys: str, literal: bool = False) -> None:
        self._tmux("send-keys", *(["-l"] if literal else []), *keys)

    def resize(self, width: int, height: int) -> None:
        self._tmux("resize-window", "-x", str(width), "-y", str(height))
        time.sleep(0.3)

    def command(self, text: str) -> None:
        """Type a mitmproxy console command (`:` prompt) and run it."""
        self.keys(":")
        self.keys(text, literal=True)
        self.keys("Enter")

    def screen(self) -> str:
        text = self._tmux("capture-pane", "-p", "-J")
        self.captures.append(text)
        return text

    def wait_for(self, text: str, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if text in screen:
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} never showed; the screen:\n{screen}\nstderr: {self.stderr()}")
            time.sleep(0.1)

    def status(self, timeout: float = 20) -> int:
        """The exit status of the command, once it ended."""
        deadline = time.monotonic() + timeout
        while not self.status_file.exists() or not self.status_file.read_text().strip():
            if time.monotonic() > deadline:
                raise AssertionError(f"the command did not end; the screen:\n{self.screen()}")
            time.sleep(0.1)
        return int(self.status_file.read_text())

    def stderr(self) -> str:
        return self.stderr_file.read_text() if self.stderr_file.exists() else ""

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=10)
