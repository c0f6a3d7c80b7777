"""Redact: once an injected request has left, put back exactly what the child sent.

After this, the flow that mitmproxy keeps (and that the console, the web UI,
`mitmdump -w` files and the audit log see) holds the placeholder, never the
real credential. Runs when the response headers arrive, and on errors.
"""

from __future__ import annotations

from mitmproxy import http

from authsome import injection
from authsome.addons._runtime import META


class Redact:
    def _restore(self, flow: http.HTTPFlow) -> None:
        meta = flow.metadata.get(META)
        if meta and meta.get("injected"):
            injection.undo(flow.request, meta["injected"])

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        self._restore(flow)

    def response(self, flow: http.HTTPFlow) -> None:
        self._restore(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._restore(flow)


addons = [Redact()]
