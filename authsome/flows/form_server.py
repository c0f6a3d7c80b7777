"""The local login page on 127.0.0.1:7998: the credentials form and the OAuth callback.

One `LoginPage` serves one login. It refuses requests whose Host is not its
own (DNS rebinding), checks a CSRF token and the Origin on every POST,
escapes everything it reflects, ignores stray requests (favicon, probes),
and shuts itself down once the login has an outcome.
"""

from __future__ import annotations

import errno
import hmac
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from authsome.errors import AuthsomeError, LoginError, LoginTimeout
from authsome.flows import pages

DEFAULT_PORT = 7998
CALLBACK_PATH = "/auth/callback/oauth"
MAX_BODY = 64 * 1024


def redirect_uri(port: int = DEFAULT_PORT) -> str:
    return f"http://127.0.0.1:{port}{CALLBACK_PATH}"


@dataclass(frozen=True)
class FormField:
    name: str
    label: str
    secret: bool = False
    required: bool = True
    hint: str | None = None


class FormRejected(Exception):
    """A submitted value is not acceptable: show the form again with this message."""


@dataclass
class Outcome:
    value: Any = None
    error: AuthsomeError | None = None


# on_submit(values) -> URL to continue to (the provider), or None when the form was the whole login.
SubmitHandler = Callable[[dict[str, str]], str | None]
# on_callback(query) -> success message; raises AuthsomeError for a failed login.
CallbackHandler = Callable[[dict[str, str]], str]


