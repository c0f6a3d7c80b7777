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
    sni: str | None
    host: str | None = None  # the Host header, when it differs from the CONNECT host
    port: int | None = None
    scheme: str = "https"
    tls: bool = True
    path: str = "/2/users/me"
    authority: str = ""  # an absolute-form target or HTTP/2 :authority
    headers: tuple[tuple[str, str], ...] = ()
    outcome: str | int = "passed"  # "marked" for injection, "passed" through untouched, or a refusal status


CASES = [
    pytest.param(Case(("api.twitter.com", 443), "api.twitter.com", outcome="marked"), id="routed"),
    pytest.param(Case(("api.x.com", 443), "api.x.com", outcome="marked"), id="second-host"),
    pytest.param(Case(("API.Twitter.com.", 443), "api.twitter.com", outcome="marked"), id="connect-case-and-trailing-dot"),
    pytest.param(Case(("api.twitter.com", 443), None, outcome="marked"), id="no-sni-right-host"),
    pytest.param(Case(("api.twitter.com", 443), "api.twitter.com", host="api.twitter.com:443", outcome="marked"), id="host-with-default-port"),
    pytest.param(Case(("api.twitter.com", 443), "api.twitter.com", authority="api.twitter.com", outcome="marked"), id="authority-agrees"),
    pytest.param(Case(("api.twitter.com.evil.test", 443), "api.twitter.com.evil.test"), id="suffix-lookalike"),
    pytest.param(Case(("evilapi.twitter.com", 443), "evilapi.twitter.com"), id="prefix-lookalike"),
    pytest.param(Case(("api.twitter.com", 8443), "api.twitter.com"), id="undeclared-port"),
    pytest.param(Case(("other.test", 443), "api.twitter.com", host="api.twitter.com"), id="connect-elsewhere-host-routed"),
    pytest.param(Case(("api.twitter.com", 443), "other.test", outcome=421), id="sni-differs-from-connect"),
    pytest.param(Case(("api.twitter.com", 443), "api.twitter.com", host="other.test", outcome=421), id="host-header-differs"),
    pytest.param(Case(("api.twitter.com", 443), "api.twitter.com", host="api.twitter.com:8443", outcome=421), id="host-header-port-differs"),
    pytest.param(Case(("api.twitter.com", 443), None, host="other.test", outcome=421), id="no-sni-other-host"),
    pytest.param(Case(("api.twitter.com", 443), "api.twitter.com", authority="other.test", outcome=421), id="absolute-form-or-h2-authority-differs"),
    pytest.param(Case(("api.twitter.com", 443), "api.twitter.com", headers=(("Host", "other.test"),), outcome=421), id="second-host-header"),
    pytest.param(Case(("api.twitter.com", 443), "api.twitter.com", headers=(("Authorization", "Bearer a"), ("Authorization", "Bearer b")), outcome=400), id="slot-sent-twice"),
    pytest.param(Case(("api.twitter.com", 443), "api.twitter.com", headers=(("Authorization", "Bearer authsome-proxy-managed authsome-proxy-managed"),), outcome=400), id="placeholder-twice-in-slot"),
    pytest.param(Case(("api.twitter.com", 443), "api.twitter.com", path="/2/oauth2/%74oken"), id="oauth-endpoint-spelled-otherwise"),
    pytest.param(Case(("api.twitter.com", 443), "api.twitter.com", scheme="http", tls=False), id="plaintext-inside-connect"),
    pytest.param(Case(("api.twitter.com", 443), "api.twitter.com", tls=False), id="tls-not-terminated"),
]


@pytest.mark.invariant
@pytest.mark.parametrize("case", CASES)
def test_route_marks_only_requests_whose_names_all_agree(x_home, case: Case):
    route = Route()
    with taddons.context(route) as tctx:
        tctx.configure(route, authsome_home=str(x_home))
        connect, flow = tunnel(case.target, sni=case.sni, port=case.port, scheme=case.scheme, tls=case.tls, path=case.path)
        route.http_connect(connect)
        flow.request.host = connect.request.host  # inside a tunnel mitmproxy sets the server address here
        flow.request.headers["Host"] = case.host or case.target[0]
        flow.request.authority = case.authority
        for name, value in case.headers:
            flow.request.headers.add(name, value)
        route.requestheaders(flow)
        meta = flow.metadata.get("authsome") or {}
        outcome = flow.response.status_code if flow.response else ("marked" if "binding" in meta else "passed")
        assert outcome == case.outcome
        if case.outcome == "marked":
            assert meta["binding"] == "x/default" and meta["target"] == [case.target[0].lower().rstrip("."), 443]
        if isinstance(case.outcome, int):
            assert flow.response.content.startswith(b"authsome: ") and flow.response.content.count(b"\n") == 1


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


