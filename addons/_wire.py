"""The credential exists only in the bytes written to the upstream connection.

mitmproxy serializes a request's head in two places: the HTTP/1 client layer
(`Http1Client.send`, on `RequestHeaders`) and the HTTP/2 and HTTP/3 client
layers (`format_h2_request_headers`). Both read `event.request`, which is the
very object every viewer, dump, filter expression, export and re-send reads.
For a request registered with `on_send`, both serialize a copy instead: the
registered function gets the server connection the bytes go to and the
request as it is at that moment (after any hook, edit or UI intercept), and
returns what to send. No flow object ever holds the credential, and the last
check runs against the real destination.

This patches private mitmproxy API, hence the `<13` pin;
tests/addons/test_wire.py checks that the patch points exist and are used.
A function that raises sends the request as it is (without a credential).
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import weakref
from collections.abc import Callable

from mitmproxy import connection, http

log = logging.getLogger("authsome.proxy")

Rewrite = Callable[[connection.Server, http.Request], http.Request]
_rewrites: weakref.WeakKeyDictionary[http.Request, Rewrite] = weakref.WeakKeyDictionary()
_installed = False


def on_send(request: http.Request, rewrite: Rewrite) -> None:
    """Serialize `request` from `rewrite(server, request)` each time it is sent."""
    install()
    _rewrites[request] = rewrite


def head_copy(request: http.Request) -> http.Request:
    """A copy of the request for serialization: own headers and path, body shared (not copied)."""
    out = copy.copy(request)
    out.data = dataclasses.replace(request.data, headers=request.data.headers.copy())
    return out


def _outgoing(context, request: http.Request) -> http.Request:
    rewrite = _rewrites.get(request)
    if rewrite is None:
        return request
    try:
        return rewrite(context.server, request)
    except Exception:  # never let a bug stop the proxy, nor let it decide to send a secret
        log.exception("could not prepare a request for %s; sent without a credential", request.pretty_host)
        return request


def install() -> None:
    """Patch mitmproxy's client layers once (idempotent)."""
    global _installed
    if _installed:
        return
    from mitmproxy.proxy.layers.http import _http1, _http2, _http3
    from mitmproxy.proxy.layers.http._events import RequestHeaders

    h1_send = _http1.Http1Client.send

    def send(self, event):
        if isinstance(event, RequestHeaders):
            event = dataclasses.replace(event, request=_outgoing(self.context, event.request))
        return h1_send(self, event)

    h2_format = _http2.format_h2_request_headers

    def format_h2_request_headers(context, event):
        return h2_format(context, dataclasses.replace(event, request=_outgoing(context, event.request)))

    _http1.Http1Client.send = send
    _http2.format_h2_request_headers = format_h2_request_headers
    _http3.format_h2_request_headers = format_h2_request_headers
    _installed = True
