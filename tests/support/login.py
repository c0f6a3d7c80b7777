"""`authsome login` as a real subprocess whose output is read line by line while it waits."""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

URL_LINE = re.compile(r"^(https?://\S+)$")


@dataclass
class Finished:
    code: int
    out: str
    err: str


class LoginProcess:
    def __init__(self, args: list[str], env: dict[str, str], *, cwd: str | None = None):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "authsome", "login", *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, **env}, cwd=cwd,
        )
        self.err_lines: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._pump_thread = threading.Thread(target=self._pump, daemon=True)
        self._pump_thread.start()

    def _pump(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.err_lines.append(line)
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def wait_for(self, pattern: str, timeout: float = 30.0) -> re.Match:
        """The first stderr line (from now on) matching `pattern`."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no line matching {pattern!r}; stderr so far:\n{''.join(self.err_lines)}")
            try:
                line = self._lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"login exited before {pattern!r}; stderr:\n{''.join(self.err_lines)}")
            m = regex.search(line)
            if m:
                return m

    def url(self, timeout: float = 30.0) -> str:
        return self.wait_for(URL_LINE.pattern, timeout).group(1)

    def paste(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def finish(self, timeout: float = 60.0) -> Finished:
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        assert self.proc.stdout is not None
        out = self.proc.stdout.read()
        self._pump_thread.join(5)
        return Finished(self.proc.returncode, out, "".join(self.err_lines))

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
