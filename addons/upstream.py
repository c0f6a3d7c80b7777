"""Upstream: credentials for a corporate proxy authsome chains to, sent to that proxy only.

mitmproxy's stock `upstream_auth` also adds `Proxy-Authorization` to plain
HTTP requests inside CONNECT tunnels, which travel through the corporate
proxy to the tunnel's destination in clear, and shows the header in every
viewer. Here the header is written into the CONNECT sent to the upstream
proxy, and into absolute-form requests sent to it directly, on the wire
only (`_wire`): never into a tunnel, never into a flow.

    mitmdump -s addons/upstream.py --mode upstream:http://corp:3128 --set authsome_upstream_auth=user:pass
"""

from __future__ import annotations

import base64

from mitmproxy import ctx, exceptions, http

from authsome.addons import _wire
from authsome.addons._runtime import META


class UpstreamProxyAuth:
    auth: str | None = None

    def load(self, loader) -> None:
        loader.add_option("authsome_upstream_auth", str, "",
                          "user:password for the upstream proxy (--mode upstream:URL); sent to that proxy only")

    def configure(self, updated) -> None:
        if "authsome_upstream_auth" in updated:
            value = ctx.options.authsome_upstream_auth
            if value and ":" not in value:
                raise exceptions.OptionsError("authsome_upstream_auth must be user:password.")
            self.auth = "Basic " + base64.b64encode(value.encode()).decode() if value else None

    def http_connect_upstream(self, flow: http.HTTPFlow) -> None:
        if self.auth:
            flow.request.headers["Proxy-Authorization"] = self.auth  # the CONNECT to the upstream proxy itself

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        # Route marks requests sent to the proxy itself (no CONNECT) as direct.
        if self.auth and (flow.metadata.get(META) or {}).get("direct") and flow.request.scheme == "http":
            auth = self.auth

            def to_the_proxy(server, request):
                if server.via is None or server.tls:
                    return request
                out = _wire.head_copy(request)
                out.headers["Proxy-Authorization"] = auth
                return out

            _wire.on_send(flow.request, to_the_proxy)


addons = [UpstreamProxyAuth()]