class LoginPage:
    def __init__(
        self,
        *,
        port: int = DEFAULT_PORT,
        title: str,
        intro: str = "",
        fields: list[FormField] | None = None,
        on_submit: SubmitHandler | None = None,
        on_callback: CallbackHandler | None = None,
        start_url: str | None = None,
        show_redirect_uri: bool = False,
        form_targets: tuple[str, ...] = (),
    ):
        self.port = port
        self.title = title
        self.intro = intro
        self.fields = fields or []
        self.on_submit = on_submit
        self.on_callback = on_callback
        self.start_url = start_url  # where GET / sends the browser once no form is needed
        self.show_redirect_uri = show_redirect_uri
        self.form_targets = form_targets  # origins the form may redirect to (CSP form-action)
        self.csrf = secrets.token_urlsafe(32)
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._outcome = Outcome()
        self._server: ThreadingHTTPServer | None = None

    # -- lifecycle -------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def redirect_uri(self) -> str:
        return redirect_uri(self.port)

    def start(self) -> LoginPage:
        page = self

        class Handler(_Handler):
            login = page

        try:
            self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise LoginError(
                    f"Port {self.port} on 127.0.0.1 is already in use, so the login page cannot start.",
                    "finish or stop the other login (or the program using that port), then retry",
                ) from None
            raise
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, name="authsome-login-page", daemon=True).start()
        return self

    def finish(self, value: Any = None, error: AuthsomeError | None = None) -> bool:
        """Record the outcome once; later calls are ignored. Returns True for the first."""
        with self._lock:
            if self._done.is_set():
                return False
            self._outcome = Outcome(value, error)
            self._done.set()
            return True

    def wait(self, timeout: float) -> Any:
        if not self._done.wait(timeout):
            raise LoginTimeout(
                f"Timed out after {int(timeout)} s waiting for the login to finish in the browser.",
                "run the login again (use --timeout SECONDS for more time)",
            )
        if self._outcome.error is not None:
            raise self._outcome.error
        return self._outcome.value

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def close(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            server.shutdown()
            server.server_close()

    def __enter__(self) -> LoginPage:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the pasted redirect (SSH, --no-browser) ----------------------------

    def complete_with_redirect(self, pasted: str) -> bool:
        """Handle a redirect URL pasted into the terminal as if the browser had delivered it."""
        parts = urlsplit(pasted.strip())
        if parts.path != CALLBACK_PATH or not parts.query or self.on_callback is None:
            return False
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        try:
            self.finish(self.on_callback(query))
        except AuthsomeError as exc:
            self.finish(error=exc)
        return True


class _Handler(BaseHTTPRequestHandler):
    login: LoginPage
    server_version = "authsome"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # never log request lines: they hold codes
        pass

    # -- plumbing ----------------------------------------------------------------

    def _send(self, status: int, body: bytes = b"", *, nonce: str = "", location: str | None = None) -> None:
        """Send a complete response (flushed before returning)."""
        self.send_response(status)
        targets = " ".join(self.login.form_targets)
        self.send_header(
            "Content-Security-Policy",
            f"default-src 'none'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; "
            f"form-action 'self' {targets}; frame-ancestors 'none'; base-uri 'none'",
        )
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("X-Content-Type-Options", "nosniff")
        # "same-origin", not "no-referrer": with no-referrer browsers send `Origin: null` on
        # our own form posts, and the Origin check could not tell them from a sandboxed attacker.
        self.send_header("Referrer-Policy", "same-origin")
        self.send_header("Cache-Control", "no-store")
        if location:
            self.send_header("Location", location)
        if body:
            self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def _result(self, status: int, ok: bool, title: str, message: str, detail: str | None = None) -> None:
        nonce = secrets.token_urlsafe(12)
        self._send(status, pages.result_page(ok=ok, title=title, message=message, detail=detail, nonce=nonce), nonce=nonce)

    def _host_ok(self) -> bool:
        host = self.headers.get("Host", "")
        allowed = {f"127.0.0.1:{self.login.port}", f"localhost:{self.login.port}"}
        if host not in allowed:
            self._result(421, False, "Wrong address", "This page only answers at its own address.",
                         f"Open http://127.0.0.1:{self.login.port}/ instead.")
            return False
        return True

    def _form(self, status: int = 200, error: str | None = None, values: dict[str, str] | None = None) -> None:
        nonce = secrets.token_urlsafe(12)
        body = pages.form_page(
            title=self.login.title, intro=self.login.intro, fields=self.login.fields, csrf=self.login.csrf,
            nonce=nonce, redirect_uri=self.login.redirect_uri if self.login.show_redirect_uri else None,
            error=error, values=values,
        )
        self._send(status, body, nonce=nonce)

    def _closing(self) -> None:
        # Let this response go out, then stop serving: the login is over.
        threading.Thread(target=self.login.close, daemon=True).start()

    # -- routes ------------------------------------------------------------------

    def do_HEAD(self) -> None:
        # A probe: never let it run the callback (that exchanges the code).
        if not self._host_ok():
            return
        self._result(200 if urlsplit(self.path).path == "/" else 404, True, self.login.title, "")

    def do_GET(self) -> None:
        if not self._host_ok():
            return
        path = urlsplit(self.path).path
        if path == "/":
            if self.login.done:
                self._result(410, False, "Login already finished", "This login page has already been used.")
            elif self.login.fields and self.login.on_submit:
                self._form()
            elif self.login.start_url:
                self._send(302, location=self.login.start_url)
            else:
                self._result(404, False, "Nothing here", "This login is waiting for the provider's redirect.")
        elif path == CALLBACK_PATH and self.login.on_callback is not None:
            self._callback()
        else:
            self._result(404, False, "Not found", "There is nothing at this address.")

    def _callback(self) -> None:
        if self.login.done:
            self._result(410, False, "Login already finished", "This login has already completed; nothing was changed.")
            return
        query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
        if not query:
            self._result(400, False, "Nothing to do", "This address expects the provider's redirect.")
            return
        # The page is sent before the outcome is recorded: the CLI may exit as soon
        # as it learns the outcome, and the browser must still get its answer.
        try:
            assert self.login.on_callback is not None
            message = self.login.on_callback(query)
        except AuthsomeError as exc:
            self._result(400, False, "Login failed", exc.message, exc.hint)
            self.login.finish(error=exc)
        else:
            self._result(200, True, "Logged in", message)
            self.login.finish(message)
        self._closing()

    def do_POST(self) -> None:
        if not self._host_ok():
            return
        if urlsplit(self.path).path != "/" or not (self.login.fields and self.login.on_submit):
            self._result(404, False, "Not found", "There is nothing at this address.")
            return
        if self.login.done:
            self._result(410, False, "Login already finished", "This login page has already been used.")
            return
        origin = self.headers.get("Origin")
        if origin and origin not in (f"http://127.0.0.1:{self.login.port}", f"http://localhost:{self.login.port}"):
            self._result(403, False, "Refused", "The form was submitted from another site.")
            return
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        ctype = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if not 0 <= length <= MAX_BODY or ctype != "application/x-www-form-urlencoded":
            self._result(400, False, "Bad request", "The form data could not be read.")
            return
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode("utf-8", "replace"), keep_blank_values=True).items()}
        if not hmac.compare_digest(form.pop("csrf", "").encode(), self.login.csrf.encode()):
            self._result(403, False, "Refused", "The form's security token is missing or wrong.",
                         f"Reload http://127.0.0.1:{self.login.port}/ and submit again.")
            return
        values = {f.name: form.get(f.name, "").strip() for f in self.login.fields}
        missing = [f.label for f in self.login.fields if f.required and not values[f.name]]
        if missing:
            self._form(400, f"Please fill in: {', '.join(missing)}.", values)
            return
        try:
            assert self.login.on_submit is not None
            next_url = self.login.on_submit(values)
        except FormRejected as exc:
            self._form(400, str(exc), values)
            return
        except AuthsomeError as exc:
            self._result(400, False, "Login failed", exc.message, exc.hint)
            self.login.finish(error=exc)
            self._closing()
            return
        if next_url:
            self._send(303, location=next_url)
        else:
            self._result(200, True, "Saved", "The credentials were stored in your authsome vault.")
            self.login.finish(values)
            self._closing()

