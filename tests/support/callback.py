"""A tiny real HTTP server standing in for a client's loopback redirect URI.

Playwright's route() does not see requests that come from an HTTP redirect, so
an authorization server's 303 to ``http://127.0.0.1:<port>/...`` must reach a
real listener. authsome's own login command runs one; harness tests use this.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["CallbackServer"]


class CallbackServer:
    """Records every request URL to ``http://127.0.0.1:<free port><path>``.

    with CallbackServer("/auth/callback/oauth") as cb:
        ...  # register cb.redirect_uri with the client, drive the browser
        url = cb.wait()  # full callback URL including the query
    """

    def __init__(self, path: str = "/auth/callback/oauth", port: int = 0) -> None:
        self.path = path
        self.urls: list[str] = []
        self._cond = threading.Condition()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server naming)
                with outer._cond:
                    outer.urls.append(f"http://127.0.0.1:{outer.port}{self.path}")
                    outer._cond.notify_all()
                body = b"<!doctype html><p>callback received, you can close this window</p>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.redirect_uri = f"http://127.0.0.1:{self.port}{path}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def wait(self, timeout: float = 15.0, after: int = 0) -> str:
        """Return the first callback URL recorded after ``after`` earlier ones."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.urls) <= after:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no request to {self.redirect_uri} within {timeout}s")
                self._cond.wait(left)
            return self.urls[after]

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> CallbackServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
