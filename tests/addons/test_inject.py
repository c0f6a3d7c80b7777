"""Inject and the wire: the credential exists only in what is serialized for the upstream connection."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from mitmproxy import connection
from mitmproxy.test import taddons

from authsome.addons import _wire
from authsome.addons.inject import Inject
from authsome.addons.route import Route
from authsome.models import PLACEHOLDER, Connection
from authsome.vault import Vault
from tests.addons.conftest import TOKEN, tunnel

ADDONS = Path(__file__).resolve().parents[2] / "addons"
pytestmark = pytest.mark.anyio


class _Context:
    """What mitmproxy's client layers hand the wire: the server connection the bytes go to."""

    def __init__(self, server: connection.Server):
        self.server = server


def server(host="api.twitter.com", port=443, sni="api.twitter.com", tls=True) -> connection.Server:
    s = connection.Server(address=(host, port))
    s.sni, s.tls = sni, tls
    return s


async def _through_request_hooks(route, inject, *, sni="api.twitter.com"):
    """A request in a tunnel to api.twitter.com, through Route and Inject's requestheaders."""
    connect, flow = tunnel(sni=sni)
    route.http_connect(connect)
    route.requestheaders(flow)
    await inject.requestheaders(flow)
    return flow


def _sent(flow, to=None):
    """What the client layer would serialize for this request."""
    return _wire._outgoing(_Context(to or server()), flow.request)


async def test_the_credential_is_only_in_the_bytes_sent(x_home):
    route, inject = Route(), Inject()
    with taddons.context(route, inject) as tctx:
        tctx.configure(route, authsome_home=str(x_home))
        flow = await _through_request_hooks(route, inject)
        flow.request.headers["Authorization"] = f"Bearer {PLACEHOLDER}"
        sent = _sent(flow)
        assert sent.headers["Authorization"] == f"Bearer {TOKEN}"
        assert sent is not flow.request
        assert flow.request.headers["Authorization"] == f"Bearer {PLACEHOLDER}"
        assert TOKEN not in repr(flow.get_state())  # nothing for logs, dumps, UIs or filters
        assert flow.metadata["authsome"]["injected"] == ["header:authorization"]


@pytest.mark.invariant
@pytest.mark.parametrize("change, to", [
    pytest.param(lambda r: setattr(r, "host", "other.test"), None, id="host-edited-after-the-check"),
    pytest.param(lambda r: r.headers.__setitem__("Host", "other.test"), None, id="host-header-edited"),
    pytest.param(lambda r: setattr(r, "path", "/2/oauth2/token"), None, id="path-edited-to-an-oauth-endpoint"),
    pytest.param(lambda r: None, server(host="other.test"), id="connection-to-another-address"),
    pytest.param(lambda r: None, server(sni="other.test"), id="connection-under-another-name"),
    pytest.param(lambda r: None, server(tls=False), id="connection-without-tls"),
])
async def test_a_request_changed_before_it_leaves_gets_no_credential(x_home, change, to):
    """A web UI edit, an addon, a retry: whatever changed the request, the wire checks again."""
    route, inject = Route(), Inject()
    with taddons.context(route, inject) as tctx:
        tctx.configure(route, authsome_home=str(x_home))
        flow = await _through_request_hooks(route, inject)
        change(flow.request)
        sent = _sent(flow, to)
        assert TOKEN not in repr(sent.get_state())
        assert flow.metadata["authsome"]["injected"] == []


async def test_invalid_connection_is_not_injected(home):
    Vault.open().put_connection(Connection(provider="x", access_token=TOKEN, state="invalid"))
    route, inject = Route(), Inject()
    with taddons.context(route, inject) as tctx:
        tctx.configure(route, authsome_home=str(home))
        flow = await _through_request_hooks(route, inject)
        assert "Authorization" not in _sent(flow).headers
        assert flow.metadata["authsome"]["inject_error"] == "invalid"


async def test_credential_read_again_when_another_process_refreshed(x_home):
    route, inject = Route(), Inject()
    with taddons.context(route, inject) as tctx:
        tctx.configure(route, authsome_home=str(x_home))
        first = await _through_request_hooks(route, inject)
        _sent(first)
        Vault.open().put_connection(Connection(provider="x", access_token="newer-token", expires_at=time.time() + 3600))
        second = await _through_request_hooks(route, inject)
        assert _sent(second).headers["Authorization"] == "Bearer newer-token"


