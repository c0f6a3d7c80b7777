"""Route: which requests may carry a credential (a decision table), and --deny-unmatched."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from mitmproxy.test import taddons

from authsome.addons.route import Route
from tests.addons.conftest import connect_flow, tunnel, tunnel_flow

ADDON = Path(__file__).resolve().parents[2] / "addons" / "route.py"


@dataclass(frozen=True)
class Case:
    target: tuple[str, int]
    sni: str
    host: str | None = None
    port: int | None = None
    scheme: str = "https"
    tls: bool = True
    path: str = "/2/users/me"
    marked: bool = False


CASES = [
    pytest.param(Case(("api.twitter.com", 443), "api.twitter.com", marked=True), id="routed"),
    pytest.param(Case(("api.x.com", 443), "api.x.com", marked=True), id="second-host"),
    pytest.param(Case(("api.twitter.com.evil.test", 443), "api.twitter.com.evil.test"), id="suffix-lookalike"),
    pytest.param(Case(("evilapi.twitter.com", 443), "evilapi.twitter.com"), id="prefix-lookalike"),
    pytest.param(Case(("api.twitter.com", 8443), "api.twitter.com"), id="undeclared-port"),
    pytest.param(Case(("api.twitter.com", 443), "other.test"), id="sni-differs-from-connect"),
    pytest.param(Case(("other.test", 443), "api.twitter.com", host="api.twitter.com", port=443), id="connect-elsewhere-host-routed"),
    pytest.param(Case(("api.twitter.com", 443), "api.twitter.com", host="other.test"), id="request-host-rewritten"),
    pytest.param(Case(("api.twitter.com", 443), "api.twitter.com", scheme="http", tls=False), id="plaintext-inside-connect"),
    pytest.param(Case(("api.twitter.com", 443), "api.twitter.com", tls=False), id="tls-not-terminated"),
]


@pytest.mark.invariant
@pytest.mark.parametrize("case", CASES)
def test_route_marks_only_requests_whose_names_all_agree(x_home, case: Case):
    route = Route()
    with taddons.context(route) as tctx:
        tctx.configure(route, authsome_home=str(x_home))
        connect, flow = tunnel(case.target, sni=case.sni, host=case.host, port=case.port, scheme=case.scheme,
                               tls=case.tls, path=case.path)
        route.http_connect(connect)
        route.requestheaders(flow)
        meta = flow.metadata.get("authsome") or {}
        assert ("binding" in meta) is case.marked
        if case.marked:
            assert meta["binding"] == "x/default"


def test_plain_http_proxy_requests_are_never_marked(x_home):
    route = Route()
    with taddons.context(route) as tctx:
        tctx.configure(route, authsome_home=str(x_home))
        flow = tunnel_flow(scheme="http", tls=False)
        route.requestheaders(flow)
        assert "binding" not in (flow.metadata.get("authsome") or {})
        assert flow.response is None


def test_deny_unmatched_answers_403_to_other_hosts(x_home):
    route = Route()
    with taddons.context(route) as tctx:
        tctx.configure(route, authsome_home=str(x_home), authsome_deny_unmatched=True)
        other = connect_flow(("other.test", 443))
        route.http_connect(other)
        assert other.response.status_code == 403
        routed = connect_flow(("api.twitter.com", 443))
        route.http_connect(routed)
        assert routed.response is None


def test_loads_as_a_mitmproxy_script(x_home):
    with taddons.context() as tctx:
        [addon] = tctx.script(str(ADDON)).addons
        assert type(addon).__name__ == "Route"
        tctx.configure(addon, authsome_home=str(x_home))
        assert tctx.options.authsome_deny_unmatched is False
