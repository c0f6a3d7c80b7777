"""Drive oidc-provider's login/consent/device pages with a real headless Chromium.

TLS trust: Chromium is told to accept exactly the given leaf certificates with
``--ignore-certificate-errors-spki-list=<base64 sha256 of the SPKI>`` (pass
``trust=[leaf, ...]``). Any other invalid certificate still fails, unlike
``ignore_https_errors=True`` (still available as an escape hatch).

Network: the browser stays on this machine. Host names resolve only through
``host_map`` (e.g. ``{"api.x.com": "127.0.0.1"}``) or to localhost; everything
else fails DNS inside Chromium (``--host-resolver-rules``), which also covers
redirects. A Playwright route additionally aborts subresource requests to
non-loopback IP literals. oidc-provider's built-in pages @import Google Fonts,
so without this they would try to reach the internet.

Redirects to a client's loopback redirect URI need a real listener there
(Playwright's route() never sees requests that result from an HTTP redirect):
see tests/support/callback.py.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

from playwright.sync_api import BrowserContext, Page, Route, sync_playwright

from .tls import Leaf

__all__ = [
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "launch_browser",
    "oidc_approve_device",
    "oidc_deny_consent",
    "oidc_login_and_consent",
]

CHROMIUM = "/usr/bin/chromium"  # Debian's chromium; Playwright cannot download its own here
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STEP_TIMEOUT_MS = 15_000


def _is_local(host: str, host_map: dict[str, str]) -> bool:
    if host == "localhost" or host in host_map:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@contextmanager
def launch_browser(
    trust: Iterable[Leaf] = (),
    *,
    host_map: dict[str, str] | None = None,
    ignore_https_errors: bool = False,
    executable_path: str = CHROMIUM,
) -> Iterator[BrowserContext]:
    """Yield a fresh BrowserContext (no cookies) of a headless Chromium.

    ``trust``: leaf certs whose public keys Chromium accepts (SPKI pinning).
    ``host_map``: host name -> loopback IP the browser may reach it at.
    """
    args = list(CHROMIUM_ARGS)
    spkis = [leaf.spki_sha256 for leaf in trust]
    if spkis:
        args.append("--ignore-certificate-errors-spki-list=" + ",".join(spkis))
    host_map = dict(host_map or {})
    # First matching rule wins; IP literals go through the rules too, hence EXCLUDE.
    rules = [f"MAP {name} {ip}" for name, ip in host_map.items()]
    rules += ["MAP * ~NOTFOUND", "EXCLUDE localhost", "EXCLUDE 127.0.0.1", "EXCLUDE [::1]"]
    args.append("--host-resolver-rules=" + ", ".join(rules))

    def block_outside(route: Route) -> None:
        url = route.request.url
        host = urlsplit(url).hostname or ""
        if url.startswith(("data:", "blob:", "about:")) or _is_local(host, host_map):
            route.fallback()
        else:
            route.abort("blockedbyclient")

    with _playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable_path, args=args, headless=True)
        try:
            context = browser.new_context(ignore_https_errors=ignore_https_errors)
            context.set_default_timeout(STEP_TIMEOUT_MS)
            context.route("**/*", block_outside)
            yield context
            context.close()
        finally:
            browser.close()


_running = None  # the one Playwright driver of this process (its sync API cannot nest)


@contextmanager
def _playwright():
    """Share one Playwright driver: several browsers may be open at once in a test session."""
    global _running
    if _running is not None:
        yield _running
        return
    with sync_playwright() as pw:
        _running = pw
        try:
            yield pw
        finally:
            _running = None


def _login_if_asked(page: Page, username: str, password: str) -> None:
    if page.locator('input[name="login"]').count():
        page.fill('input[name="login"]', username)
        page.fill('input[name="password"]', password)
        with page.expect_navigation():
            page.click('button[type="submit"]')


def _on_interaction_page(page: Page) -> bool:
    return "/interaction/" in urlsplit(page.url).path


def oidc_login_and_consent(page: Page, username: str, password: str = "any-password") -> None:
    """Complete oidc-provider's dev login (any username/password) and consent pages.

    Call after ``page.goto(authorization_url)``. Returns once the browser has left
    the interaction pages, i.e. was redirected to the client's redirect URI (or,
    in the device flow, to the success page). Consent is skipped by the provider
    when the grant already covers the request; login when a session exists.
    """
    page.wait_for_load_state()
    for _ in range(3):  # login, then consent; at most one extra round for safety
        if not _on_interaction_page(page):
            return
        if page.locator('input[name="login"]').count():
            _login_if_asked(page, username, password)
        elif page.locator('input[name="prompt"][value="consent"]').count():
            with page.expect_navigation():
                page.click('button[type="submit"]')
        else:
            raise AssertionError(f"unexpected interaction page {page.url}:\n{page.content()[:2000]}")
    if _on_interaction_page(page):
        raise AssertionError(f"still on interaction page {page.url}")


def oidc_deny_consent(page: Page, username: str | None = None, password: str = "any-password") -> None:
    """Press "[ Cancel ]" on the login or consent page; the client gets error=access_denied.

    With ``username`` the login step is completed first, so the abort happens on
    the consent page.
    """
    page.wait_for_load_state()
    if username is not None:
        _login_if_asked(page, username, password)
    if not _on_interaction_page(page):
        raise AssertionError(f"no interaction page to cancel at {page.url}")
    with page.expect_navigation():
        page.click('a[href$="/abort"]')


def oidc_approve_device(
    page: Page, verification_uri: str, user_code: str, username: str = "device-user",
    password: str = "any-password",
) -> None:
    """RFC 8628 user side: enter the code, confirm, log in, consent, see success.

    ``verification_uri_complete`` works too: the code form then comes pre-filled
    and is submitted as is.
    """
    page.goto(verification_uri)
    code_input = page.locator('form[id="op.deviceInputForm"] input[name="user_code"]')
    if code_input.count():
        if not code_input.input_value():
            code_input.fill(user_code)
        with page.expect_navigation():
            page.click('button[form="op.deviceInputForm"]')
    # Confirmation page shows the code and a Continue button.
    confirm = page.locator('button[autofocus][form="op.deviceConfirmForm"]')
    if not confirm.count():
        raise AssertionError(f"no device confirmation page at {page.url}:\n{page.content()[:2000]}")
    with page.expect_navigation():
        confirm.click()
    oidc_login_and_consent(page, username, password)
    page.wait_for_load_state()
    if "Sign-in Success" not in page.content():
        raise AssertionError(f"device flow did not succeed at {page.url}:\n{page.content()[:2000]}")