async def test_every_addon_file_loads_as_a_mitmproxy_script(x_home):
    for name, cls in [("inject", "Inject"), ("refresh", "Refresh"), ("audit", "Audit"), ("scrub", "Scrub"),
                      ("guard", "Guard"), ("upstream", "UpstreamProxyAuth")]:
        with taddons.context() as tctx:
            [addon] = tctx.script(str(ADDONS / f"{name}.py")).addons
            assert type(addon).__name__ == cls


async def test_token_near_expiry_without_refresh_token_is_still_injected(home):
    """Nothing to refresh it with: the token works for 30 more seconds, so it is used."""
    Vault.open().put_connection(Connection(provider="x", access_token=TOKEN, expires_at=time.time() + 30))
    route, inject = Route(), Inject()
    with taddons.context(route, inject) as tctx:
        tctx.configure(route, authsome_home=str(home))
        flow = await _through_request_hooks(route, inject)
        assert _sent(flow).headers["Authorization"] == f"Bearer {TOKEN}"
        assert "inject_error" not in flow.metadata["authsome"]


def test_the_patch_points_exist_and_serialize_the_copy():
    """The wire patches private mitmproxy API (pinned <13): prove both client layers use it."""
    from mitmproxy.proxy.layers.http import _http1, _http2, _http3
    from mitmproxy.proxy.layers.http._events import RequestHeaders
    from mitmproxy.test import tflow

    _wire.install()
    assert _http1.Http1Client.send.__name__ == "send" and _http1.Http1Client.send.__module__ == _wire.__name__
    assert _http2.format_h2_request_headers.__module__ == _wire.__name__
    assert _http3.format_h2_request_headers is _http2.format_h2_request_headers
    flow = tflow.tflow()
    flow.request.headers["Authorization"] = "Bearer child"

    def rewrite(_server, request):
        out = _wire.head_copy(request)
        out.headers["Authorization"] = "Bearer wire-only"
        return out

    _wire.on_send(flow.request, rewrite)
    context = _Context(server())
    context.options = type("O", (), {"normalize_outbound_headers": True})()
    h2_headers = dict(_drain(_http2.format_h2_request_headers(context, RequestHeaders(1, flow.request, True))))
    assert h2_headers[b"authorization"] == b"Bearer wire-only"
    client = _http1.Http1Client.__new__(_http1.Http1Client)
    client.context, client.conn, client.stream_id, client.request, client.response = context, None, None, None, None
    [command] = list(_http1.Http1Client.send(client, RequestHeaders(1, flow.request, True)))
    assert b"Authorization: Bearer wire-only" in command.data
    assert flow.request.headers["Authorization"] == "Bearer child"


def _drain(generator):
    try:
        while True:
            next(generator)
    except StopIteration as stop:
        return stop.value


async def test_a_finished_flow_is_freed(x_home):
    # The rewrite registered for a request must not keep its flow alive (the registry is weak
    # on the request; a value that refers back to it would hold every flow of a run forever).
    import gc
    import weakref

    route, inject = Route(), Inject()
    with taddons.context(route, inject) as tctx:
        tctx.configure(route, authsome_home=str(x_home))
        flow = await _through_request_hooks(route, inject)
        assert _sent(flow).headers["Authorization"].startswith("Bearer ")
        assert flow.marked  # injected flows are marked for the UIs
        gone = weakref.ref(flow)
        del flow
        gc.collect()
        assert gone() is None


def test_the_copy_on_the_wire_shares_nothing_the_credential_is_written_into():
    from mitmproxy import http
    from mitmproxy.test import tflow

    flow = tflow.tflow()
    flow.request.headers["Authorization"] = "Bearer authsome-proxy-managed"
    flow.request.trailers = http.Headers(x_trailer="child")
    before = flow.request.get_state()
    out = _wire.head_copy(flow.request)
    out.headers["Authorization"] = "Bearer wire-only"
    out.trailers["x-trailer"] = "wire-only"
    out.query["key"] = "wire-only"
    out.host = "elsewhere.test"
    assert flow.request.get_state() == before
    assert b"wire-only" not in repr(flow.request.get_state()).encode()
