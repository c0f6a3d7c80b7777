"""Run a command on a real pseudo-terminal, as a person at a shell would."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import time


class Terminal:
    def __init__(self, argv: list[str], env: dict[str, str]):
        self.primary, secondary = pty.openpty()
        self.proc = subprocess.Popen(argv, stdin=secondary, stdout=secondary, stderr=secondary,
                                     env={**os.environ, **env}, close_fds=True, start_new_session=True)
        os.close(secondary)
        self.output = b""

    def read_until(self, text: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while text.encode() not in self.output:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{text!r} not seen; output:\n{self.output.decode(errors='replace')}")
            ready, _, _ = select.select([self.primary], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.primary, 4096)
                except OSError:
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"{text!r} not seen before EOF:\n{self.output.decode(errors='replace')}")
                self.output += chunk
        return self.output.decode(errors="replace")

    def type(self, text: str) -> None:
        os.write(self.primary, text.encode())

    def wait(self, timeout: float = 30.0) -> int:
        try:
            code = self.proc.wait(timeout=timeout)
        finally:
            self._drain()
        return code

    def _drain(self) -> None:
        while True:
            ready, _, _ = select.select([self.primary], [], [], 0.2)
            if not ready:
                return
            try:
                chunk = os.read(self.primary, 4096)
            except OSError:
                return
            if not chunk:
                return
            self.output += chunk

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.primary)
