"""Inject and Redact: the credential is written at the last moment and put back afterwards."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from mitmproxy.test import taddons, tutils

from authsome.addons.inject import Inject
from authsome.addons.redact import Redact
from authsome.addons.route import Route
from authsome.models import PLACEHOLDER, Connection
from authsome.vault import Vault
from tests.addons.conftest import TOKEN, tunnel

ADDONS = Path(__file__).resolve().parents[2] / "addons"
pytestmark = pytest.mark.anyio


async def _through_request_hooks(addons):
    """A request in a tunnel to api.twitter.com, through Route and Inject's requestheaders."""
    route, inject = addons
    connect, flow = tunnel()
    route.http_connect(connect)
    route.requestheaders(flow)
    await inject.requestheaders(flow)
    return flow


def _leave(inject, flow):
    """The `request` hook, then the `update` after it: the request leaves right after."""
    inject.request(flow)
    inject.update([flow])


async def test_credential_is_written_only_after_the_request_hook(x_home):
    route, inject, redact = Route(), Inject(), Redact()
    with taddons.context(route, inject, redact) as tctx:
        tctx.configure(route, authsome_home=str(x_home))
        flow = await _through_request_hooks((route, inject))
        flow.request.headers["Authorization"] = f"Bearer {PLACEHOLDER}"
        inject.update([flow])  # the update after requestheaders: too early, a UI may be looking
        assert flow.request.headers["Authorization"] == f"Bearer {PLACEHOLDER}"
        inject.request(flow)
        inject.update([flow])  # the update after `request`: the last moment before sending
        assert flow.request.headers["Authorization"] == f"Bearer {TOKEN}"
        flow.response = tutils.tresp(status_code=200)
        redact.responseheaders(flow)
        assert flow.request.headers["Authorization"] == f"Bearer {PLACEHOLDER}"
        assert TOKEN not in repr(flow.get_state())  # nothing kept for logs, dumps or UIs


async def test_invalid_connection_is_not_injected(home):
    Vault.open().put_connection(Connection(provider="x", access_token=TOKEN, state="invalid"))
    route, inject = Route(), Inject()
    with taddons.context(route, inject) as tctx:
        tctx.configure(route, authsome_home=str(home))
        flow = await _through_request_hooks((route, inject))
        _leave(inject, flow)
        assert "Authorization" not in flow.request.headers
        assert flow.metadata["authsome"]["inject_error"] == "invalid"


async def test_credential_read_again_when_another_process_refreshed(x_home):
    route, inject = Route(), Inject()
    with taddons.context(route, inject) as tctx:
        tctx.configure(route, authsome_home=str(x_home))
        first = await _through_request_hooks((route, inject))
        _leave(inject, first)
        Vault.open().put_connection(Connection(provider="x", access_token="newer-token", expires_at=time.time() + 3600))
        second = await _through_request_hooks((route, inject))
        _leave(inject, second)
        assert second.request.headers["Authorization"] == "Bearer newer-token"


async def test_every_addon_file_loads_as_a_mitmproxy_script(x_home):
    for name, cls in [("inject", "Inject"), ("refresh", "Refresh"), ("audit", "Audit"), ("redact", "Redact")]:
        with taddons.context() as tctx:
            [addon] = tctx.script(str(ADDONS / f"{name}.py")).addons
            assert type(addon).__name__ == cls


async def test_token_near_expiry_without_refresh_token_is_still_injected(home):
    """Nothing to refresh it with: the token works for 30 more seconds, so it is used."""
    Vault.open().put_connection(Connection(provider="x", access_token=TOKEN, expires_at=time.time() + 30))
    route, inject = Route(), Inject()
    with taddons.context(route, inject) as tctx:
        tctx.configure(route, authsome_home=str(home))
        flow = await _through_request_hooks((route, inject))
        _leave(inject, flow)
        assert flow.request.headers["Authorization"] == f"Bearer {TOKEN}"
        assert "inject_error" not in flow.metadata["authsome"]
