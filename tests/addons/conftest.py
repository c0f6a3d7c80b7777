"""Shared pieces of the addon unit tests: a home with an X connection, and flows."""

from __future__ import annotations

import time

import pytest
from mitmproxy.test import tflow

from authsome.models import Connection
from authsome.vault import Vault

TOKEN = "addon-test-token-" + "Q" * 20


@pytest.fixture
def x_home(home):
    Vault.open().put_connection(Connection(provider="x", access_token=TOKEN, refresh_token="r",
                                           expires_at=time.time() + 3600))
    return home


def tunnel(target=("api.twitter.com", 443), *, sni="api.twitter.com", host=None, port=None,
           scheme="https", tls=True, path="/2/users/me"):
    """(the CONNECT flow, a request inside that tunnel), sharing one client connection."""
    connect = connect_flow(target)
    f = tunnel_flow(target, sni=sni, host=host, port=port, scheme=scheme, tls=tls, path=path)
    f.client_conn = connect.client_conn
    f.client_conn.sni = sni
    f.client_conn.timestamp_tls_setup = time.time() if tls else None
    return connect, f


def tunnel_flow(target=("api.twitter.com", 443), *, sni="api.twitter.com", host=None, port=None,
                scheme="https", tls=True, path="/2/users/me"):
    """A request as mitmproxy would hand it to us (its client connection unrelated to any CONNECT)."""
    f = tflow.tflow()
    f.client_conn.sni = sni
    f.client_conn.timestamp_tls_setup = time.time() if tls else None
    f.request.scheme = scheme
    f.request.host = host or target[0]
    f.request.port = port or target[1]
    f.request.path = path
    f.request.headers.clear()
    f.request.headers["Host"] = f.request.host
    return f


def connect_flow(target=("api.twitter.com", 443)):
    f = tflow.tflow()
    f.request.method = "CONNECT"
    f.request.host, f.request.port = target
    return f


@pytest.fixture
def anyio_backend():
    return "asyncio"
