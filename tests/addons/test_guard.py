"""ProxyPassword: the lean master's 407, without stock proxyauth."""

from __future__ import annotations

import base64

import pytest
from mitmproxy.test import taddons, tflow

from authsome.addons.guard import ProxyPassword


def _basic(user: str, password: str, scheme: str = "Basic") -> str:
    return f"{scheme} " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize("header, ok", [
    (_basic("authsome", "s3cret"), True),
    (_basic("authsome", "s3cret", "basic"), True),  # the scheme is case-insensitive
    (_basic("authsome", "s3cre"), False),
    (_basic("authsome", "s3cret!"), False),
    (_basic("someone", "s3cret"), False),
    (_basic("authsome", "s3cret", "Bearer"), False),
    ("Basic !!!not-base64", False),
    ("Basic " + base64.b64encode(b"authsome").decode(), False),  # no colon
    (None, False),
])
def test_only_the_runs_credentials_pass_and_they_leave_the_request(header, ok):
    addon = ProxyPassword()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, proxyauth="authsome:s3cret")
        connect = tflow.tflow()
        connect.request.method = "CONNECT"
        if header is not None:
            connect.request.headers["Proxy-Authorization"] = header
        addon.http_connect(connect)
        if ok:
            assert connect.response is None and "Proxy-Authorization" not in connect.request.headers
            assert connect.metadata["proxyauth"] is True  # a mark, never the credentials
            inside = tflow.tflow(client_conn=connect.client_conn)
            addon.requestheaders(inside)  # a request in the authenticated tunnel
            assert inside.response is None
        else:
            assert connect.response.status_code == 407
            assert connect.response.headers["Proxy-Authenticate"] == 'Basic realm="authsome"'
            assert "s3cret" not in repr(connect.metadata)


def test_a_request_to_the_proxy_itself_needs_the_credentials_too():
    addon = ProxyPassword()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, proxyauth="authsome:s3cret")
        direct = tflow.tflow()
        addon.requestheaders(direct)
        assert direct.response.status_code == 407
