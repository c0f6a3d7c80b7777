"""Route matching: a decision table of hosts that may and may not receive a credential."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from authsome.providers.routes import RouteError, canonical_path, parse_route, path_names_endpoint, registrable_problem


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
    # A pattern never leaves the domain it ends with, whatever its alternatives say.
    pytest.param(Case(r"regex:^evil\.test|[a-z]+\.example\.com$", "evil.test", 443, "/", False), id="regex-alternative-outside-its-domain"),
    pytest.param(Case(r"regex:^.*example\.com$", "evilexample.com", 443, "/", False), id="regex-glued-to-its-domain"),
    pytest.param(Case(r"regex:^.*example\.com$", "a.example.com", 443, "/", True), id="regex-inside-its-domain"),
    pytest.param(Case(r"regex:^(a+)+\.example\.com$", "a" * 5000 + "!.example.com", 443, "/", False), id="catastrophic-pattern-overlong-host"),
    pytest.param(Case(r"regex:^(a+)+\.example\.com$", "a" * 200 + "!.example.com", 443, "/", False), id="catastrophic-pattern-linear-time"),
    # Path prefixes hold both as sent and as a server reads the path.
    pytest.param(Case("https://gitlab.com/api", "gitlab.com", 443, "/api/v4/projects/g%2Fp", True), id="prefix-encoded-slash-inside"),
    pytest.param(Case("https://gitlab.com/api", "gitlab.com", 443, "/api//v4", True), id="prefix-double-slash-inside"),
    pytest.param(Case("https://gitlab.com/api", "gitlab.com", 443, "/api/../evil", False), id="prefix-dot-dot-out"),
    pytest.param(Case("https://gitlab.com/api", "gitlab.com", 443, "/api/%2e%2e/evil", False), id="prefix-encoded-dot-dot-out"),
    pytest.param(Case("https://gitlab.com/api", "gitlab.com", 443, "/api/%252e%252e/evil", False), id="prefix-double-encoded-out"),
    pytest.param(Case("https://gitlab.com/api", "gitlab.com", 443, "/api;x/../../evil", False), id="prefix-params-out"),
    pytest.param(Case("https://gitlab.com/api", "gitlab.com", 443, "/api/..%5cevil", False), id="prefix-backslash-out"),
    pytest.param(Case("https://gitlab.com/api", "gitlab.com", 443, "/evil/../api/v4", False), id="prefix-not-as-sent"),
    pytest.param(Case("https://gitlab.com/api", "gitlab.com", 443, "/%61pi/v4", False), id="prefix-encoded-letter-not-as-sent"),
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
    ("regex:.*", "literal domain"),
    ("regex:^.+$", "literal domain"),
    ("regex:^.*\\.com$", "literal domain"),
    ("regex:^(evil\\.test|[a-z]+\\.example\\.com)$", "literal domain"),
    ("regex:^(?!a)[a-z]+\\.example\\.com$", "lookarounds"),
    ("com", "two or more labels"),
    ("localhost", "two or more labels"),
    ("127.0.0.1", "IP address"),
    ("10.1", "IP address"),
    ("[::1]:443", "not a valid host"),
    ("https://127.0.0.1/v1", "IP address"),
    ("!regex:^[a-z]+\\.example\\.com$", "one host"),
    ("https://api.example.test/v1/../v2", "read differently"),
])
def test_bad_routes_are_refused_with_a_reason(entry, reason):
    with pytest.raises(RouteError, match=reason):
        parse_route(entry)


@pytest.mark.invariant
@pytest.mark.parametrize("entry", ["regex:^.*\\.co\\.uk$", "co.uk", "regex:^[a-z]+\\.com\\.au$", "regex:^[a-z]+\\.ac\\.jp$"])
def test_routes_pinning_a_public_suffix_are_refused(entry):
    assert "public suffix" in registrable_problem(parse_route(entry))


@pytest.mark.parametrize("entry", ["api.twitter.com", "regex:^[a-z0-9-]+\\.googleapis\\.com$", "api.acme.test", "x.bbc.co.uk"])
def test_routes_pinning_a_registrable_domain_pass(entry):
    assert registrable_problem(parse_route(entry)) is None


def test_an_exception_takes_a_host_out_of_a_pattern():
    from authsome.bindings import Binding
    from authsome.providers import Registry

    google = Registry().get("google")
    routes = [parse_route(e) for e in google.api_url]
    binding = Binding(google, "default", tuple(r for r in routes if not r.exclude), excluded=tuple(r for r in routes if r.exclude))
    assert binding.match_host("gmail.googleapis.com", 443)
    assert not binding.match_host("generativelanguage.googleapis.com", 443)
    assert not binding.match_host("OAuth2.googleapis.com.", 443)


@pytest.mark.parametrize("raw, canonical", [
    ("/a//b/./c/../d?x=1", "/a/b/d"),
    ("/%2e%2e/%2E/x", "/x"),
    ("/a;jsessionid=1/b", "/a/b"),
    ("/a\\b", "/a/b"),
    ("/%252e%252e/y", "/y"),
])
def test_canonical_path(raw, canonical):
    assert canonical_path(raw) == canonical


@pytest.mark.invariant
@pytest.mark.parametrize("path", ["/2/oauth2/token", "//2/oauth2/token", "/2/oauth2/./token", "/2/x/../oauth2/token",
                                  "/2/oauth2/%74oken", "/2/oauth2/token;x", "/2/OAuth2/Token", "/2/oauth2/token/",
                                  "/2/oauth2/token.json", "/2/oauth2/token?grant_type=x", "/2/oauth2%2ftoken"])
def test_every_spelling_of_an_oauth_endpoint_names_it(path):
    assert path_names_endpoint("/2/oauth2/token", path)


@pytest.mark.parametrize("path", ["/2/oauth2/tokens", "/2/users/me", "/2/oauth2"])
def test_other_paths_do_not_name_the_endpoint(path):
    assert not path_names_endpoint("/2/oauth2/token", path)


def test_request_texts_are_kept_only_when_short():
    """The per-request lookups are cached, but a child sending ever new long paths fills nothing."""
    from authsome.authority import parse_authority
    from authsome.providers.routes import canonical_path

    before = canonical_path.cache_info().currsize
    for i in range(50):
        assert canonical_path(f"/v1/{'a' * 3000}/{i}/../x") == f"/v1/{'a' * 3000}/x"
    assert canonical_path.cache_info().currsize == before
    assert canonical_path("/v1/%2e%2e/models") == canonical_path("/v1/%2e%2e/models") == "/models"
    assert canonical_path.cache_info().currsize == before + 1
    assert parse_authority("API.example.com.:8443") == ("api.example.com", 8443)
    assert parse_authority("h" * 400) == ("h" * 400, 443)  # computed, not kept
    assert parse_authority("example.com", 80) == ("example.com", 80)
