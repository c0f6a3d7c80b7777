"""Redact: once an injected request has left, put back exactly what the child sent.

After this, the flow that mitmproxy keeps (and that the console, the web UI,
`mitmdump -w` files and the audit log see) holds the placeholder, never the
real credential. Loaded into a stock `mitmweb`, it also gives the web UI the
protection `authsome run --ui web` has for requests still in flight
(`authsome.webui`). Runs when the response headers arrive, on errors, and at
shutdown for requests still waiting for an answer.
"""

from __future__ import annotations

import sys
import weakref

from mitmproxy import http

from authsome import injection
from authsome.addons._runtime import META


class Redact:
    def __init__(self) -> None:
        # Requests sent and not answered yet: at shutdown, mitmproxy's Save
        # addon writes those too (`done`), so they are put back first.
        self._out: weakref.WeakSet[http.HTTPFlow] = weakref.WeakSet()

    def load(self, loader) -> None:
        # In a stock mitmweb, the same protection `authsome run --ui web` has. A web
        # master has imported its module already; other masters never pay for it.
        from mitmproxy import ctx

        web = sys.modules.get("mitmproxy.tools.web.master")
        if web is not None and isinstance(getattr(ctx, "master", None), web.WebMaster):
            from authsome.webui import protect_web_app

            protect_web_app()

    def _restore(self, flow: http.HTTPFlow) -> None:
        self._out.discard(flow)
        meta = flow.metadata.get(META)
        if meta and meta.get("injected"):
            injection.undo(flow.request, meta["injected"])

    def request(self, flow: http.HTTPFlow) -> None:
        if META in flow.metadata:
            self._out.add(flow)

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        self._restore(flow)

    def response(self, flow: http.HTTPFlow) -> None:
        self._restore(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._restore(flow)

    def done(self) -> None:
        for flow in list(self._out):
            self._restore(flow)


addons = [Redact()]
