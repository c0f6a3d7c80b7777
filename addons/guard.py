"""Guard: only the child uses the proxy, and strangers cannot wear it out.

Runs after mitmproxy's stock `proxyauth` addon (which answers 407) and
tightens it:

- the proxy password is compared in constant time (stock proxyauth uses
  `==`, which answers sooner the earlier a guess differs; any local process
  may probe the port);
- a connection that has not authenticated within `authsome_auth_timeout`
  seconds is closed, so idle connections from other local processes cannot
  pile up until the proxy runs out of file descriptors; the soft descriptor
  limit is raised to the hard one as well;
- in a stock `mitmweb -s`, the options page hides the proxy credentials
  (as `authsome run --ui web` does).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import resource
import sys
import typing
import weakref

from mitmproxy import connection, ctx, exceptions, http

from authsome.addons._runtime import log


def raise_descriptor_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; return the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            return target
        except (ValueError, OSError):
            pass
    return soft


def _a_ui(master) -> bool:
    for module, name in (("mitmproxy.tools.web.master", "WebMaster"), ("mitmproxy.tools.console.master", "ConsoleMaster")):
        if (loaded := sys.modules.get(module)) is not None and isinstance(master, getattr(loaded, name)):
            return True
    return False


class Guard:
    def __init__(self) -> None:
        self.authenticated: weakref.WeakSet[connection.Client] = weakref.WeakSet()

    def load(self, loader) -> None:
        loader.add_option("authsome_auth_timeout", int, 10,
                          "close client connections that have not authenticated to the proxy within this many seconds")
        raise_descriptor_limit()
        if _a_ui(getattr(ctx, "master", None)):  # a stock mitmweb or mitmproxy loaded us
            from authsome.ui import hide_secret_options

            hide_secret_options()

    def configure(self, updated) -> None:
        auth = ctx.master.addons.get("proxyauth")
        if "proxyauth" not in updated or auth is None:
            return  # authsome's lean master checks with ProxyPassword below instead
        from mitmproxy.addons import proxyauth

        if not isinstance(getattr(auth, "validator", None), proxyauth.SingleUser):
            return
        user, password = auth.validator.username.encode(), auth.validator.password.encode()

        def validator(username: str, password_given: str) -> bool:
            same_user = hmac.compare_digest(username.encode(), user)
            return hmac.compare_digest(password_given.encode(), password) and same_user

        auth.validator = validator

    def client_connected(self, client: connection.Client) -> None:
        if ctx.options.proxyauth and ctx.options.authsome_auth_timeout > 0:
            asyncio.get_running_loop().call_later(ctx.options.authsome_auth_timeout, self._expire, client)

    def _expire(self, client: connection.Client) -> None:
        if client in self.authenticated or client.state is connection.ConnectionState.CLOSED:
            return
        handler = ctx.master.addons.get("proxyserver").connections.get(client.id)
        if handler is not None:
            log.info("closing a connection from %s that never authenticated", client.peername)
            asyncio.ensure_future(handler.on_timeout())

    def _note(self, flow: http.HTTPFlow) -> None:
        # Set by proxyauth once the credentials checked out: the password itself,
        # which then stays out of flows that are saved, exported or shown.
        if flow.metadata.pop("proxyauth", None):
            self.authenticated.add(flow.client_conn)

    http_connect = requestheaders = _note


class ProxyPassword:
    """407 unless the request carries this run's proxy credentials, compared in constant time.

    What stock `proxyauth` does for a single `user:password` (its option,
    its hooks), for authsome's lean master: without ldap3 (~45 ms at every
    start), and one addon fewer on every request. The credentials are
    removed from the request and never put into the flow. A stock
    `mitmproxy -s addons/guard.py` keeps stock `proxyauth`, tightened by Guard.
    """

    def __init__(self) -> None:
        self.expected: tuple[bytes, bytes] | None = None
        self.authenticated: weakref.WeakSet[connection.Client] = weakref.WeakSet()

    def load(self, loader) -> None:
        if "proxyauth" not in loader.master.options:
            loader.add_option("proxyauth", typing.Optional[str], None, "require these proxy credentials: user:password")

    def configure(self, updated) -> None:
        if "proxyauth" in updated:
            value = ctx.options.proxyauth
            if value and ":" not in value:
                raise exceptions.OptionsError("proxyauth must be user:password.")
            user, _, password = (value or "").partition(":")
            self.expected = (user.encode(), password.encode()) if value else None

    def http_connect(self, flow: http.HTTPFlow) -> None:
        if self.expected is not None and self._check(flow):
            self.authenticated.add(flow.client_conn)

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if self.expected is None or flow.client_conn in self.authenticated or flow.is_replay:
            return
        self._check(flow)  # a request sent to the proxy itself (absolute-form)

    def _check(self, flow: http.HTTPFlow) -> bool:
        given = flow.request.headers.get("Proxy-Authorization", "")
        scheme, _, encoded = given.partition(" ")
        try:
            user, _, password = base64.b64decode(encoded.strip(), validate=True).partition(b":")
        except (binascii.Error, ValueError):
            user = password = b""
        ok_user = hmac.compare_digest(user, self.expected[0])
        if hmac.compare_digest(password, self.expected[1]) & ok_user and scheme.lower() == "basic":
            del flow.request.headers["Proxy-Authorization"]
            flow.metadata["proxyauth"] = True  # for Guard (the idle timeout); never the credentials
            return True
        flow.response = http.Response.make(
            407, b"<html><head><title>407 Proxy Authentication Required</title></head>"
                 b"<body><h1>407 Proxy Authentication Required</h1></body></html>",
            {"Proxy-Authenticate": 'Basic realm="authsome"', "Content-Type": "text/html"})
        return False


addons = [Guard()]
