"""Route: intercept only CONNECT targets a provider routes; tunnel the rest untouched.

The decision is made on the CONNECT target (host and port) the client asked
for, never on the Host header or the TLS server name. Connections to other
hosts become raw TCP relays: no TLS interception, no flows, no hooks. Inside
an intercepted tunnel the upstream connection always uses the CONNECT host
as its TLS server name, and each request is checked:

- every name it carries (SNI, Host, `:authority`, an absolute-form target)
  must name the CONNECT target, else it gets 421 Misdirected Request;
- a credential slot sent twice gets 400;
- a request whose path is routed (and no OAuth endpoint) is marked for the
  Inject addon.

Requests sent to the proxy without CONNECT (absolute-form) never get a
credential; with `authsome_deny_unmatched` those to unrouted hosts get 403,
like CONNECTs to them, unless `authsome_allow_hosts` names them. Request bodies of unknown or large size stream
through (`BodyTee` keeps the first `MAX_REPLAY_BODY` bytes for a re-send).

Loads into stock mitmproxy: mitmdump -s addons/route.py --set authsome_home=...
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence

from mitmproxy import ctx, exceptions, http
from mitmproxy.proxy import layers
from mitmproxy.proxy.layers import modes

from authsome import authority, injection
from authsome.addons._runtime import META, declare, log, runtime
from authsome.errors import AuthsomeError
from authsome.providers.routes import RouteError, host_allowed, normalize_host, parse_allowed_host

MAX_REPLAY_BODY = 4 << 20  # request bodies up to this size are kept for the re-send after a 401


class BodyTee:
    """A streamed request body: passed on chunk by chunk, the first bytes kept for a re-send."""

    def __init__(self, limit: int = MAX_REPLAY_BODY):
        self.limit = limit
        self.kept = bytearray()
        self.complete = True

    def __call__(self, chunk: bytes) -> bytes:
        if self.complete and len(self.kept) + len(chunk) <= self.limit:
            self.kept += chunk
        else:
            self.complete, self.kept = False, bytearray()
        return chunk


def _printable(host: str) -> str:
    return "".join(c if c.isalnum() or c in ".-:[]" else "?" for c in host)[:253]


def _fail_closed(hook, flow: http.HTTPFlow) -> None:
    try:
        hook(flow)
    except Exception as exc:
        log.error("refused a request: routing failed (%s)", type(exc).__name__)
        flow.metadata[META] = {"denied": True, "host": flow.request.host, "port": flow.request.port}
        _refuse(flow, 502, "the proxy could not decide where this request may go; it was not sent")


def _refuse(flow: http.HTTPFlow, status: int, text: str) -> None:
    flow.response = http.Response.make(status, f"authsome: {text}\n".encode(), {"Content-Type": "text/plain"})


class Route:
    def __init__(self) -> None:
        # client connection -> the (host, port) its CONNECT asked for
        self.targets: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self.allowed: tuple[str, ...] = ()

    def load(self, loader) -> None:
        declare(loader)
        loader.add_option(
            "authsome_deny_unmatched", bool, False,
            "refuse (403) connections and requests to hosts no provider routes, instead of passing them through",
        )
        loader.add_option(
            "authsome_allow_hosts", Sequence[str], [],
            "with authsome_deny_unmatched: hosts (or *.domain) that pass through untouched all the same",
        )

    def configure(self, updated) -> None:
        if "authsome_allow_hosts" in updated:
            try:
                self.allowed = tuple(parse_allowed_host(h) for h in ctx.options.authsome_allow_hosts)
            except RouteError as exc:
                raise exceptions.OptionsError(str(exc)) from None
        if "authsome_resolve" in updated and ctx.options.authsome_resolve:
            from authsome import resolve

            resolve.install(list(ctx.options.authsome_resolve))
        if {"authsome_home", "authsome_connections"} & updated:
            try:
                rt = runtime(ctx.options, fresh=True)
            except AuthsomeError as exc:  # the proxy does not start without its routing table
                raise exceptions.OptionsError(exc.message) from None
            log.info("routing %s", ", ".join(f"{b.key}: {' '.join(r.text for r in b.routes)}" for b in rt.bindings) or "nothing")

    def _binding(self, host: str, port: int, path: str | None = None):
        return runtime(ctx.options).binding_at(host, port, path)

    # mitmproxy logs an addon's exception and lets the flow go on: here that would pass a
    # request no routing decided on (past --deny-unmatched, unaudited). Refused instead.

    def http_connect(self, flow: http.HTTPFlow) -> None:
        _fail_closed(self._http_connect, flow)

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        _fail_closed(self._requestheaders, flow)

    def _http_connect(self, flow: http.HTTPFlow) -> None:
        if flow.response is not None:  # already answered (407 from proxyauth)
            return
        host, port = flow.request.host, flow.request.port
        binding = self._binding(host, port)
        if binding is None and self._denied(host):
            flow.metadata[META] = {}
            _deny(flow, host, port)
            return
        if binding is not None:
            # One spelling from here on (case, trailing dot), and the upstream TLS
            # server name is the CONNECT host whatever the client's SNI says.
            host = normalize_host(host)
            flow.request.host = host
            flow.server_conn.sni = host
        self.targets[flow.client_conn] = (host, port)
        flow.metadata[META] = {"tunnel": binding is None, "host": host, "port": port}

    def next_layer(self, nextlayer) -> None:
        context = nextlayer.context
        if not isinstance(context.layers[0], (modes.HttpProxy, modes.HttpUpstreamProxy)):
            return
        if context.server.address is None:
            return  # a fresh proxy connection: mitmproxy's HTTP layer reads the request
        target = self.targets.get(context.client)
        if target is None or self._binding(*target) is None:
            nextlayer.layer = layers.TCPLayer(context, ignore=True)

    def tls_clienthello(self, data) -> None:
        # A client without SNI (Go programs with their own TLS config) gets a
        # certificate for the CONNECT host, not for our loopback address.
        target = self.targets.get(data.context.client)
        if target is not None and data.context.client.sni is None and self._binding(*target) is not None:
            data.context.client.sni = target[0]

    def _requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.response is not None or flow.is_replay:
            return  # answered already, or a re-send, which keeps the decision of the flow it copies
        target = self.targets.get(flow.client_conn)
        if target is None:
            self._direct(flow)
            return
        host, port = target
        request = flow.request
        tunnel = self._binding(host, port)
        if tunnel is None:
            return  # not intercepted (a raw tunnel never gets here)
        meta = flow.metadata[META] = {"target": [host, port], "tunnel_binding": tunnel.key}
        if request.host_header and authority.parse_authority(request.host_header) != target:
            meta["host_header"] = request.host_header  # for the audit log
        problem = authority.disagreement(target, sni=flow.client_conn.sni, request=request)
        if problem:
            _refuse(flow, 421, f"this connection is for {host}:{port}, but {problem} (421 Misdirected Request)")
            return
        if problem := authority.target_problem(request):
            _refuse(flow, 400, f"{problem}; send the path only")
            return
        _no_transfer_codings(request)
        if not (flow.client_conn.tls_established and request.scheme == "https"):
            return  # plain HTTP inside the tunnel: passed through, never a credential
        binding = self._binding(host, port, request.path)
        if binding is not None:
            if problem := injection.conflict(request, binding.provider):
                _refuse(flow, 400, f"{problem}; send it once")
                return
            meta.update(binding=binding.key, provider=binding.provider.name, connection=binding.connection)
        if _large_or_unknown_body(request):
            request.stream = BodyTee()

    def _direct(self, flow: http.HTTPFlow) -> None:
        """A request sent to the proxy itself (absolute-form): never a credential."""
        request = flow.request
        flow.metadata[META] = {"direct": True}
        if self._binding(request.host, request.port) is None and self._denied(request.host):
            _deny(flow, request.host, request.port)

    def _denied(self, host: str) -> bool:
        return ctx.options.authsome_deny_unmatched and not host_allowed(host, self.allowed)

    def request(self, flow: http.HTTPFlow) -> None:
        # A streamed body has been sent by now; a small one is kept for a re-send.
        tee = flow.request.stream
        if isinstance(tee, BodyTee) and tee.complete:
            flow.request.data.content = bytes(tee.kept)


def _deny(flow: http.HTTPFlow, host: str, port: int) -> None:
    """--deny-unmatched: 403 for a host no provider routes (recorded as denied for the audit)."""
    flow.metadata[META].update(denied=True, host=host, port=port)
    _refuse(flow, 403, f"{_printable(host)} is not routed to any provider, and --deny-unmatched refuses other hosts "
                       "(--allow-host HOST lets one through)")


def _no_transfer_codings(request: http.Request) -> None:
    """Ask for no transfer-coding but chunked (a gzip transfer-coding would hide an echo from Scrub)."""
    te = request.headers.get("te")
    if te is None:
        return
    if "trailers" in [t.split(";")[0].strip().lower() for t in te.split(",")]:
        request.headers["te"] = "trailers"
    else:
        del request.headers["te"]


def _large_or_unknown_body(request: http.Request) -> bool:
    length = request.headers.get("content-length")
    if length is None:
        return "chunked" in request.headers.get("transfer-encoding", "").lower() or request.is_http2 or request.is_http3
    return not length.isdigit() or int(length) > MAX_REPLAY_BODY


addons = [Route()]
