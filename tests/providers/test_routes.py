"""Route matching: a decision table of hosts that may and may not receive a credential."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from authsome.providers.routes import RouteError, parse_route


@dataclass(frozen=True)
class Case:
    route: str
    host: str
    port: int
    path: str
    expected: bool


CASES = [
    pytest.param(Case("api.twitter.com", "api.twitter.com", 443, "/2/users/me", True), id="exact"),
    pytest.param(Case("api.twitter.com", "API.Twitter.COM.", 443, "/", True), id="case-and-trailing-dot"),
    pytest.param(Case("api.twitter.com", "api.twitter.com.evil.test", 443, "/", False), id="suffix-lookalike"),
    pytest.param(Case("api.twitter.com", "evilapi.twitter.com", 443, "/", False), id="prefix-lookalike"),
    pytest.param(Case("api.twitter.com", "x.api.twitter.com", 443, "/", False), id="subdomain"),
    pytest.param(Case("api.twitter.com", "api.twitter.com", 8443, "/", False), id="other-port"),
    pytest.param(Case("api.twitter.com", "api.twitter.com", 80, "/", False), id="plain-http-port"),
    pytest.param(Case("api.example.test:8443", "api.example.test", 8443, "/", True), id="declared-port"),
    pytest.param(Case("api.example.test:8443", "api.example.test", 443, "/", False), id="declared-port-only"),
    pytest.param(Case("https://api.example.test/v1", "api.example.test", 443, "/v1/things", True), id="path-prefix"),
    pytest.param(Case("https://api.example.test/v1", "api.example.test", 443, "/v1", True), id="path-prefix-exact"),
    pytest.param(Case("https://api.example.test/v1", "api.example.test", 443, "/v10/x", False), id="path-prefix-boundary"),
    pytest.param(Case("https://api.example.test/v1", "api.example.test", 443, "/other", False), id="path-outside"),
    pytest.param(Case(r"regex:^[a-z0-9-]+\.googleapis\.com$", "gmail.googleapis.com", 443, "/", True), id="regex"),
    pytest.param(Case(r"regex:^[a-z0-9-]+\.googleapis\.com$", "gmail.googleapis.com.evil.test", 443, "/", False), id="regex-suffix-lookalike"),
    pytest.param(Case(r"regex:^[a-z0-9-]+\.googleapis\.com$", "evilgoogleapis.com", 443, "/", False), id="regex-prefix-lookalike"),
    pytest.param(Case(r"regex:[a-z0-9-]+\.googleapis\.com", "gmail.googleapis.com.evil.test", 443, "/", False), id="unanchored-regex-is-still-whole-host"),
    pytest.param(Case(r"regex:[a-z]+\.googleapis\.com", "a.b.googleapis.com", 443, "/", False), id="regex-no-dot-crossing"),
]


@pytest.mark.invariant
@pytest.mark.parametrize("case", CASES)
def test_route_decision(case: Case):
    assert parse_route(case.route).matches(case.host, case.port, case.path) is case.expected


@pytest.mark.parametrize("entry, reason", [
    ("regex:(", "invalid regular expression"),
    ("regex:", "empty regex"),
    ("http://api.example.test", "https"),
    ("api.example.test:99999", "invalid port"),
    ("api.example.test/v1", "has a path"),
    ("exa mple.test", "not a valid host"),
    ("https://user:pw@api.example.test", "only contain"),
])
def test_bad_routes_are_refused_with_a_reason(entry, reason):
    with pytest.raises(RouteError, match=reason):
        parse_route(entry)
