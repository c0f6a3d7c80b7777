"""Route: intercept only CONNECT targets a provider routes; tunnel the rest untouched.

The decision is made on the CONNECT target (host and port) the client asked
for, never on the Host header or the TLS server name. Connections to other
hosts become raw TCP relays: no TLS interception, no flows, no hooks.
Inside an intercepted tunnel, a request is marked for injection only when
every name agrees: TLS was terminated here, the scheme is https, the client's
SNI is the CONNECT host, and the request still targets the CONNECT host and
port. Plain-HTTP proxy requests are never marked.

Loads into stock mitmproxy: mitmdump -s addons/route.py --set authsome_home=...
"""

from __future__ import annotations

import weakref

from mitmproxy import ctx, http
from mitmproxy.proxy import layers
from mitmproxy.proxy.layers import modes

from authsome.addons._runtime import META, declare, log, runtime


class Route:
    def __init__(self) -> None:
        # client connection -> the (host, port) its CONNECT asked for
        self.targets: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def load(self, loader) -> None:
        declare(loader)
        loader.add_option(
            "authsome_deny_unmatched", bool, False,
            "refuse (403) connections to hosts no provider routes, instead of tunnelling them",
        )

    def configure(self, updated) -> None:
        if "authsome_resolve" in updated and ctx.options.authsome_resolve:
            from authsome import resolve

            resolve.install(list(ctx.options.authsome_resolve))
        if {"authsome_home", "authsome_connections"} & updated:
            rt = runtime(ctx.options)
            log.info("routing %s", ", ".join(f"{b.key}: {' '.join(r.text for r in b.routes)}" for b in rt.bindings) or "nothing")

    def _binding(self, host: str, port: int, path: str | None = None):
        from authsome.bindings import find

        return find(runtime(ctx.options).bindings, host, port, path)

    def http_connect(self, flow: http.HTTPFlow) -> None:
        if flow.response is not None:  # already answered (407 from proxyauth)
            return
        host, port = flow.request.host, flow.request.port
        routed = self._binding(host, port) is not None
        if not routed and ctx.options.authsome_deny_unmatched:
            flow.response = http.Response.make(403, b"authsome: this host is not routed to any provider\n",
                                               {"Content-Type": "text/plain"})
            flow.metadata[META] = {"denied": True, "host": host, "port": port}
            return
        self.targets[flow.client_conn] = (host.lower(), port)
        flow.metadata[META] = {"tunnel": not routed, "host": host, "port": port}

    def next_layer(self, nextlayer) -> None:
        context = nextlayer.context
        if not isinstance(context.layers[0], (modes.HttpProxy, modes.HttpUpstreamProxy)):
            return
        if context.server.address is None:
            return  # a fresh proxy connection: mitmproxy's HTTP layer reads the request
        target = self.targets.get(context.client)
        if target is None or self._binding(*target) is None:
            nextlayer.layer = layers.TCPLayer(context, ignore=True)

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.response is not None:
            return
        if flow.is_replay:
            return  # a re-send keeps the decision (and metadata) of the flow it copies
        meta = flow.metadata.get(META)
        if meta is None and flow.request.scheme == "http":
            # A plain-HTTP proxy request: deny if asked to, never inject.
            if ctx.options.authsome_deny_unmatched:
                flow.response = http.Response.make(403, b"authsome: plain HTTP is not routed\n",
                                                   {"Content-Type": "text/plain"})
            return
        target = self.targets.get(flow.client_conn)
        if target is None:
            return
        host, port = target
        request = flow.request
        if not (
            flow.client_conn.tls_established
            and request.scheme == "https"
            and (flow.client_conn.sni or "").lower().rstrip(".") == host.rstrip(".")
            and (request.host.lower(), request.port) == (host, port)
        ):
            return
        binding = self._binding(host, port, request.path)
        if binding is None:
            return
        flow.metadata[META] = {"binding": binding.key, "provider": binding.provider.name,
                               "connection": binding.connection}


addons = [Route()]