@pytest.mark.invariant
@pytest.mark.parametrize("url, status", [("https://other.test/x", 403), ("http://other.test/x", 403),
                                         ("https://api.twitter.com/2/users/me", None)])
def test_deny_unmatched_refuses_absolute_form_requests_without_connect(x_home, url, status):
    route = Route()
    with taddons.context(route) as tctx:
        tctx.configure(route, authsome_home=str(x_home), authsome_deny_unmatched=True)
        flow = tunnel_flow(scheme=url.split(":")[0], tls=False)
        flow.request.url = url
        route.requestheaders(flow)
        assert (flow.response.status_code if flow.response else None) == status
        assert "binding" not in flow.metadata["authsome"]  # never a credential without CONNECT


def test_loads_as_a_mitmproxy_script(x_home):
    with taddons.context() as tctx:
        [addon] = tctx.script(str(ADDON)).addons
        assert type(addon).__name__ == "Route"
        tctx.configure(addon, authsome_home=str(x_home))
        assert tctx.options.authsome_deny_unmatched is False



@pytest.mark.parametrize("addon", ["route", "inject"])
def test_a_changed_home_is_served_from_then_on(x_home, tmp_path, addon):
    """What each request reads is kept between requests, and forgotten when an option changes
    (Route asks afresh in its `configure`; other addons rely on the forgetting alone)."""
    from mitmproxy import ctx

    from authsome.addons._runtime import runtime
    from authsome.addons.inject import Inject

    other = tmp_path / "other-home"
    loaded = Route() if addon == "route" else Inject()
    with taddons.context(loaded) as tctx:
        tctx.configure(loaded, authsome_home=str(x_home))
        assert runtime(ctx.options) is runtime(ctx.options)
        assert [b.key for b in runtime(ctx.options).bindings] == ["x/default"]
        tctx.configure(loaded, authsome_home=str(other))  # a home without connections
        assert runtime(ctx.options).home == str(other) and runtime(ctx.options).bindings == []


def test_a_changed_selection_is_checked_when_it_changes(x_home):
    """Route's `configure` refuses a selection it cannot serve, though requests in between kept an answer."""
    from mitmproxy import ctx, exceptions

    from authsome.addons._runtime import runtime

    route = Route()
    with taddons.context(route) as tctx:
        tctx.configure(route, authsome_home=str(x_home))
        assert runtime(ctx.options).bindings  # as a request would ask: the answer is kept
        with pytest.raises(exceptions.OptionsError):
            tctx.configure(route, authsome_connections=["nosuchprovider=default"])


def test_the_kept_routing_decision_is_finds_own(x_home):
    """Route asks `Runtime.binding_at`, which keeps `bindings.find`'s answers: the same answers, bounded."""
    from mitmproxy import ctx

    from authsome.addons._runtime import runtime
    from authsome.bindings import find

    route = Route()
    with taddons.context(route) as tctx:
        tctx.configure(route, authsome_home=str(x_home))
        rt = runtime(ctx.options)
        asked = [("api.twitter.com", 443, None), ("api.twitter.com", 443, "/2/users/me"),
                 ("api.twitter.com", 443, "/2/oauth2/token"), ("api.twitter.com", 8443, "/2/users/me"),
                 ("API.Twitter.com", 443, "/2/users/me"), ("other.test", 443, None),
                 ("api.twitter.com", 443, "/2/" + "a" * 5000)]
        for _ in range(2):  # the second time from what was kept
            for host, port, path in asked:
                assert rt.binding_at(host, port, path) is find(rt.bindings, host, port, path)
        assert rt.binding_at("api.twitter.com", 443, "/2/users/me").key == "x/default"
        assert rt.binding_at("api.twitter.com", 443, "/2/oauth2/token") is None
        kept = rt.binding_at.cache_info().currsize
        assert kept == len(asked) - 1  # every short one; the long path is not kept
        rt.binding_at("api.twitter.com", 443, "/2/" + "b" * 5000)
        assert rt.binding_at.cache_info().currsize == kept
        for i in range(3000):
            rt.binding_at(f"h{i}.test", 443)
        assert rt.binding_at.cache_info().currsize <= 1024
