"""Scrub: nothing that comes back from a routed host holds a real credential.

Every response inside an intercepted tunnel (and its WebSocket messages)
has each secret of the host's connection, and whatever was written on the
wire for the request, replaced with the placeholder (`authsome.scrub`):

- header values, as soon as the response headers arrive (before any viewer);
- a small body (a known length up to `BUFFER_LIMIT`) whole, decoded with
  authsome's own strict decoders and sent decoded, its length corrected;
- anything larger or of unknown length while it streams (server-sent events
  stay live); such a body loses its Content-Length and, when it was encoded,
  its Content-Encoding (it is decoded on the way to be searched), and is
  sent chunked. An encoding that cannot be decoded, a transfer-coding other
  than chunked, or a switch to a protocol other than WebSocket gets a 502;
- the reason phrase, header names, and trailers (also of streamed bodies).

WebSocket control frames (ping and pong payloads, close reasons), for which
mitmproxy has no hook, are scrubbed as they are read (`_wire`).

Every other response streams through untouched, except a 401 the Refresh
addon holds. Addon order matters: Scrub runs before Refresh, whose `response`
hook waits for a refresh while the UI may read the flow.
"""

from __future__ import annotations

import weakref

from mitmproxy import ctx, http

from authsome import scrub
from authsome.addons import _wire
from authsome.addons._runtime import META, declare, held_for_refresh, runtime

BUFFER_LIMIT = 1 << 20


def _routed(flow: http.HTTPFlow) -> bool:
    return bool((flow.metadata.get(META) or {}).get("tunnel_binding"))


def _has_body(flow: http.HTTPFlow) -> bool:
    status = flow.response.status_code
    return flow.request.method != "HEAD" and status not in (204, 304) and not 100 <= status < 200


def _scrub_headers(headers: http.Headers, scrubber: scrub.Scrubber) -> None:
    fields = [(scrubber.all(name), scrubber.all(value)) for name, value in headers.fields]
    if fields != list(headers.fields):
        headers.fields = tuple(fields)


def _refused(why: str) -> http.Response:
    return http.Response.make(502, f"authsome: {why}\n".encode(), {"Content-Type": "text/plain"})


def _unreadable(flow: http.HTTPFlow) -> str | None:
    """Why a routed response cannot be checked for the credential, or None."""
    response = flow.response
    codings = [c.strip().lower() for c in response.headers.get("transfer-encoding", "").split(",") if c.strip()]
    if any(c != "chunked" for c in codings):
        return "the response uses a transfer-coding that cannot be checked for the credential"
    asked_websocket = "sec-websocket-key" in flow.request.headers
    if response.status_code == 101 and not (asked_websocket and response.headers.get("upgrade", "").lower() == "websocket"):
        return "the server switched to a protocol other than WebSocket, which cannot be checked for the credential"
    return None


class _Stream:
    """mitmproxy's response.stream callable: decode (if needed), then scrub, chunk by chunk."""

    def __init__(self, scrubber: scrub.Scrubber, decoders: list[scrub.Decoder]):
        self.scrubber = scrubber
        self.decoders = decoders

    def __call__(self, chunk: bytes) -> bytes:
        final = not chunk  # mitmproxy calls with b"" once the body has ended
        for decoder in self.decoders:
            chunk = (decoder.feed(chunk) if chunk else b"") + (decoder.feed(b"") if final else b"")
        if not chunk and not final:
            return b""  # the decoder is still buffering: nothing to pass on yet
        out = self.scrubber.feed(chunk) if chunk else b""
        return out + (self.scrubber.feed(b"") if final else b"")


class Scrub:
    def __init__(self) -> None:
        self._secrets: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # flow -> its secrets, once per response

    def load(self, loader) -> None:
        declare(loader)
        _wire.install()

    def _scrubber(self, flow: http.HTTPFlow) -> scrub.Scrubber:
        secrets = self._secrets.get(flow)
        if secrets is None or flow.is_replay:
            secrets = self._secrets[flow] = runtime(ctx.options).secrets_for(flow)
        return scrub.Scrubber(secrets)

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        self._secrets.pop(flow, None)  # a flow seen again (a replay): its secrets are read anew

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        response = flow.response
        held = held_for_refresh(flow) or flow.is_replay  # a re-send's body is handed over whole
        if not _routed(flow):
            response.stream = not held
            return
        if why := _unreadable(flow):
            # Replaced once the body is in (`response`): replacing it now would
            # still let the upstream body flow into the new response.
            flow.metadata[META]["refuse"] = why
            response.stream = False
            return
        scrubber = self._scrubber(flow)
        _scrub_headers(response.headers, scrubber)
        response.reason = scrubber.text(response.reason)
        if held or not _has_body(flow):
            return
        if not scrubber:
            response.stream = True  # nothing to look for
            return
        length = response.headers.get("content-length", "")
        if length.isdigit() and int(length) <= BUFFER_LIMIT:
            return  # small: scrubbed whole in `response`
        encodings = scrub.codings(response.headers.get("content-encoding", ""))
        try:
            decoders = [scrub.Decoder(e) for e in reversed(encodings)]
        except ValueError:
            flow.metadata[META]["refuse"] = "the response is in an encoding that cannot be checked for the credential"
            return
        response.headers.pop("content-encoding", None)
        response.headers.pop("content-length", None)
        if response.http_version == "HTTP/1.1" and "chunked" not in response.headers.get("transfer-encoding", "").lower():
            response.headers["transfer-encoding"] = "chunked"
        response.stream = _Stream(scrubber, decoders)

    def response(self, flow: http.HTTPFlow) -> None:
        if not _routed(flow):
            return
        if why := flow.metadata[META].pop("refuse", None):
            flow.response = _refused(why)
            return
        scrubber = self._scrubber(flow)
        if not scrubber:
            return
        if flow.response.trailers:  # sent after this hook, also for a streamed response
            _scrub_headers(flow.response.trailers, scrubber)
        if flow.response.stream:
            return
        response = flow.response
        _scrub_headers(response.headers, scrubber)
        response.reason = scrubber.text(response.reason)
        if not response.raw_content:
            return
        encodings = scrub.codings(response.headers.get("content-encoding", ""))
        try:
            body = scrub.decode_all(response.raw_content, encodings)
        except ValueError:
            flow.response = _refused("the response is in an encoding that cannot be checked for the credential")
            return
        scrubbed = scrubber.all(body)
        if encodings or scrubbed != response.raw_content:
            # What was searched is what is sent: decoded here, not by each client its own way.
            response.headers.pop("content-encoding", None)
            response.raw_content = scrubbed
            if "content-length" in response.headers:
                response.headers["content-length"] = str(len(scrubbed))

    def error(self, flow: http.HTTPFlow) -> None:
        # The Audit addon records this message, and a UI shows it.
        if flow.error and _routed(flow):
            flow.error.msg = self._scrubber(flow).text(flow.error.msg)

    def websocket_start(self, flow: http.HTTPFlow) -> None:
        if _routed(flow):
            scrubber = self._scrubber(flow)
            if scrubber:
                _wire.scrub_websocket_control(flow.server_conn, scrubber.all)

    def websocket_message(self, flow: http.HTTPFlow) -> None:
        message = flow.websocket.messages[-1] if flow.websocket else None
        if message is None or message.from_client or not _routed(flow):
            return
        scrubber = self._scrubber(flow)
        if scrubber:
            message.content = scrubber.all(message.content)


addons = [Scrub()]
