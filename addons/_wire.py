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

WebSocket control frames (pings, pongs, close reasons) have no addon hook;
for a server connection registered with `scrub_websocket_control`, their
payloads are scrubbed as mitmproxy reads them, before it logs or relays them.

The error pages mitmproxy writes to the client itself (a 502 for a malformed
upstream response) quote what the server sent ("Invalid header line:
b'...'"), past every addon hook; they keep only the words before the quote.

This patches private mitmproxy API, hence the `<13` pin;
tests/addons/test_inject.py checks that the patch points exist and are used.
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


_control_scrubbers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def scrub_websocket_control(server: connection.Server, scrub: Callable[[bytes], bytes]) -> None:
    """Pass ping/pong payloads and close reasons read from `server` through `scrub`."""
    install()
    _control_scrubbers[server] = scrub


def head_copy(request: http.Request) -> http.Request:
    """A copy of the request for serialization: own headers, trailers and path; body shared (bytes)."""
    out = copy.copy(request)
    # Copied, not rebuilt with `dataclasses.replace` (which runs mitmproxy's field checks again);
    # every mutable part is the copy's own, so nothing written into it reaches the flow.
    out.data = data = copy.copy(request.data)
    data.headers = request.data.headers.copy()
    if data.trailers is not None:
        data.trailers = data.trailers.copy()
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


def _outgoing_event(context, event):
    """The RequestHeaders event to serialize: the same one unless a rewrite gave another request."""
    request = _outgoing(context, event.request)
    return event if request is event.request else dataclasses.replace(event, request=request)


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
            event = _outgoing_event(self.context, event)
        return h1_send(self, event)

    h2_format = _http2.format_h2_request_headers

    def format_h2_request_headers(context, event):
        return h2_format(context, _outgoing_event(context, event))

    import wsproto.events
    from mitmproxy.proxy.layers import websocket as websocket_layer
    from mitmproxy.proxy.layers.http import _base

    read_events = websocket_layer.WebsocketConnection.events

    def events(self):
        scrub = _control_scrubbers.get(self.conn)
        for event in read_events(self):
            if scrub is not None and isinstance(event, (wsproto.events.Ping, wsproto.events.Pong)):
                event = type(event)(payload=scrub(bytes(event.payload))[:125])
            elif scrub is not None and isinstance(event, wsproto.events.CloseConnection) and event.reason:
                event = wsproto.events.CloseConnection(code=event.code,
                                                       reason=scrub(event.reason.encode())[:123].decode(errors="ignore"))
            yield event

    websocket_layer.WebsocketConnection.events = events

    base_format_error = _base.format_error

    def format_error(status_code: int, message: str) -> bytes:
        return base_format_error(status_code, plain_error(message))

    _http1.Http1Client.send = send
    _http2.format_h2_request_headers = format_h2_request_headers
    _http3.format_h2_request_headers = format_h2_request_headers
    for module in (_http1, _http2, _http3):
        module.format_error = format_error
    _installed = True


def plain_error(message: str) -> str:
    """An error message without the bytes it quotes (which may be a server echoing the credential)."""
    if "'" not in message and '"' not in message:
        return message
    head = message.split(":", 1)[0].strip() if ":" in message else ""
    return head if head and "'" not in head and '"' not in head else "the upstream server's response could not be read"
